"""Toy tasks with known answers, for tests, docs and controlled checks:
:class:`~midlevel.testing.events.EventTask` (a planted time-frequency event decides the target)
and :mod:`~midlevel.testing.toy` (tiny in-memory training data with a known concept map)."""
