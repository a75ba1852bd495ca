"""A sweep: every (policy, host, seed) of a plan run once, rows streamed to disk, reports.

:func:`validate` checks every input and builds every policy once before anything is written;
:func:`sweep` runs what ``results.csv`` does not hold yet (locally, or on Ray with
:mod:`dus_agents.evaluation.ray_sweep`); :func:`write_reports` writes the summaries and plots.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dus_agents.evaluation import stats
from dus_agents.evaluation.results import ResultsStore, load_rows, run_key
from dus_agents.evaluation.runs import MAIN_METRICS, header_for, make_env, run_one
from dus_agents.registry import ARTIFACT_KINDS, POLICY_NAMES, env_layout, make_policy
from dus_agents.cli import common as cli
from dus_agents.cli.common import check_at_least, comma_list
from dus_env.config import HOSTS, PRESETS, config_to_dict
from dus_env.env import DUSEnv
from dus_env.errors import UsageError, check_choice
from dus_env.files import atomic_write

BACKENDS: tuple[str, ...] = ("local", "ray")
"""Where the runs of a sweep execute: this process, one after another, or Ray tasks."""
RAY_FLAGS: tuple[str, ...] = ("address", "ray_cpus", "cpus_per_run", "gpus_per_run",
                              "max_retries")
"""Settings that only the Ray backend reads."""
MAX_SEEDS = 100_000
"""The most seeds one sweep may list."""
MAX_THREADS = cli.MAX_THREADS
"""The most threads a run may ask for (OpenMP aborts on absurd counts)."""


@dataclass
class EvaluateArgs:
    """What to evaluate (each field is one ``dus-evaluate`` / ``evaluate.py`` flag)."""

    policies: str = "uniform,heuristic"
    """Comma list of policies: uniform, random, heuristic (DUS-H at full resolution),
    heuristic-grid (DUS-H snapped to the action grid), reinforce (a fresh online agent),
    pretrained (the generalist shipped with the package; presets with history_length 8, i.e. all
    but tiny), or a saved policy as ppo:PATH / reinforce:PATH (a file or a train_agent.py run
    directory); sampled:SPEC (sampled:pretrained, sampled:ppo:PATH) replays a PPO policy by
    sampling its actions."""
    hosts: str = "joint"
    """Comma list of host MML methods: joint, mla, ogm_ge, unimodal."""
    preset: str = "default"
    """Env preset (dataset and iteration budget); see --help's list."""
    seeds: str = "0-2"
    """Comma list of non-negative integer seeds and ranges, e.g. 0-4 or 0,3,7-9."""
    out_dir: str = ""
    """Output directory (default runs/evaluate/<preset>); rerunning into it resumes."""
    set: list[str] = dataclasses.field(default_factory=list, metadata={"metavar": "KEY=VALUE"})
    """Env config override KEY=VALUE over the preset, repeatable, e.g. --set
    trainer.loss_reduction=base_sum (values read as JSON when they parse)."""
    budget_matched: bool = False
    """Force sampler.budget='renormalize' so every policy consumes the same total samples
    (samples per modality are reported either way)."""
    probe_max_train: int = 5000
    """Training rows the linear probes of the frozen encoders are fit on."""
    confidence: float = 0.95
    """Confidence level of intervals."""
    threads: int = 1
    """CPU threads of each run: torch's and the BLAS pools' (the linear probes); small models
    run fastest on 1."""
    quiet: bool = False
    """No progress bar, no summary print."""
    backend: str = "local"
    """Where runs execute: local, or ray (one Ray task per run; needs pip install
    'dus-env[ray]')."""
    address: str = ""
    """Ray backend: the cluster to join (host:port of the head node, ray://host:10001, or
    auto); empty: start Ray on this machine."""
    ray_cpus: int = 0
    """Ray backend without --address: logical CPUs of the Ray instance started here (0: every
    core this process may use)."""
    cpus_per_run: float = 1.0
    """Ray backend: CPUs each run reserves (match --threads)."""
    gpus_per_run: float = 0.0
    """Ray backend: GPUs each run reserves; a fraction shares a GPU (runs with a GPU train on
    it)."""
    max_retries: int = 2
    """Ray backend: retries of a run whose worker died or raised, before it is reported failed."""


