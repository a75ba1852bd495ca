"""Fit DUS-H's settings on a suite's training tasks: a generalist with four learned numbers.

PPO's corrections to DUS-H were too small and too noisy to survive deterministic replay
(docs/RESULTS.md, *A generalist that starts as DUS-H*). This is the low-variance alternative:
a black-box search (Optuna's seeded TPE sampler) over DUS-H's own settings - the exponent
``gamma``, the uniform ``warmup`` share and the multiplier bounds - scored on many cheap
episodes with common random numbers: every trial replays the same (training task, training
seed) pairs, and each episode's return is the paired reward against DUS-H from the same seeds
(``reward.reference_policy=heuristic``), so a trial's score is its mean gain over DUS-H and the
defaults score exactly 0 (the first trial). Only training tasks and their pinned training
seeds are read: the suite's validation seeds (``benchmarks.select_generalist``), its held-out
tasks (``benchmarks.generalization``) and the test split are left for the judges.

The best trial is written as a policy artefact (``--policy-out``): the DUS-v1 DeepSets policy
anchored on DUS-H with the fitted settings and a zero learned head, so its deterministic
replay is the fitted rule exactly, for any number of modalities up to the suite's slots, and
it loads through the package's safe loader like any other ``ppo:`` policy (a starting point
for ``dus-train`` too).

``--out`` is rewritten (atomically) after every finished trial, so a run stopped by Ctrl-C,
SIGTERM or a fault keeps the trials it finished: such a file says ``"complete": false`` (and
``trials_planned``) and ``benchmarks.make_results --update`` refuses to render it; the
finished search's file says ``"complete": true`` and is written before the policy.

    python -m benchmarks.fit_heuristic --suite mixed --trials 24 \\
        --out results/fit_heuristic.json --policy-out results/fitted-heuristic.zip
    python -m benchmarks.fit_heuristic --smoke
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from benchmarks import common
from dus_agents.cli.common import check_at_least, check_output_file
from dus_env.errors import UsageError

SPACE: dict[str, tuple[float, float, bool]] = {
    "gamma": (0.25, 4.0, True),
    "warmup": (0.0, 0.5, False),
    "min_multiplier": (0.5, 1.0, False),
    "max_multiplier": (1.0, 2.0, False),
}
"""The search space, ``name: (low, high, log scale)``. The DUS-v1 grid spans 0.5x to 2x, so
bounds outside it change nothing."""


def settings_of(params: dict[str, float]) -> dict[str, float]:
    """A point of :data:`SPACE` as DUS-H's settings (``max_multiplier`` raised to
    ``min_multiplier`` where the draw put it below)."""
    s = {k: float(v) for k, v in params.items()}
    s["max_multiplier"] = max(s["max_multiplier"], s["min_multiplier"])
    return s


@dataclasses.dataclass
class Args(common.BenchArgs):
    suite: str = "mixed"
    """The suite whose training tasks (and their pinned training seeds) the fit reads."""
    tasks: int = 0
    """The first N training tasks of the suite (0: all of them)."""
    seeds_per_task: int = 8
    """The first N seeds of each task's training pool: every trial replays the same pairs."""
    trials: int = 24
    """Settings tried (the first is DUS-H's defaults, which score exactly 0)."""
    seed: int = 0
    """Seed of the TPE sampler."""
    jobs: int = 2
    """Worker processes the episodes of a trial are spread over (each with its own env)."""
    strength: float = 0.5
    """The artefact's anchor strength (its exploration if trained further; replay ignores it)."""
    policy_out: str = ""
    """Where to write the best settings as a ``ppo:`` policy artefact (empty: not written)."""
    reference_cache: str = ""
    """Folder of the DUS-H reference runs (empty: a temporary one); reusable across fits."""
    reward: str = "paired"
    """paired (final validation accuracy minus DUS-H's) or paired_best (best validation
    accuracy so far minus DUS-H's: what model selection on validation keeps)."""

    SMOKE: ClassVar[dict[str, Any]] = {"suite": "tiny", "trials": 3, "seeds_per_task": 1,
                                        "jobs": 1}


