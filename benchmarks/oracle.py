"""An upper bound per task: the best sampling rule for that one task, found on validation seeds.

Two families of rules (``--family``), each searched per task with Optuna's TPE sampler
(seeded), scoring a candidate by its mean paired return over ``--search-seeds`` (validation
only: the rules are reported on test seeds by ``benchmarks.generalization``, policy
``oracle``, as the headroom any sampling policy has on that task):

* ``schedule`` (open loop): ``--phases`` equal shares of the run, and per phase one grid index
  (of the DUS-v1 grid, 0.5x to 2x) per modality. Scored against uniform sampling from the same
  seeds; the uniform schedule is the first trial, so the best is never worse than uniform on
  validation.
* ``heuristic`` (closed loop): DUS-H's own four settings (``gamma``, ``warmup``,
  ``min_multiplier``, ``max_multiplier``; ``benchmarks.fit_heuristic``'s space) tuned for the
  task. Scored against DUS-H with its defaults from the same seeds
  (``reward.reference_policy=heuristic``); the defaults are the first trial and score exactly
  0, so the best is never worse than DUS-H on validation. Where this bound does not beat DUS-H
  on test seeds, no DUS-H-like policy, however it reads the task, has room to.

``--reward`` scores an episode by the final validation accuracy (``paired``) or by the best
one so far (``paired_best``: what model selection on validation keeps).

    python -m benchmarks.oracle --out results/oracle.json      # held-out tasks (about 30 min)
    python -m benchmarks.oracle --family heuristic --reward paired_best \
        --search-seeds 500,501,502,503,504,505,506,507 --jobs 2 --out results/headroom.json
    python -m benchmarks.oracle --smoke
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from benchmarks import common
from dus_agents.heuristic import HeuristicPolicy, SchedulePolicy
from dus_agents.cli.common import check_at_least, comma_list
from dus_env.errors import UsageError
from dus_env.slots import V1_MULTIPLIERS
from dus_env.suites import Task, get_suite

UNIFORM = V1_MULTIPLIERS.index(1.0)
FAMILIES: tuple[str, ...] = ("schedule", "heuristic")
"""The rule families an oracle searches (see the module docstring)."""


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
    family: str = "schedule"
    """schedule (open loop, scored against uniform) or heuristic (DUS-H's settings tuned per
    task, closed loop, scored against DUS-H)."""
    reward: str = "paired"
    """paired (final validation accuracy minus the reference run's) or paired_best (best
    validation accuracy so far minus the reference run's best)."""
    jobs: int = 1
    """Worker processes a candidate's episodes are spread over (``heuristic`` family; the
    ``schedule`` family runs in this process)."""
    reference_cache: str = ""
    """``heuristic`` family: folder of the DUS-H reference runs (empty: a temporary one)."""
    resume: bool = False
    """Keep the tasks already in --out that were found with the same settings (family,
    reward, trials, phases, search seeds, seed) and search only the rest (a file from other
    settings, or holding tasks --tasks does not list, is refused)."""

    SMOKE: ClassVar[dict[str, Any]] = {"tasks": "tiny:heldout", "trials": 3,
                                        "search_seeds": "500"}


def resolve_tasks(spec: str) -> list[tuple[str, Task]]:
    """``SUITE:SPLIT`` / ``SUITE:TASK`` items -> (suite name, task) pairs, each task once
    (the first item naming it; ``mfeat-views:heldout,real:heldout`` overlap)."""
    out: list[tuple[str, Task]] = []
    for item in comma_list("--tasks", spec):
        suite_name, _, what = item.partition(":")
        if not what:
            raise UsageError(f"--tasks item {item!r}: write SUITE:SPLIT or SUITE:TASK")
        try:  # an unknown suite or task: one line naming the valid ones
            suite = get_suite(suite_name)
            tasks = suite.split(what) if what in ("train", "heldout") else (suite.task(what),)
        except ValueError as exc:
            raise UsageError(f"--tasks item {item!r}: {exc}") from None
        out += [(suite_name, t) for t in tasks if t.name not in {o.name for _, o in out}]
    return out


def task_env(task: Task, reward: str = "paired"):
    """A DUS-v1 env of one task: a paired reward against uniform, modality i in slot i."""
    from dus_env.env_v1 import DUSEnvV1

    return DUSEnvV1(config=task.config.replace(reward=dataclasses.replace(
        task.config.reward, name=reward)), permute_modalities=False)


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


def oracle_policy(env, found: dict[str, Any]):
    """One task's entry of an oracle JSON as a policy for ``env``: DUS-H with its tuned
    ``settings`` (``heuristic`` family), else its ``schedule``."""
    if "settings" in found:
        return HeuristicPolicy.for_env(env, **found["settings"])
    return schedule_policy(env, found["schedule"])


def search(task: Task, args: Args, seeds: list[int]) -> dict[str, Any]:
    """The ``schedule`` family: the best open-loop schedule of one task."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    env = task_env(task, args.reward)
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


def search_heuristic(suite: str, task: Task, args: Args, seeds: list[int],
                     cache: str) -> dict[str, Any]:
    """The ``heuristic`` family: DUS-H's settings tuned for one task, each candidate scored by
    its mean paired return against DUS-H (defaults) over ``seeds``; the defaults come first."""
    import optuna

    from benchmarks.fit_heuristic import SPACE, Evaluator, settings_of
    from dus_agents.evaluation.stats import t_interval
    from dus_env.sampler import HEURISTIC_DEFAULTS

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pairs = [(task.name, s) for s in seeds]
    trials: list[dict[str, Any]] = []
    start = time.perf_counter()
    with Evaluator(suite, cache, args.jobs, args.reward) as evaluate:
        def objective(trial: optuna.Trial) -> float:
            settings = settings_of({name: trial.suggest_float(name, lo, hi, log=log_scale)
                                    for name, (lo, hi, log_scale) in SPACE.items()})
            returns = evaluate(settings, pairs)
            trials.append({"settings": settings, "value": float(np.mean(returns)),
                           "interval": t_interval(returns).as_dict(), "returns": returns})
            return trials[-1]["value"]

        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=args.seed))
        study.enqueue_trial(dict(HEURISTIC_DEFAULTS))
        study.optimize(objective, n_trials=args.trials)
    best = max(trials, key=lambda t: t["value"])  # the first of equals: the defaults on a tie
    return {
        "modalities": list(task.config.modalities),
        "settings": best["settings"],
        "validation_mean_paired_return": best["value"],
        "validation_interval": best["interval"],
        "trial_values": [t["value"] for t in trials],
        "trials": trials,
        "seconds": time.perf_counter() - start,
    }


def _settings(args: Args, seeds: list[int]) -> dict[str, Any]:
    """What decides a task's result (a resumed run keeps only tasks found with the same)."""
    return {"family": args.family, "reward": args.reward, "trials": args.trials,
            "phases": args.phases, "search_seeds": seeds, "seed": args.seed}


def _finished(args: Args, seeds: list[int], todo: list[tuple[str, Task]]) -> dict[str, Any]:
    """The tasks of an earlier run in --out with the same settings (--resume); a file from
    other settings, or holding tasks this --tasks does not list, is refused."""
    earlier = common.earlier_run(args.out, args.resume)
    if earlier is None:
        return {}
    if earlier.get("settings") != _settings(args, seeds):
        raise UsageError(f"--resume: {args.out} was run with other settings "
                         f"({earlier.get('settings')}); this run has {_settings(args, seeds)}")
    tasks = dict(earlier.get("tasks", {}))
    other = sorted(set(tasks) - {task.name for _, task in todo})
    if other:
        raise UsageError(f"--resume: {args.out} holds tasks that --tasks={args.tasks!r} does "
                         f"not list ({', '.join(other)}); a resumed run would drop them: list "
                         "them too, or write to another --out")
    return tasks


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse(Args, argv)
    common.check_option("--family", args.family, FAMILIES)
    common.check_option("--reward", args.reward, common.PAIRED_REWARDS)
    check_at_least("--trials", args.trials, 1)
    check_at_least("--phases", args.phases, 1)
    check_at_least("--jobs", args.jobs, 1)
    seeds = list(dict.fromkeys(_seed(s) for s in comma_list("--search-seeds", args.search_seeds)))
    todo = resolve_tasks(args.tasks)
    done = _finished(args, seeds, todo)
    common.setup(args)
    log = common.logger("oracle")
    result: dict[str, Any] = {"machine": common.machine_info(), "command": sys.argv,
                              "family": args.family, "reward": args.reward,
                              "trials": args.trials, "phases": args.phases,
                              "search_seeds": seeds, "grid": list(V1_MULTIPLIERS),
                              "settings": _settings(args, seeds), "tasks": {}}
    with tempfile.TemporaryDirectory(prefix="dus_oracle_") as tmp:
        for suite, task in todo:
            if task.name in done:
                result["tasks"][task.name] = done[task.name]
                log.info("%s kept from %s (--resume)", task.name, args.out)
                continue
            if args.family == "heuristic":
                found = search_heuristic(suite, task, args, seeds, args.reference_cache or tmp)
                what = ", ".join(f"{k}={v:.3g}" for k, v in found["settings"].items())
                against = "DUS-H"
            else:
                found = search(task, args, seeds)
                what, against = f"schedule {found['multipliers']}", "uniform"
            result["tasks"][task.name] = {"suite": suite, **found}
            log.info("%s: best validation paired return %.2f (%d trials, %.0f s)", task.name,
                     found["validation_mean_paired_return"], args.trials, found["seconds"])
            print(f"{task.name}: {what} -> validation paired return vs {against} "
                  f"{found['validation_mean_paired_return']:+.2f} points")
            common.write_json(args.out, result)  # after every task: a kill loses at most one
    common.write_json(args.out, result)
    if args.smoke:
        print("smoke ok")
    return result


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise UsageError(f"--search-seeds: {text!r} is not an integer") from None
    if seed < 0:
        raise UsageError(f"--search-seeds: {seed} is negative; episode seeds are integers >= 0")
    return seed


if __name__ == "__main__":
    sys.exit(common.run(main))