@dataclass
class Plan:
    """Validated input: what to run and where."""

    args: EvaluateArgs
    policies: list[str]
    hosts: list[str]
    seeds: list[int]
    out_dir: Path
    envs: dict[str, DUSEnv]
    budget: str
    other_envs: dict[str, dict[str, DUSEnv]] = dataclasses.field(default_factory=dict)
    """Envs of the same tasks by layout, then host: ``v1`` for policies that act in slots
    (pretrained), ``full`` for the full-resolution heuristic."""
    layouts: dict[str, str] = dataclasses.field(default_factory=dict)
    """Each policy's env layout (``v0``, ``v1`` or ``full``)."""

    def env_for(self, policy: str, host: str) -> DUSEnv:
        """The env ``policy`` runs in for ``host``."""
        layout = self.layouts.get(policy, "v0")
        return (self.envs if layout == "v0" else self.other_envs[layout])[host]


@dataclass
class RunFailure:
    """A run that failed on every attempt (one on the local backend, 1 + ``--max-retries`` on
    Ray); it gets no row, so a rerun retries it."""

    error: str
    attempts: int


RunKey = tuple[str, str, int]
"""(policy, host, seed): one run of a sweep (the preset is the sweep's)."""


# --------------------------------------------------------------------------- validation
def parse_seeds(value: str) -> list[int]:
    """``"0-2,7"`` -> ``[0, 1, 2, 7]`` (non-negative integers; ranges inclusive; at most
    :data:`MAX_SEEDS` of them)."""
    seeds: list[int] = []
    for item in comma_list("--seeds", value):
        lo, _, hi = item.partition("-")
        try:
            bounds = [int(item)] if item.lstrip("+-").isdigit() else [int(lo), int(hi)]
        except ValueError:
            raise UsageError(
                f"--seeds={value!r}: {item!r} is not an integer or a range like 0-4"
            ) from None
        if min(bounds) < 0:
            raise UsageError(f"--seeds={value!r}: seeds must be non-negative integers")
        if bounds[-1] < bounds[0]:
            raise UsageError(f"--seeds={value!r}: range {item!r} is empty (start > end)")
        if bounds[-1] - bounds[0] + 1 + len(seeds) > MAX_SEEDS:
            raise UsageError(f"--seeds={value!r} lists more than {MAX_SEEDS} seeds")
        seeds.extend(range(bounds[0], bounds[-1] + 1))
    return list(dict.fromkeys(seeds))


SAMPLED = "sampled:"
"""Prefix of a PPO policy replayed by sampling its actions (``sampled:pretrained``,
``sampled:ppo:PATH``; :class:`dus_agents.ppo.SampledPolicy`)."""


def check_policy_name(spec: str) -> str:
    """``spec`` in its one spelling (``ppo:DIR/`` and ``ppo:DIR`` are the same policy), or
    ``ValueError`` unless it is a policy name, ``kind:PATH`` or ``sampled:`` and a PPO policy
    (``pretrained`` or ``ppo:PATH``)."""
    if spec.startswith(SAMPLED):
        inner = check_policy_name(spec.removeprefix(SAMPLED))
        if inner != "pretrained" and not inner.startswith("ppo:"):
            raise UsageError(f"--policies={spec!r}: sampled: replays a PPO policy by sampling "
                             "its actions; write sampled:pretrained or sampled:ppo:PATH")
        return SAMPLED + inner
    if ":" in spec:
        kind, path = spec.split(":", 1)
        check_choice("--policies kind", kind, ARTIFACT_KINDS)
        if not path:
            raise UsageError(f"--policies: {spec!r} names no file; write {kind}:PATH")
        return f"{kind}:{os.path.normpath(path)}"
    check_choice("--policies", spec, POLICY_NAMES)
    return spec


RESUME_FIXED: tuple[str, ...] = ("set", "probe_max_train")
"""Settings every row of one output directory must share (a rerun may not change them)."""


