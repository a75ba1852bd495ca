"""Held-out tasks: does one pretrained sampling policy beat DUS-H on tasks it never saw?

Tasks (``--tasks``, default: the held-out part of ``synthetic-mix`` and of ``real``: the mfeat
view pairs and three-view sets and two-view Fashion-MNIST, none of which the generalist ever
trained on) x policies:

* ``uniform``; ``heuristic`` (DUS-H on the DUS-v1 grid, 9% steps);
* ``ppo-default``: PPO trained on the ``default`` preset as ``dus-train`` does by default
  (``--ppo-default``, a DUS-v0 policy: it runs only on tasks with its layout, 2 modalities and
  the same history length, reading the modalities in their order; elsewhere "n/a");
* ``generalist``: the DUS-v1 DeepSets policy (``--generalist``, default the pretrained one);
* ``oracle``: each task's best rule from ``benchmarks.oracle`` (``--oracle``): an open-loop
  schedule, or DUS-H with settings tuned for that task.

Each run trains the task's model from fresh with the policy setting the batch sizes; the model
with the best validation accuracy is tested once (the machinery of ``dus-evaluate``). Per task:
mean test accuracy per policy and the seed-paired difference (points, 95% t-interval) against
uniform and against DUS-H. Across tasks: the mean of the per-task paired gains with a 95%
t-interval over tasks, win/tie/loss counts against DUS-H (a win: the interval above 0), and
the share of the oracle's gain over uniform the generalist reaches where that gain is
significant.

    python -m benchmarks.generalization --oracle results/oracle.json --out results/generalization.json
    python -m benchmarks.generalization --smoke
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks import common
from benchmarks.oracle import oracle_policy, resolve_tasks
from dus_agents.evaluation.runs import run_one
from dus_agents.evaluation.stats import paired_difference, t_interval
from dus_agents.heuristic import HeuristicPolicy, UniformPolicy
from dus_agents.cli.common import check_at_least, check_option, comma_list
from dus_env.errors import UsageError
from dus_env.suites import Task

POLICIES: tuple[str, ...] = ("uniform", "heuristic", "ppo-default", "generalist", "oracle")


@dataclasses.dataclass
class Args(common.BenchArgs):
    tasks: str = "synthetic-mix:heldout,real:heldout"
    """Comma list of SUITE:SPLIT or SUITE:TASK (benchmarks.oracle's syntax)."""
    policies: str = ",".join(POLICIES)
    """Comma list of policies to run (of: uniform, heuristic, ppo-default, generalist,
    oracle)."""
    synthetic_seeds: int = 20
    """Test seeds (0..N-1) per synthetic task."""
    real_seeds: int = 10
    """Test seeds (0..N-1) per task on real data."""
    generalist: str = "pretrained"
    """The generalist: ``pretrained`` (shipped), a path to a DUS-v1 PPO artefact, or a policy
    spec (``ppo:PATH``, ``sampled:ppo:PATH``: its actions sampled, seed 0 per task)."""
    ppo_default: str = ""
    """A DUS-v0 PPO artefact trained on the default preset (empty: policy left out)."""
    oracle: str = ""
    """benchmarks.oracle's JSON, or a comma list of them (empty: policy left out)."""
    probe_max_train: int = 2000
    """Training rows of the linear probes."""
    resume: bool = False
    """Keep the tasks already in --out that were run with the same settings (policies,
    generalist, ppo-default, oracle, seeds, probe rows) and the same policy and oracle files
    (SHA-256), and run only the rest: an interrupted run loses no finished task. A file from
    other settings or files, or holding tasks --tasks does not list, is refused."""
    jobs: int = 1
    """Worker processes the tasks are spread over (each task's runs stay in one process; the
    numbers do not depend on it). Each finished task is written to --out at once."""

    SMOKE: ClassVar[dict[str, Any]] = {"tasks": "tiny:heldout", "synthetic_seeds": 2,
                                        "generalist": ""}
    """--smoke: the tiny suite and a generalist trained there for a few steps; ppo-default
    and oracle run when their files are given."""


def _v1_env(task: Task):
    from dus_env.env_v1 import DUSEnvV1

    return DUSEnvV1(config=task.config, permute_modalities=False)


def _policies(args: Args, task: Task, wanted: list[str]) -> dict[str, tuple[Any, Any] | None]:
    """Policy name -> (env, policy) for this task, or None where the policy cannot run."""
    from dus_agents.ppo import PPOPolicy
    from dus_agents.registry import make_policy
    from dus_env.env import DUSEnv

    env = _v1_env(task)
    out: dict[str, tuple[Any, Any] | None] = {}
    for name in wanted:
        if name == "uniform":
            out[name] = (env, UniformPolicy.for_env(env))
        elif name == "heuristic":
            out[name] = (env, HeuristicPolicy.for_env(env))
        elif name == "generalist":
            out[name] = (env, make_policy(_generalist_spec(args.generalist), env))
        elif name == "oracle":
            found = _oracle_entries(args)[0].get(task.name)
            out[name] = None if found is None else (env, oracle_policy(env, found))
        elif name == "ppo-default":
            policy = PPOPolicy.load(args.ppo_default)
            v0 = DUSEnv(config=task.config.replace(sampler=dataclasses.replace(
                task.config.sampler, multipliers=tuple(policy.env_spec["multipliers"]))))
            fits = (v0.layout.size == policy.env_spec["observation_size"]
                    and len(v0.modalities) == policy.env_spec["n_modalities"])
            out[name] = (v0, policy) if fits else None
    return out


def _generalist_spec(given: str) -> str:
    """--generalist as a policy spec: ``pretrained``, ``ppo:PATH``, ``sampled:...``."""
    return ("pretrained" if given in ("", "pretrained") else given
            if given.startswith(("ppo:", "sampled:")) else f"ppo:{given}")


def _spec_file(spec: str) -> Path:
    """The file a generalist spec reads (the shipped policy for ``pretrained``)."""
    from dus_agents.registry import pretrained_path

    spec = spec.removeprefix("sampled:")
    return pretrained_path() if spec == "pretrained" else Path(spec.split(":", 1)[1])


def _oracle_entries(args: Args) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """Every --oracle file's tasks (task name -> its entry) and each file's search seeds;
    an unreadable file, or one without its tasks or search seeds, is a usage error."""
    entries: dict[str, Any] = {}
    seeds: dict[str, list[int]] = {}
    for path in comma_list("--oracle", args.oracle):
        try:
            found = json.loads(Path(path).read_text())
            tasks, searched = found["tasks"], found["search_seeds"]
            if not (isinstance(tasks, dict) and isinstance(searched, list)
                    and all(isinstance(v, int) for v in searched)):
                raise TypeError("'tasks' must be an object and 'search_seeds' a list of seeds")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"--oracle={path!r} is not a benchmarks.oracle result "
                             f"({type(exc).__name__}: {exc})") from None
        entries.update(tasks)
        seeds[path] = searched
    return entries, seeds


