"""Choose between candidate DUS-v1 policies on a suite's validation slice (never held out).

Each candidate (``--candidates``: ``pretrained``, ``uniform``, ``heuristic`` or ``ppo:PATH``)
runs one deterministic episode per (task, seed) pair of the slice: the first
``--eval-tasks`` training tasks of ``--suite`` x the suite's validation seeds (seeds no
training episode uses). ``--seeds`` replaces the suite's validation seeds with others
outside every training pool (seeds no candidate's checkpoint selection saw). The score is the
mean paired return (points of validation accuracy over the uniform run from the same seeds),
the statistic ``dus-train --suite`` selects its checkpoints by. Reported: each candidate's mean with a 95% interval and the seed-paired
difference of each against the first candidate, the incumbent. The choice: the incumbent,
unless another candidate's paired gain over it has its 95% interval above 0 (then the best mean
of those): a replacement needs evidence, not a noisy lead. The held-out tasks and the test
split are never read.

    python -m benchmarks.select_generalist --candidates pretrained,ppo:runs/NAME/policy.zip \\
        --suite mixed --eval-tasks 16 --out results/select_generalist.json
    python -m benchmarks.select_generalist --smoke
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, ClassVar

from benchmarks import common
from dus_agents.callbacks import slice_returns
from dus_agents.evaluation.sweep import parse_seeds
from dus_agents.evaluation.stats import paired_difference, t_interval
from dus_agents.registry import make_policy
from dus_agents.cli.common import check_at_least, comma_list
from dus_env.suites import SUITES


@dataclasses.dataclass
class Args(common.BenchArgs):
    candidates: str = "pretrained"
    """Comma list of policies: pretrained, uniform, heuristic, ppo:PATH (the first is the
    incumbent: the baseline of the paired differences, kept unless beaten)."""
    controls: str = ""
    """Comma list of policies run on the same slice for comparison but never chosen (e.g.
    heuristic); every candidate's seed-paired difference to each is reported too."""
    suite: str = "mixed"
    """The suite whose training tasks x validation seeds form the slice."""
    eval_tasks: int = 16
    """The first N training tasks of the suite (mixed interleaves synthetic and real)."""
    seeds: str = ""
    """Episode seeds of the slice, e.g. 900004-900011 (empty: the suite's validation seeds).
    Seeds no candidate was selected on remove the selection's optimism from the comparison;
    a seed of a training task's pool is refused."""
    reward: str = "paired"
    """The score's reward: paired (final validation accuracy minus the uniform run's) or
    paired_best (best validation accuracy so far minus the uniform run's best: the accuracy
    of the weights model selection on validation keeps, as the held-out judge reports)."""

    SMOKE: ClassVar[dict[str, Any]] = {"candidates": "uniform,heuristic", "suite": "tiny",
                                        "eval_tasks": 2, "controls": "random"}


def choose(candidates: dict[str, dict[str, Any]], names: list[str]) -> str:
    """The incumbent (the first candidate) unless another beats it on the slice: the best
    mean among those whose seed-paired gain over the incumbent has its 95% interval above 0."""
    base = names[0]
    better = [n for n in names[1:]
              if (candidates[n][f"vs_{base}"]["low"] or 0.0) > 0.0]
    if not better:
        return base
    return max(better, key=lambda n: candidates[n]["mean_paired_return"]["mean"])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    import dus_env
    from dus_agents.base import make_dus_env
    from dus_env.errors import UsageError

    args = common.parse(Args, argv)
    common.check_option("--suite", args.suite, SUITES)
    common.check_option("--reward", args.reward, common.PAIRED_REWARDS)
    check_at_least("--eval-tasks", args.eval_tasks, 1)
    names = comma_list("--candidates", args.candidates)
    controls = comma_list("--controls", args.controls) if args.controls else []
    if set(controls) & set(names):
        raise UsageError(f"--controls: {sorted(set(controls) & set(names))} are candidates "
                         "too; a policy is one or the other")
    common.setup(args)
    log = common.logger("select_generalist")
    suite = SUITES[args.suite]
    seeds = parse_seeds(args.seeds) if args.seeds else list(suite.validation_seeds)
    tasks = suite.train[: args.eval_tasks]
    trained_on = {s for t in tasks for s in (t.seeds or ())}
    if set(seeds) & trained_on:
        raise UsageError(f"--seeds={args.seeds!r}: seeds {sorted(set(seeds) & trained_on)} are "
                         f"training seeds of {args.suite!r}'s tasks; use validation seeds "
                         f"(e.g. {suite.validation_seeds[0]} and up)")
    pairs = [(t.name, s) for t in tasks for s in seeds]
    with tempfile.TemporaryDirectory(prefix="dus_select_") as cache:
        env = make_dus_env(dus_env.ENV_V1_ID, suite=args.suite,
                           config={"reward": {"name": args.reward, "reference_cache": cache}})
        try:  # a bad name or file fails before any episode
            policies = {name: make_policy(name, env) for name in names + controls}
        except (ValueError, OSError) as exc:
            raise UsageError(f"--candidates/--controls: {exc}") from None
        returns = {}
        for name, policy in policies.items():
            returns[name] = slice_returns(env, policy, pairs)
            log.info("%s: mean paired return %+.2f over %d pairs", name,
                     sum(returns[name]) / len(pairs), len(pairs))
        env.close()
    base = names[0]
    result: dict[str, Any] = {
        "machine": common.machine_info(), "command": sys.argv, "suite": args.suite,
        "reward": args.reward, "seeds": seeds,
        "slice": [list(p) for p in pairs],
        "candidates": {n: {"mean_paired_return": t_interval(r).as_dict(), "returns": r}
                       for n, r in returns.items()}}
    for name in names[1:] + controls:
        diff = paired_difference(dict(enumerate(returns[name])), dict(enumerate(returns[base])))
        result["candidates"][name][f"vs_{base}"] = diff.as_dict()
    for control in controls:
        for name in names:
            diff = paired_difference(dict(enumerate(returns[name])),
                                     dict(enumerate(returns[control])))
            result["candidates"][name][f"vs_{control}"] = diff.as_dict()
    result["controls"] = controls
    result["chosen"] = choose(result["candidates"], names)
    for name, entry in result["candidates"].items():
        line = f"{name}: {common.interval_text(entry['mean_paired_return'])}"
        for other in [base, *controls]:
            if f"vs_{other}" in entry:
                line += f"; vs {other} {common.interval_text(entry[f'vs_{other}'])}"
        print(line + (" (control)" if name in controls else ""))
    print(f"chosen (the incumbent {base} unless another beats it with the paired interval "
          f"above 0): {result['chosen']}")
    common.write_json(args.out, result)
    if args.smoke:
        print("smoke ok")
    return result


if __name__ == "__main__":
    sys.exit(common.run(main))