def validate(args: EvaluateArgs) -> Plan:
    """Check every input and build every policy once; touches no file. Raises UsageError."""
    try:
        check_choice("--preset", args.preset, PRESETS)
        policies = list(dict.fromkeys(
            check_policy_name(spec) for spec in comma_list("--policies", args.policies)))
        hosts = comma_list("--hosts", args.hosts)
        for host in hosts:
            check_choice("--hosts", host, HOSTS)
        check_choice("--backend", args.backend, BACKENDS)
    except UsageError:
        raise
    except ValueError as err:
        raise UsageError(str(err)) from None
    seeds = parse_seeds(args.seeds)
    cli.require("matplotlib", "plots", "dus-evaluate's figures")
    pairs = cli.check_set(args.set, args.preset)  # as dus-train checks them
    if "host" in pairs.get("trainer", {}):
        raise UsageError(f"--set trainer.host={pairs['trainer']['host']!r} conflicts with "
                         f"--hosts={args.hosts!r}; name the hosts with --hosts only")
    if args.budget_matched and pairs.get("sampler", {}).get("budget", "renormalize") != \
            "renormalize":
        raise UsageError(f"--budget-matched and --set sampler.budget="
                         f"{pairs['sampler']['budget']!r} conflict; give one of them")
    check_at_least("--probe-max-train", args.probe_max_train, 1)
    check_at_least("--threads", args.threads, 1, MAX_THREADS)
    check_at_least("--ray-cpus", args.ray_cpus, 0)
    check_at_least("--cpus-per-run", args.cpus_per_run, 0)
    check_at_least("--gpus-per-run", args.gpus_per_run, 0)
    check_at_least("--max-retries", args.max_retries, 0)
    if args.address and args.ray_cpus:
        raise UsageError(f"--ray-cpus={args.ray_cpus} sizes a Ray instance started on this "
                         f"machine; with --address={args.address!r} the cluster's own resources "
                         "apply: drop one of them")
    if args.backend != "ray":
        defaults = EvaluateArgs()
        for name in RAY_FLAGS:
            if getattr(args, name) != getattr(defaults, name):
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag}={getattr(args, name)!r} applies to the Ray backend "
                                 f"only; add --backend ray or drop {flag}")
    if not 0.0 < args.confidence < 1.0:
        raise UsageError(f"--confidence={args.confidence} is out of range; valid range: (0, 1)")
    out_dir = Path(args.out_dir or os.path.join("runs", "evaluate", args.preset))
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir={str(out_dir)!r} exists and is not a directory")
    for parent in out_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--out-dir={str(out_dir)!r}: {str(parent)!r} is not a directory")
    try:
        envs = {h: make_env(args.preset, h, args.budget_matched, overrides_set=args.set)
                for h in hosts}
    except (ValueError, TypeError) as err:
        raise UsageError(str(err) if str(err).startswith("--set") else f"--set: {err}") from None
    layouts = {}
    for spec in policies:
        try:
            layouts[spec] = env_layout(spec)
        except (OSError, ValueError) as err:
            raise UsageError(f"--policies: cannot read policy {spec!r}: {err}") from None
    other_envs = {layout: {h: make_env(args.preset, h, args.budget_matched,
                                       overrides_set=args.set, layout=layout) for h in hosts}
                  for layout in sorted(set(layouts.values()) - {"v0"})}
    for spec in policies:
        for host, env in (other_envs.get(layouts[spec]) or envs).items():
            try:
                make_policy(spec, env, seed=seeds[0])
            except Exception as err:  # noqa: BLE001 - any failure to load is a usage error
                raise UsageError(
                    f"--policies: cannot build policy {spec!r} for host {host!r}: "
                    f"{type(err).__name__}: {err}"
                ) from None
    budget = next(iter(envs.values())).config.sampler.budget
    plan = Plan(args, policies, hosts, seeds, out_dir, envs, budget, other_envs, layouts)
    _check_existing(plan)
    return plan


def _check_existing(plan: Plan) -> None:
    """Refuse to mix runs of another budget rule or other --set overrides into an existing
    results file."""
    previous = plan.out_dir / "config.json"
    if previous.is_file():
        try:
            before = json.loads(previous.read_text())["args"]
            before = {name: before[name] for name in RESUME_FIXED if name in before}
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
            before = {}
        now = dataclasses.asdict(plan.args)
        for name, value in before.items():
            if value != now[name]:
                flag = "--" + name.replace("_", "-")
                shown = f"{flag} {value}" if name == "set" else f"{flag}={value!r}"
                mine = f"{flag} {now[name]}" if name == "set" else f"{flag}={now[name]!r}"
                raise UsageError(
                    f"--out-dir={str(plan.out_dir)!r} holds runs made with {shown}, but this "
                    f"run uses {mine}; use another --out-dir"
                )
    rows, _ = load_rows(plan.out_dir / "results.csv", repair=False)
    for row in rows:
        if row["preset"] == plan.args.preset and row.get("budget") not in (None, "", plan.budget):
            raise UsageError(
                f"--out-dir={str(plan.out_dir)!r} already holds runs of preset "
                f"{plan.args.preset!r} with sampler.budget={row['budget']!r}, but this run uses "
                f"{plan.budget!r}; use another --out-dir"
            )


# --------------------------------------------------------------------------- running
def prepare_out_dir(plan: Plan) -> ResultsStore:
    """Create the output directory, write ``config.json``, open (and repair) the results."""
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "args": dataclasses.asdict(plan.args),
        "policies": plan.policies, "hosts": plan.hosts, "seeds": plan.seeds,
        "env_configs": {h: config_to_dict(env.config) for h, env in plan.envs.items()},
        "env_spec": next(iter(plan.envs.values())).spec_dict(),
    }
    atomic_write(plan.out_dir / "config.json", json.dumps(config, indent=2) + "\n")
    return ResultsStore(plan.out_dir, header_for(next(iter(plan.envs.values())).modalities))