def test_seeds(args: Args, task: Task) -> list[int]:
    """The episode seeds a task is tested on (0..N-1: --synthetic-seeds or --real-seeds)."""
    synthetic = task.config.data.name == "synthetic"
    return list(range(args.synthetic_seeds if synthetic else args.real_seeds))


def check_inputs(args: Args, wanted: list[str], tasks: list[Task]) -> dict[str, str]:
    """Every file the wanted policies read, checked before any run: the generalist loads for
    every task's env, each oracle file holds what it should and was not searched on a test seed
    of a task it serves (it would be reported on the runs it was tuned on), the ppo-default
    artefact loads. Returns each file's SHA-256 (what a --resume must find unchanged); a
    problem is a usage error naming the flag."""
    from dus_agents.ppo import PPOPolicy
    from dus_agents.registry import make_policy

    digests: dict[str, str] = {}

    def digest(flag: str, path: Path) -> None:
        try:
            digests[f"{flag}={path}"] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise UsageError(f"{flag}={str(path)!r} cannot be read ({exc})") from None

    if "generalist" in wanted:
        spec = _generalist_spec(args.generalist)
        try:
            path = _spec_file(spec)
        except OSError as exc:
            raise UsageError(f"--generalist={args.generalist!r}: {exc}") from None
        digest("--generalist", path)
        for task in tasks:
            try:
                make_policy(spec, _v1_env(task))
            except (OSError, ValueError) as exc:
                raise UsageError(f"--generalist={args.generalist!r} cannot act in task "
                                 f"{task.name!r}: {exc}") from None
    if "oracle" in wanted:
        entries, searched = _oracle_entries(args)
        for path, seeds in searched.items():
            digest("--oracle", Path(path))
            served = [t for t in tasks if t.name in entries]
            tested = sorted({s for t in served for s in test_seeds(args, t)} & set(seeds))
            if tested:
                raise UsageError(
                    f"--oracle={path!r} was searched on seeds {tested} that are test seeds "
                    f"of this run (0..N-1 of --synthetic-seeds/--real-seeds): it would be "
                    "reported on the runs it was tuned on; search it on other seeds")
        for task in tasks:
            if task.name in entries:
                try:
                    oracle_policy(_v1_env(task), entries[task.name])
                except (KeyError, TypeError, ValueError) as exc:
                    raise UsageError(f"--oracle: the entry of task {task.name!r} is not a "
                                     f"schedule or DUS-H settings for it ({exc})") from None
    if "ppo-default" in wanted:
        digest("--ppo-default", Path(args.ppo_default))
        try:
            policy = PPOPolicy.load(args.ppo_default)
            policy.env_spec["observation_size"], policy.env_spec["n_modalities"]
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"--ppo-default={args.ppo_default!r} is not a DUS-v0 PPO "
                             f"artefact ({type(exc).__name__}: {exc})") from None
    return digests