# ------------------------------------------------------------------ workers
_ENV: Any = None


def _init_worker(suite: str, cache: str, reward: str) -> None:
    global _ENV
    import dus_env  # noqa: F401  (registers the envs)
    from dus_agents.base import make_dus_env

    _ENV = make_dus_env(dus_env.ENV_V1_ID, suite=suite, config={"reward": {
        "name": reward, "reference_policy": "heuristic", "reference_cache": cache}})


def _returns(settings: dict[str, float], pairs: list[tuple[str, int]]) -> list[float]:
    from dus_agents.callbacks import slice_returns
    from dus_agents.heuristic import HeuristicPolicy

    return slice_returns(_ENV, HeuristicPolicy.for_env(_ENV, **settings), pairs)


class Evaluator:
    """A trial's returns over the pairs, in order, spread over ``jobs`` processes; a context
    manager (its workers end with the block, also on Ctrl-C or SIGTERM)."""

    def __init__(self, suite: str, cache: str, jobs: int, reward: str = "paired") -> None:
        self.suite, self.cache, self.jobs, self.reward = suite, cache, jobs, reward
        self.pool: Any = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Evaluator:
        if self.jobs == 1:
            _init_worker(self.suite, self.cache, self.reward)
        else:
            self.pool = self._stack.enter_context(common.worker_pool(
                self.jobs, _init_worker, (self.suite, self.cache, self.reward)))
        return self

    def __exit__(self, *exc: Any) -> bool:
        return bool(self._stack.__exit__(*exc))

    def __call__(self, settings: dict[str, float], pairs: list[tuple[str, int]]) -> list[float]:
        if self.pool is None:
            return _returns(settings, pairs)
        chunks = [pairs[i::self.jobs * 4] for i in range(self.jobs * 4)]
        parts = list(self.pool.map(_returns, [settings] * len(chunks), chunks))
        out: list[float] = [0.0] * len(pairs)
        for i, part in enumerate(parts):
            out[i::self.jobs * 4] = part
        return out


# ------------------------------------------------------------------ the artefact
def fitted_policy(env: Any, settings: dict[str, float], strength: float) -> Any:
    """A DeepSets policy anchored on DUS-H with ``settings`` and a zero learned head: its
    deterministic actions are the fitted rule's (its sampled ones jitter around them)."""
    import torch

    from dus_agents.deepsets import DeepSetsPolicy, deepsets_kwargs

    kwargs = deepsets_kwargs(env, hidden=(64, 64), head=(64,), anchor="heuristic",
                             anchor_strength=strength)
    kwargs["anchor"].update({k: float(v) for k, v in settings.items()})
    with torch.random.fork_rng(devices=[]):  # the init draws leave the caller's RNG alone
        torch.manual_seed(0)
        policy = DeepSetsPolicy(env.observation_space, env.action_space, lambda _: 0.0,
                                **kwargs)
    with torch.no_grad():
        policy.rho[-1].weight.zero_()
        policy.rho[-1].bias.zero_()
    return policy


def write_policy(path: str | os.PathLike, suite: str, settings: dict[str, float],
                 strength: float, metadata: dict[str, Any]) -> Path:
    from dus_agents.ppo import PPOPolicy
    from dus_env.env_v1 import DUSEnvV1

    env = DUSEnvV1(suite=suite)
    try:
        policy = fitted_policy(env, settings, strength)
        return PPOPolicy(policy, env.spec_dict()).save(path, metadata=metadata)
    finally:
        env.close()