def run_local(plan: Plan, todo: Sequence[RunKey]
              ) -> Iterator[tuple[RunKey, tuple[dict, dict] | RunFailure]]:
    """The local backend: each run in this process, in order. A run that raises (a corrupt
    media file found when read, a bug) is a :class:`RunFailure` after its one attempt, as on
    the Ray backend after its retries: the other runs go on and get their rows and reports."""
    from threadpoolctl import threadpool_limits

    for policy, host, seed in todo:
        try:
            with threadpool_limits(limits=plan.args.threads):
                result: tuple[dict, dict] | RunFailure = run_one(
                    plan.env_for(policy, host), policy, plan.args.preset, seed,
                    plan.args.probe_max_train)
        except Exception as exc:  # noqa: BLE001 - any run's fault; KeyboardInterrupt is not one
            result = RunFailure(f"{type(exc).__name__}: {exc}", 1)
        yield (policy, host, seed), result


def sweep(plan: Plan, fault: Any = None, progress: Any = None
          ) -> tuple[list[dict[str, str]], dict[RunKey, RunFailure]]:
    """Run every run of ``plan`` not yet in ``results.csv``; append each row (and trace) as it
    finishes. Returns all rows and the runs that failed for good.

    ``progress`` (optional) is called as ``progress(key, total)`` after each run; ``fault`` is
    the Ray backend's test hook (:class:`dus_agents.evaluation.ray_sweep.RunFault`)."""
    try:
        store = prepare_out_dir(plan)
    except OSError as err:  # before any run: a usage problem (read-only, missing rights)
        raise cli.not_writable("--out-dir", plan.out_dir, err) from None
    todo = [(p, h, s) for s in plan.seeds for h in plan.hosts for p in plan.policies
            if (p, h, plan.args.preset, s) not in store.done]
    failures: dict[RunKey, RunFailure] = {}
    if plan.args.backend == "ray":
        from dus_agents.evaluation.ray_sweep import run_ray

        results = run_ray(plan, todo, fault)
    else:
        results = run_local(plan, todo)
    for key, result in results:
        if progress is not None:
            progress(key, len(todo))
        if isinstance(result, RunFailure):
            failures[key] = result
            continue
        row, trace = result
        store.append(row, trace)
    record_failures(plan.out_dir, failures)
    return store.rows, failures


def record_failures(out_dir: Path, failures: dict[RunKey, RunFailure]) -> None:
    """Write ``failed_runs.json`` listing the runs that failed for good, or remove a stale one
    when every run of this sweep finished."""
    path = out_dir / "failed_runs.json"
    if not failures:
        path.unlink(missing_ok=True)
        return
    listing = [{"policy": p, "host": h, "seed": s, "attempts": f.attempts, "error": f.error}
               for (p, h, s), f in failures.items()]
    atomic_write(path, json.dumps(listing, indent=2) + "\n")


def plan_rows(plan: Plan, rows: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """The rows of ``plan``'s own runs (its policies x hosts x seeds, its preset): what its
    reports cover. ``results.csv`` may hold more (earlier sweeps into the same folder with
    other seeds, policies or presets); they stay there, reported by the sweeps that ask for
    them."""
    keys = {(p, h, plan.args.preset, s) for p in plan.policies for h in plan.hosts
            for s in plan.seeds}
    return [r for r in rows if run_key(r) in keys]


def write_reports(plan: Plan, rows: list[dict[str, str]]) -> dict[str, Any]:
    """``summary.json``, ``summary.md`` and the plots of the plan's runs among ``rows``
    (:func:`plan_rows`: the runs ``config.json`` describes)."""
    from dus_agents.evaluation import plots
    from dus_agents.evaluation.results import load_traces

    rows = plan_rows(plan, rows)
    metrics = stats.metric_columns(rows, MAIN_METRICS)
    summary = stats.summarize(rows, metrics, confidence=plan.args.confidence)
    out = plan.out_dir
    traces = load_traces(out / "traces.jsonl", {run_key(r) for r in rows})
    stats.mark_same_decisions(summary, traces)
    atomic_write(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    atomic_write(out / "summary.md", stats.summary_markdown(summary))
    if traces:
        plots.plot_batch_sizes(traces, out / "batch_sizes.png")
        plots.plot_scores(traces, out / "scores.png")
        plots.plot_validation(traces, out / "val_accuracy.png")
    bars = [m for m in metrics if m in MAIN_METRICS or m.startswith(("acc_", "probe_"))]
    if summary["groups"]:
        plots.plot_final_metrics(summary, bars, out / "final_metrics.png")
    return summary
