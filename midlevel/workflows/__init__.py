"""Workflows: the package's jobs end to end, as functions that compute tables, write files and
return a result object; no printing, no argv (the CLI is a thin layer over them).

- :mod:`~.explain_concepts`: per-clip concept contributions, dataset view, timelines,
  interventions of a bottleneck run;
- :mod:`~.explain_attributions`: spectrogram attributions, figures and listenable wavs;
- :mod:`~.compare`: the comparison report of black box and bottleneck runs;
- :mod:`~.demo`: the main job on the synthetic world;
- the checks of options each workflow runs before its first file: :mod:`midlevel.checks`
  (numbers), :mod:`~.explain_inputs`, :mod:`~.compare_checks`.
"""