# ------------------------------------------------------------------ the search
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    import optuna

    from dus_agents.evaluation.stats import t_interval
    from dus_env.sampler import HEURISTIC_DEFAULTS
    from dus_env.suites import SUITES

    args = common.parse(Args, argv)
    common.check_option("--suite", args.suite, SUITES)
    common.check_option("--reward", args.reward, common.PAIRED_REWARDS)
    check_at_least("--tasks", args.tasks, 0)
    check_at_least("--seeds-per-task", args.seeds_per_task, 1)
    check_at_least("--trials", args.trials, 1)
    check_at_least("--jobs", args.jobs, 1)
    if not args.strength > 0:
        raise UsageError(f"--strength={args.strength}: must be > 0")
    suite = SUITES[args.suite]
    tasks = suite.train[: args.tasks] if args.tasks else suite.train
    unpinned = [t.name for t in tasks if not t.seeds]
    if unpinned:
        raise UsageError(f"--suite={args.suite!r}: training tasks {unpinned} have no pinned "
                         "seed pool; the fit reads training seeds only")
    pairs = [(t.name, s) for t in tasks for s in t.seeds[: args.seeds_per_task]]
    if args.policy_out:  # a bad path fails now, not after the search (losing --out with it)
        check_output_file("--policy-out", args.policy_out)
        if args.out and Path(args.policy_out).resolve() == Path(args.out).resolve():
            raise UsageError(f"--policy-out={args.policy_out!r} is --out's path; give the "
                             "policy artefact a file of its own")
    common.setup(args)
    log = common.logger("fit_heuristic")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    machine = common.machine_info()
    start = time.perf_counter()
    trials: list[dict[str, Any]] = []

    def record(complete: bool) -> dict[str, Any]:
        """The search so far as --out's JSON (``complete``: every trial finished)."""
        best = max(trials, key=lambda t: t["value"])
        return {
            "machine": machine, "command": sys.argv, "suite": args.suite,
            "reward": args.reward, "tasks": [t.name for t in tasks],
            "seeds_per_task": args.seeds_per_task, "pairs": len(pairs),
            "space": {k: list(v) for k, v in SPACE.items()},
            "defaults": dict(HEURISTIC_DEFAULTS), "complete": complete,
            "trials_planned": args.trials, "trials": trials,
            "best": {k: best[k] for k in ("number", "settings", "value", "interval")},
            "seconds": time.perf_counter() - start,
        }

    with tempfile.TemporaryDirectory(prefix="dus_fit_") as tmp:
        def objective(trial: optuna.Trial) -> float:
            params = {name: trial.suggest_float(name, lo, hi, log=log_scale)
                      for name, (lo, hi, log_scale) in SPACE.items()}
            settings = settings_of(params)
            returns = evaluate(settings, pairs)
            value = sum(returns) / len(returns)
            trials.append({"number": trial.number, "settings": settings, "value": value,
                           "interval": t_interval(returns).as_dict(), "returns": returns})
            log.info("trial %d: %+.3f vs DUS-H over %d pairs (%s)", trial.number, value,
                     len(pairs), ", ".join(f"{k}={v:.3g}" for k, v in settings.items()))
            common.write_json(args.out, record(complete=False))  # a stop keeps this trial
            return value

        with Evaluator(args.suite, args.reference_cache or tmp, args.jobs,
                       args.reward) as evaluate:
            study = optuna.create_study(direction="maximize",
                                        sampler=optuna.samplers.TPESampler(seed=args.seed))
            study.enqueue_trial(dict(HEURISTIC_DEFAULTS))
            study.optimize(objective, n_trials=args.trials)
    result = record(complete=True)
    best = result["best"]
    common.write_json(args.out, result)  # before the policy: a failure there keeps the search
    print(f"best of {len(trials)} trials (#{best['number']}): "
          + ", ".join(f"{k}={v:.3g}" for k, v in best["settings"].items())
          + f"; mean paired return vs DUS-H on the fit's {len(pairs)} training pairs "
          f"{common.interval_text(best['interval'])} ({args.reward}; optimistic: the maximum of "
          f"{len(trials)} noisy scores)")
    if args.policy_out:
        path = write_policy(args.policy_out, args.suite, best["settings"], args.strength,
                            {"fit_heuristic": best, "suite": args.suite})
        result["policy"] = str(path)
        print(f"wrote {path}: replay it as ppo:{path}")
        common.write_json(args.out, result)
    if args.smoke:
        print("smoke ok")
    return result


if __name__ == "__main__":
    sys.exit(common.run(main))
