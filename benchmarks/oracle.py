"""An upper bound per task: the best open-loop sampling schedule, found on validation seeds.

A schedule is piecewise constant: ``--phases`` equal shares of the run, and per phase one grid
index (of the DUS-v1 grid, 0.5x to 2x) per modality. For each task, Optuna's TPE sampler
(seeded) searches ``--trials`` schedules, scoring each by its mean paired return (final
validation accuracy minus that of uniform sampling from the same seeds, in points) over
``--search-seeds``; the uniform schedule is the first trial, so the best is never worse than
uniform on validation. Only validation data is read: the schedules are reported on test seeds
by ``benchmarks.generalization`` (policy ``oracle``), as the headroom any sampling policy has
on that task.

    python -m benchmarks.oracle --out results/oracle.json      # held-out tasks (about 40 min)
    python -m benchmarks.oracle --smoke
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from benchmarks import common
from dus_agents.heuristic import SchedulePolicy
from dus_env.cli import check_at_least, comma_list
from dus_env.errors import UsageError
from dus_env.slots import V1_MULTIPLIERS
from dus_env.suites import Task, get_suite

UNIFORM = V1_MULTIPLIERS.index(1.0)


@dataclasses.dataclass
class Args(common.BenchArgs):
    tasks: str = "synthetic-mix:heldout,mfeat-views:heldout"
    """Comma list of SUITE:SPLIT (every task of that split) or SUITE:TASK."""
    trials: int = 30
    """Schedules tried per task (the first is uniform)."""
    phases: int = 3
    """Equal shares of the run a schedule is constant over."""
    search_seeds: str = "500,501,502"
    """Episode seeds a schedule is scored on (validation only; disjoint from the test seeds
    0-19 of benchmarks.generalization and from every training pool)."""
    seed: int = 0
    """Seed of the TPE sampler."""

    SMOKE: ClassVar[dict[str, Any]] = {"tasks": "tiny:heldout", "trials": 3,
                                        "search_seeds": "500"}


def resolve_tasks(spec: str) -> list[tuple[str, Task]]:
    """``SUITE:SPLIT`` / ``SUITE:TASK`` items -> (suite name, task) pairs."""
    out = []
    for item in comma_list("--tasks", spec):
        suite_name, _, what = item.partition(":")
        if not what:
            raise UsageError(f"--tasks item {item!r}: write SUITE:SPLIT or SUITE:TASK")
        try:  # an unknown suite or task: one line naming the valid ones
            suite = get_suite(suite_name)
            tasks = suite.split(what) if what in ("train", "heldout") else (suite.task(what),)
        except ValueError as exc:
            raise UsageError(f"--tasks item {item!r}: {exc}") from None
        out += [(suite_name, t) for t in tasks]
    return out


def task_env(task: Task):
    """A DUS-v1 env of one task: the paired reward, modality i in slot i."""
    from dus_env.env_v1 import DUSEnvV1

    return DUSEnvV1(config=task.config.replace(reward=dataclasses.replace(
        task.config.reward, name="paired")), permute_modalities=False)


def paired_return(env, policy, seed: int) -> float:
    obs, _ = env.reset(seed=seed, options={"episode_seed": seed})
    total, done = 0.0, False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, done, _, _ = env.step(action)
        total += float(reward)
    return total


def schedule_policy(env, table: Sequence[Sequence[int]]) -> SchedulePolicy:
    """The schedule (phases x modalities) as a policy over the env's slots (absent: uniform)."""
    width = env.layout.action_space().shape[0]
    rows = [list(row) + [UNIFORM] * (width - len(row)) for row in table]
    return SchedulePolicy.for_env(env, schedule=rows)


def search(task: Task, args: Args, seeds: list[int]) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    env = task_env(task)
    m, k = len(env.modalities), len(V1_MULTIPLIERS)

    def table_of(params: dict[str, int]) -> list[list[int]]:
        return [[params[f"p{p}_m{j}"] for j in range(m)] for p in range(args.phases)]

    def objective(trial) -> float:
        params = {f"p{p}_m{j}": trial.suggest_int(f"p{p}_m{j}", 0, k - 1)
                  for p in range(args.phases) for j in range(m)}
        return float(np.mean([paired_return(env, schedule_policy(env, table_of(params)), s)
                              for s in seeds]))

    start = time.perf_counter()
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=args.seed))
    study.enqueue_trial({f"p{p}_m{j}": UNIFORM for p in range(args.phases) for j in range(m)})
    study.optimize(objective, n_trials=args.trials)
    best = study.best_trial
    return {
        "modalities": list(env.modalities),
        "schedule": table_of(best.params),
        "multipliers": [[V1_MULTIPLIERS[i] for i in row] for row in table_of(best.params)],
        "validation_mean_paired_return": float(best.value),
        "trial_values": [float(t.value) for t in study.trials],
        "seconds": time.perf_counter() - start,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse(Args, argv)
    check_at_least("--trials", args.trials, 1)
    check_at_least("--phases", args.phases, 1)
    common.setup(args)
    seeds = [int(s) for s in comma_list("--search-seeds", args.search_seeds)]
    log = common.logger("oracle")
    result: dict[str, Any] = {"machine": common.machine_info(), "command": sys.argv,
                              "trials": args.trials, "phases": args.phases,
                              "search_seeds": seeds, "grid": list(V1_MULTIPLIERS), "tasks": {}}
    for suite, task in resolve_tasks(args.tasks):
        found = search(task, args, seeds)
        result["tasks"][task.name] = {"suite": suite, **found}
        log.info("%s: best validation paired return %.2f (%d trials, %.0f s)", task.name,
                 found["validation_mean_paired_return"], args.trials, found["seconds"])
        print(f"{task.name}: schedule {found['multipliers']} -> validation paired return "
              f"{found['validation_mean_paired_return']:+.2f} points")
        common.write_json(args.out, result)  # after every task: a kill loses at most one
    if args.smoke:
        print("smoke ok")
    return result


if __name__ == "__main__":
    sys.exit(common.run(main))
