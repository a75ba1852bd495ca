"""``dus-evaluate`` (``evaluate.py``): replay sampling policies inside ordinary training runs
and compare them.

Each run is one DUS-v0 episode (one multimodal training run from a fresh model) driven by one
policy, for one host method and one seed. During the run the model with the best validation
accuracy is kept (model selection on validation only); after the run that model is evaluated
once on the test split: accuracy, macro-F1, MAP, each modality's own accuracy, the linear-probe
accuracy of each frozen encoder, and the samples each modality consumed.

Outputs in ``--out-dir``:

* ``results.csv``: one row per run, appended and flushed as each run finishes; a rerun skips the
  runs already there (keyed by policy, host, preset, seed), so an interrupted sweep resumes.
* ``traces.jsonl``: per run, per env step: batch sizes, batch and cumulative scores, gap,
  validation accuracy, samples consumed.
* ``summary.json`` / ``summary.md``: mean and 95% t-interval per policy x host, and the
  seed-paired difference to ``uniform`` where it ran, over this sweep's runs (the ones
  ``config.json`` lists); runs of earlier sweeps into the same folder with other seeds,
  policies or presets stay in ``results.csv`` and are left out, as the closing line says.
* ``batch_sizes.png``, ``scores.png``, ``val_accuracy.png``, ``final_metrics.png``.
* ``config.json``: the arguments and the resolved env config of each host.
* ``failed_runs.json`` (only when runs failed for good): each run that raised on every attempt
  (one locally, 1 + ``--max-retries`` on Ray), with its error; such runs have no row, so a
  rerun retries them.

Backends: ``--backend local`` (default) runs the sweep in this process, one run after another.
``--backend ray`` makes every run one Ray task with its own resources (``--cpus-per-run``,
``--gpus-per-run``); a run whose worker dies or raises is retried up to ``--max-retries``
times and reported. With no ``--address`` Ray starts on this machine (``--ray-cpus`` cores);
``--address`` joins a running cluster (see docs/scaling.md).

Usage::

    dus-evaluate --preset default --policies uniform,heuristic --seeds 0-4
    dus-evaluate --preset tiny --policies uniform,random,heuristic,ppo:runs/quickstart \\
        --hosts joint,mla --seeds 0-9 --budget-matched --out-dir runs/eval_tiny
    dus-evaluate --preset tiny --policies uniform,heuristic --seeds 0-9 --backend ray
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from dus_agents.evaluation.results import load_rows
from dus_agents.evaluation.sweep import (
    EvaluateArgs,
    Plan,
    plan_rows,
    sweep,
    validate,
    write_reports,
)
from dus_agents.cli import common as cli
from dus_env.config import preset_help

PROG = "dus-evaluate"


def build_parser():
    return cli.build_parser(
        EvaluateArgs, prog=PROG,
        description="Replay sampling policies inside training runs; compare them on test.",
        epilog="presets: " + preset_help(),
    )


def connect_ray(args: EvaluateArgs):
    """Start or join Ray for ``--backend ray``; raises UsageError when Ray is missing, the
    address does not answer or a run would never fit."""
    from dus_agents.ray_backend import open_session

    session, warning = open_session(args.address, args.ray_cpus, "--cpus-per-run",
                                    args.cpus_per_run, "--gpus-per-run", args.gpus_per_run,
                                    log_to_driver=not args.quiet)
    if warning:
        print(f"{PROG}: {warning}", file=sys.stderr)
    return session


def _progress(plan: Plan) -> Any:
    """A tqdm progress callback, or None with --quiet."""
    if plan.args.quiet:
        return None
    tqdm = cli.require("tqdm", "agents", "the progress bar (or pass --quiet)").tqdm
    bar = tqdm(desc="runs", unit="run", dynamic_ncols=True)

    def update(key, total):
        bar.total = total
        bar.update(1)
        bar.set_postfix_str(f"{key[0]} {key[1]} seed={key[2]}")
    update.bar = bar  # type: ignore[attr-defined]
    return update


def main(argv: Sequence[str] | None = None, fault: Any = None) -> int:
    """Run the sweep; 0 when every run has its row, 1 when some run failed for good (listed on
    stderr and in ``failed_runs.json``; rerun to retry them). Bad input: one line on stderr and
    ``SystemExit(2)``, before anything is written. ``fault`` is a test hook."""
    return cli.run(lambda a: _main(a, fault), argv, prog=PROG)


def _main(argv: Sequence[str] | None, fault: Any) -> int:
    import torch

    args, _ = cli.parse(EvaluateArgs, argv, build_parser())
    torch.set_num_threads(max(1, min(args.threads, cli.MAX_THREADS)))
    plan = validate(args)
    progress = _progress(plan)
    session = connect_ray(args) if args.backend == "ray" else None
    try:
        rows, failures = sweep(plan, fault, progress)
        write_reports(plan, rows)
    except OSError as err:  # a full disk mid-sweep: finished runs are on disk, say so
        done = len(load_rows(plan.out_dir / "results.csv", repair=False)[0])
        print(f"{PROG}: error: " + cli.write_failure(
            plan.out_dir, err, f"the {done} finished run(s) are kept",
            "rerun the same command to resume"), file=sys.stderr)
        return 1
    finally:
        if progress is not None:
            progress.bar.close()
        if session is not None:
            session.close()
    if not args.quiet:
        print((plan.out_dir / "summary.md").read_text())
        mine = len(plan_rows(plan, rows))
        others = "" if mine == len(rows) else (
            f"; the file also holds {len(rows) - mine} run(s) of earlier sweeps, not in this "
            "summary")
        print(f"results: {plan.out_dir / 'results.csv'} ({mine} runs of this sweep{others})")
    if failures:
        for (policy, host, seed), failure in failures.items():
            tries = (f"after {failure.attempts} attempt(s)" if failure.attempts >= 1
                     else "(attempts not counted)")
            print(f"{PROG}: run policy={policy} host={host} seed={seed} failed {tries}: "
                  f"{failure.error}", file=sys.stderr)
        print(f"{PROG}: {len(failures)} run(s) failed and have no row (listed in "
              f"{plan.out_dir / 'failed_runs.json'}); rerun the same command to retry them",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
