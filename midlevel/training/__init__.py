"""Training, evaluation and prediction.

``train(spec, out, mode=...)`` trains from a data spec; ``fit(table, features, columns, out,
config, fps=...)`` from in-memory data; ``load_run(out)`` gives a :class:`Run` whose
``predict`` returns a DataFrame; ``evaluate(run, spec)`` gives the metrics table.
"""
from midlevel.training.data import Columns  # noqa: F401
from midlevel.training.loop import MODES, TrainConfig, fit  # noqa: F401
from midlevel.training.metrics import format_table, metrics_table  # noqa: F401
from midlevel.training.run import Run, evaluate, load_run, train  # noqa: F401
