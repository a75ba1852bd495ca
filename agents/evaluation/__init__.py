"""Evaluation as a library: replay sampling policies inside ordinary training runs and
compare them on test.

* :mod:`~dus_agents.evaluation.runs`: one run (policy-driven training, model selection on
  validation, one test read): :func:`run_one`, :func:`run_selected`, :class:`BestValidation`;
* :mod:`~dus_agents.evaluation.results`: ``results.csv`` / ``traces.jsonl`` with repair;
* :mod:`~dus_agents.evaluation.sweep`: :func:`validate` a plan, :func:`sweep` it, write reports;
* :mod:`~dus_agents.evaluation.ray_sweep`: the same sweep as Ray tasks;
* :mod:`~dus_agents.evaluation.stats`: t-intervals, seed-paired differences, summaries;
* :mod:`~dus_agents.evaluation.plots`: the figures.

``dus-evaluate`` (``evaluate.py``) is the command line on top.
"""

from dus_agents.evaluation.results import KEY_FIELDS, ResultsStore, load_rows, load_traces, run_key
from dus_agents.evaluation.runs import (
    MAIN_METRICS,
    BestValidation,
    header_for,
    make_env,
    run_one,
    run_selected,
)
from dus_agents.evaluation.stats import Interval, paired_difference, summarize, t_interval
from dus_agents.evaluation.sweep import (
    EvaluateArgs,
    Plan,
    RunFailure,
    parse_seeds,
    sweep,
    validate,
    write_reports,
)

__all__ = [
    "KEY_FIELDS", "MAIN_METRICS", "BestValidation", "EvaluateArgs", "Interval", "Plan",
    "ResultsStore", "RunFailure", "header_for", "load_rows", "load_traces", "make_env",
    "paired_difference", "parse_seeds", "run_key", "run_one", "run_selected", "summarize",
    "sweep", "t_interval", "validate", "write_reports",
]
