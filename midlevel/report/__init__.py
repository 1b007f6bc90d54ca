"""Rendering reports: Markdown tables (:mod:`~.markdown`), one self-contained HTML page
(:mod:`~.html`) and the comparison report document (:mod:`~.document`). The comparison itself
is computed by :func:`midlevel.workflows.compare.compare`."""