def evaluate_task(args: Args, task: Task, wanted: list[str]) -> dict[str, Any]:
    synthetic = task.config.data.name == "synthetic"
    seeds = test_seeds(args, task)
    runs = _policies(args, task, wanted)
    acc: dict[str, dict[int, float]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, pair in runs.items():
        if pair is None:
            continue
        env, policy = pair
        acc[name], rows[name] = {}, []
        for seed in seeds:
            row, _ = run_one(env, name, task.name, seed, args.probe_max_train, policy=policy)
            acc[name][seed] = float(row["accuracy"])
            rows[name].append({k: row[k] for k in row if k.startswith(("samples_", "acc"))})
    out: dict[str, Any] = {"modalities": list(task.config.modalities), "seeds": seeds,
                           "kind": "synthetic" if synthetic else task.config.data.name,
                           "policies": {}}
    for name in wanted:
        if name not in acc:
            out["policies"][name] = None
            continue
        entry = {"accuracy": t_interval(acc[name].values()).as_dict(),
                 "mean_samples": {k: float(np.mean([r[k] for r in rows[name]]))
                                  for k in rows[name][0] if k.startswith("samples_")}}
        for base in ("uniform", "heuristic"):
            if base in acc and name != base:
                diff = paired_difference({s: 100 * v for s, v in acc[name].items()},
                                         {s: 100 * v for s, v in acc[base].items()})
                entry[f"vs_{base}"] = diff.as_dict()
        out["policies"][name] = entry
    return out


def across_tasks(tasks: dict[str, Any]) -> dict[str, Any]:
    """The summary over tasks: mean gain (CI over task means), W/T/L vs DUS-H, oracle share."""
    out: dict[str, Any] = {}
    names = sorted({p for t in tasks.values() for p, e in t["policies"].items() if e})
    for name in names:
        if name == "uniform":
            continue
        gains = {t: e["policies"][name]["vs_uniform"]["mean"] for t, e in tasks.items()
                 if e["policies"].get(name) and "vs_uniform" in e["policies"][name]}
        entry: dict[str, Any] = {"tasks": len(gains),
                                 "mean_gain_vs_uniform": t_interval(gains.values()).as_dict()}
        vs_h = {t: e["policies"][name]["vs_heuristic"] for t, e in tasks.items()
                if e["policies"].get(name) and "vs_heuristic" in e["policies"][name]}
        if vs_h:
            entry["mean_gain_vs_heuristic"] = t_interval(
                [d["mean"] for d in vs_h.values()]).as_dict()
            wins = sum(1 for d in vs_h.values() if d["low"] is not None and d["low"] > 0)
            losses = sum(1 for d in vs_h.values() if d["high"] is not None and d["high"] < 0)
            entry["vs_heuristic_win_tie_loss"] = [wins, len(vs_h) - wins - losses, losses]
        out[name] = entry
    shares = {}
    for t, e in tasks.items():
        oracle, gen = e["policies"].get("oracle"), e["policies"].get("generalist")
        if oracle and gen and oracle["vs_uniform"]["low"] is not None and \
                oracle["vs_uniform"]["low"] > 0 and oracle["vs_uniform"]["mean"] > 0:
            shares[t] = gen["vs_uniform"]["mean"] / oracle["vs_uniform"]["mean"]
    out["oracle_share"] = {"tasks_with_significant_oracle_gain": sorted(shares),
                           "generalist_share_per_task": shares,
                           "mean_share": float(np.mean(list(shares.values())))
                           if shares else None}
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    tasks = list(result["tasks"])
    names = [p for p in POLICIES if p != "uniform" and any(
        result["tasks"][t]["policies"].get(p) for t in tasks)]
    fig = Figure(figsize=(max(6.0, 0.55 * len(tasks) * len(names) / 2), 3.6),
                 layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        means, errs, xs = [], [], []
        for j, t in enumerate(tasks):
            e = result["tasks"][t]["policies"].get(name)
            if not e:
                continue
            d = e["vs_uniform"]
            xs.append(j + (i - (len(names) - 1) / 2) * width)
            means.append(d["mean"])
            errs.append(d["half_width"] or 0.0)
        ax.bar(xs, means, width, yerr=errs, capsize=2, label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(tasks)), tasks, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("test accuracy vs uniform (points)")
    ax.legend(fontsize=7, ncols=len(names))
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse(Args, argv)
    check_at_least("--synthetic-seeds", args.synthetic_seeds, 2)
    check_at_least("--real-seeds", args.real_seeds, 2)
    check_at_least("--jobs", args.jobs, 1)
    common.setup(args)
    wanted = list(dict.fromkeys(comma_list("--policies", args.policies)))
    for name in wanted:
        check_option("--policies", name, POLICIES)
    if "uniform" not in wanted:
        raise UsageError(f"--policies={args.policies!r} lacks 'uniform': every gain is "
                         "measured against it")
    if "ppo-default" in wanted and not args.ppo_default:
        wanted.remove("ppo-default")
    if "oracle" in wanted and not args.oracle:
        wanted.remove("oracle")
    with tempfile.TemporaryDirectory(prefix="dus_smoke_") as scratch:
        if args.smoke and "generalist" in wanted and not args.generalist:
            args = dataclasses.replace(args, generalist=_smoke_generalist(Path(scratch)))
        return _run(args, wanted)


def _settings(args: Args, wanted: list[str], inputs: dict[str, str]) -> dict[str, Any]:
    """What decides a task's numbers (a resumed run keeps only tasks run with the same):
    the flags, and the SHA-256 of every file the policies read (``inputs``)."""
    return {"policies": wanted, "generalist": args.generalist, "ppo_default": args.ppo_default,
            "oracle": args.oracle, "synthetic_seeds": args.synthetic_seeds,
            "real_seeds": args.real_seeds, "probe_max_train": args.probe_max_train,
            "inputs": inputs}


def _finished(args: Args, settings: dict[str, Any], order: list[Task]) -> dict[str, Any]:
    """The tasks of an earlier run in --out with the same settings and input files
    (--resume); a file from other settings, changed inputs, or other tasks is refused."""
    earlier = common.earlier_run(args.out, args.resume)
    if earlier is None:
        return {}
    theirs = earlier.get("settings")
    if not isinstance(theirs, dict) or "inputs" not in theirs:
        raise UsageError(f"--resume: {args.out} does not record the settings and input files "
                         "its tasks were run with; run without --resume (or move it away)")
    if theirs != settings:
        changed = sorted(k for k in set(theirs) | set(settings)
                         if theirs.get(k) != settings.get(k))
        raise UsageError(f"--resume: {args.out} was run with other settings or input files "
                         f"(differing: {', '.join(changed)}; {theirs}); this run has {settings}")
    tasks = dict(earlier.get("tasks", {}))
    other = sorted(set(tasks) - {t.name for t in order})
    if other:
        raise UsageError(f"--resume: {args.out} holds tasks that --tasks={args.tasks!r} does "
                         f"not list ({', '.join(other)}); a resumed run would drop them: list "
                         "them too, or write to another --out")
    return tasks


def _run(args: Args, wanted: list[str]) -> dict[str, Any]:
    log = common.logger("generalization")
    order = [task for _, task in resolve_tasks(args.tasks)]
    settings = _settings(args, wanted, check_inputs(args, wanted, order))
    finished = _finished(args, settings, order)
    result: dict[str, Any] = {"machine": common.machine_info(), "command": sys.argv,
                              "policies": wanted, "generalist": args.generalist,
                              "settings": settings, "tasks": {}}
    if finished:
        result["resumed_tasks"] = sorted(finished)
    start = time.perf_counter()
    done: dict[str, Any] = {}
    for task in order:
        if task.name in finished:
            done[task.name] = finished[task.name]
            log.info("%s kept from %s (--resume)", task.name, args.out)
    todo = [task for task in order if task.name not in done]

    def finish(name: str, entry: dict[str, Any]) -> None:
        done[name] = entry
        result["tasks"] = {t.name: done[t.name] for t in order if t.name in done}
        log.info("%s done (%.0f s so far)", name, time.perf_counter() - start)
        common.write_json(args.out, result)

    if args.jobs == 1 or len(todo) < 2:
        for task in todo:
            finish(task.name, evaluate_task(args, task, wanted))
    else:
        with common.worker_pool(min(args.jobs, len(todo))) as pool:
            futures = {pool.submit(evaluate_task, args, task, wanted): task.name
                       for task in todo}
            for future in as_completed(futures):
                finish(futures[future], future.result())
    result["tasks"] = {t.name: done[t.name] for t in order}
    result["across_tasks"] = across_tasks(result["tasks"])
    result["seconds"] = time.perf_counter() - start
    for name, entry in result["across_tasks"].items():
        if name == "oracle_share":
            print(f"oracle share (generalist / oracle gain where the oracle's is significant): "
                  f"{entry['mean_share']}")
            continue
        g = entry["mean_gain_vs_uniform"]
        line = f"{name:12s} vs uniform {g['mean']:+.2f} [{g['low']}, {g['high']}] over " \
               f"{entry['tasks']} tasks"
        if "mean_gain_vs_heuristic" in entry:
            h = entry["mean_gain_vs_heuristic"]
            line += f"; vs DUS-H {h['mean']:+.2f} [{h['low']}, {h['high']}], W/T/L " \
                    f"{entry['vs_heuristic_win_tie_loss']}"
        print(line)
    common.write_json(args.out, result)
    if args.out:
        plot(result, Path(args.out).with_suffix(".png"))
    if args.smoke:
        print("smoke ok")
    return result


def _smoke_generalist(folder: Path) -> str:
    """A DeepSets policy trained for a few steps on the tiny suite (smoke runs only)."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    import dus_env
    from dus_agents.deepsets import DeepSetsPolicy, deepsets_kwargs
    from dus_agents.ppo import PPOPolicy, quiet_logger

    env = gym.make(dus_env.ENV_V1_ID, suite="tiny", config={"reward": {"name": "paired"}})
    model = PPO(DeepSetsPolicy, env, n_steps=12, batch_size=6, n_epochs=1, device="cpu",
                seed=0, policy_kwargs=deepsets_kwargs(env, hidden=(8,), head=(8,)))
    model.set_logger(quiet_logger())
    model.learn(12)
    path = folder / "generalist.zip"
    return str(PPOPolicy(model.policy, env.unwrapped.spec_dict()).save(path))


if __name__ == "__main__":
    sys.exit(common.run(main))
