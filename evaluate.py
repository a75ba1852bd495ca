"""Replay sampling policies inside ordinary training runs and compare them.

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
  seed-paired difference to ``uniform`` where it ran.
* ``batch_sizes.png``, ``scores.png``, ``val_accuracy.png``, ``final_metrics.png``.
* ``config.json``: the arguments and the resolved env config of each host.
* ``failed_runs.json`` (Ray backend, only when runs failed for good): each run that failed on
  every attempt, with its error; such runs have no row, so a rerun retries them.

Backends: ``--backend local`` (default) runs the sweep in this process, one run after another.
``--backend ray`` makes every run one Ray task with its own resources (``--cpus-per-run``,
``--gpus-per-run``); rows stream into the same ``results.csv`` as runs finish, in finishing
order; a run whose worker dies or raises is retried up to ``--max-retries`` times and reported.
With no ``--address`` Ray starts on this machine (``--ray-cpus`` cores); ``--address`` joins a
running cluster (see docs/scaling.md). Ray is the optional extra ``pip install 'dus-env[ray]'``.

Usage::

    python evaluate.py --preset default --policies uniform,heuristic --seeds 0-4
    python evaluate.py --preset tiny --policies uniform,random,heuristic,ppo:runs/ppo/model.zip \\
        --hosts joint,mla --seeds 0-9 --budget-matched --out-dir runs/eval_tiny
    python evaluate.py --preset tiny --policies uniform,heuristic --seeds 0-9 --backend ray
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import functools
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from dus_agents import reporting
from dus_agents.registry import ARTIFACT_KINDS, POLICY_NAMES, make_policy
from dus_agents.rollout import run_episode
from dus_env.config import HOSTS, PRESETS, config_to_dict, overrides_from_pairs
from dus_env.env import DUSEnv
from dus_env.errors import check_choice

KEY_FIELDS: tuple[str, ...] = ("policy", "host", "preset", "seed")
"""A run is identified by these columns of ``results.csv``."""
MAIN_METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "map")
BACKENDS: tuple[str, ...] = ("local", "ray")
"""Where the runs of a sweep execute: this process, one after another, or Ray tasks."""
RAY_FLAGS: tuple[str, ...] = ("address", "ray_cpus", "cpus_per_run", "gpus_per_run",
                              "max_retries")
"""Flags that only the Ray backend reads."""


@dataclass
class Args:
    """Command-line arguments (each field is one ``--flag``)."""

    policies: str = field(default="uniform,heuristic", metadata={"help": (
        "comma list of policies: " + ", ".join(POLICY_NAMES)
        + ", or a saved policy as ppo:PATH / reinforce:PATH")})
    hosts: str = field(default="joint", metadata={"help": (
        "comma list of host MML methods: " + ", ".join(HOSTS))})
    preset: str = field(default="default", metadata={"help": (
        "env preset (dataset and iteration budget): " + ", ".join(PRESETS))})
    seeds: str = field(default="0-2", metadata={"help": (
        "comma list of non-negative integer seeds and ranges, e.g. 0-4 or 0,3,7-9")})
    out_dir: str = field(default="", metadata={"help": (
        "output directory (default runs/evaluate/<preset>); rerunning into it resumes")})
    set: list[str] = field(default_factory=list, metadata={"help": (
        "env config override KEY=VALUE over the preset, repeatable, e.g. --set "
        "trainer.loss_reduction=base_sum (values read as JSON when they parse)")})
    budget_matched: bool = field(default=False, metadata={"help": (
        "force sampler.budget='renormalize' so every policy consumes the same total samples "
        "(samples per modality are reported either way)")})
    probe_max_train: int = field(default=5000, metadata={"help": (
        "training rows the linear probes of the frozen encoders are fit on")})
    confidence: float = field(default=0.95, metadata={"help": "confidence level of intervals"})
    threads: int = field(default=1, metadata={"help": (
        "CPU threads of each run: torch's and the BLAS pools' (the linear probes); small "
        "models run fastest on 1")})
    quiet: bool = field(default=False, metadata={"help": "no progress bar, no summary print"})
    backend: str = field(default="local", metadata={"help": (
        "where runs execute: " + ", ".join(BACKENDS) + " (ray: one Ray task per run; needs "
        "pip install 'dus-env[ray]')")})
    address: str = field(default="", metadata={"help": (
        "Ray backend: the cluster to join (host:port of the head node, ray://host:10001, or "
        "auto); empty: start Ray on this machine")})
    ray_cpus: int = field(default=0, metadata={"help": (
        "Ray backend without --address: logical CPUs of the Ray instance started here "
        "(0: every core this process may use)")})
    cpus_per_run: float = field(default=1.0, metadata={"help": (
        "Ray backend: CPUs each run reserves (match --threads)")})
    gpus_per_run: float = field(default=0.0, metadata={"help": (
        "Ray backend: GPUs each run reserves; a fraction shares a GPU (runs with a GPU train "
        "on it)")})
    max_retries: int = field(default=2, metadata={"help": (
        "Ray backend: retries of a run whose worker died or raised, before it is reported "
        "failed")})


class UsageError(ValueError):
    """Bad command-line input (reported by argparse, exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Replay sampling policies inside training runs; compare them on test.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "set":
            parser.add_argument(flag, action="append", default=[], metavar="KEY=VALUE",
                                help=f.metadata["help"])
        elif f.type in (bool, "bool"):
            parser.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(flag, type=kind, default=f.default, help=f.metadata["help"])
    return parser


# --------------------------------------------------------------------------- validation
def _names(flag: str, value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UsageError(f"{flag}={value!r} is empty; give a comma list")
    return list(dict.fromkeys(items))


def parse_seeds(value: str) -> list[int]:
    """``"0-2,7"`` -> ``[0, 1, 2, 7]`` (non-negative integers; ranges inclusive)."""
    seeds: list[int] = []
    for item in _names("--seeds", value):
        lo, sep, hi = item.partition("-")
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
        seeds.extend(range(bounds[0], bounds[-1] + 1))
    return list(dict.fromkeys(seeds))


def check_policy_name(spec: str) -> None:
    if ":" in spec:
        kind, path = spec.split(":", 1)
        check_choice("--policies kind", kind, ARTIFACT_KINDS)
        if not path:
            raise UsageError(f"--policies: {spec!r} names no file; write {kind}:PATH")
    else:
        check_choice("--policies", spec, POLICY_NAMES)


@dataclass
class Plan:
    """Validated input: what to run and where."""

    args: Args
    policies: list[str]
    hosts: list[str]
    seeds: list[int]
    out_dir: Path
    envs: dict[str, DUSEnv]
    budget: str


def make_env(preset: str, host: str, budget_matched: bool, device: str = "cpu",
             overrides_set: Sequence[str] = ()) -> DUSEnv:
    """The env of one host: the preset, then ``--set`` pairs, then the host and budget."""
    overrides = overrides_from_pairs(overrides_set)
    overrides.setdefault("trainer", {})["host"] = host
    if budget_matched:
        overrides.setdefault("sampler", {})["budget"] = "renormalize"
    if device != "cpu":
        overrides["device"] = device
    return DUSEnv(config=overrides, preset=preset)


def validate(args: Args) -> Plan:
    """Check every input and build every policy once; touches no file. Raises UsageError."""
    try:
        check_choice("--preset", args.preset, PRESETS)
        policies = _names("--policies", args.policies)
        for spec in policies:
            check_policy_name(spec)
        hosts = _names("--hosts", args.hosts)
        for host in hosts:
            check_choice("--hosts", host, HOSTS)
        check_choice("--backend", args.backend, BACKENDS)
    except ValueError as err:
        raise UsageError(str(err)) from None
    seeds = parse_seeds(args.seeds)
    for name, value, low in (("--probe-max-train", args.probe_max_train, 1),
                             ("--threads", args.threads, 1),
                             ("--ray-cpus", args.ray_cpus, 0),
                             ("--cpus-per-run", args.cpus_per_run, 0),
                             ("--gpus-per-run", args.gpus_per_run, 0),
                             ("--max-retries", args.max_retries, 0)):
        if value < low:
            raise UsageError(f"{name}={value} is out of range; valid range: [{low}, inf)")
    if args.address and args.ray_cpus:
        raise UsageError(f"--ray-cpus={args.ray_cpus} sizes a Ray instance started on this "
                         f"machine; with --address={args.address!r} the cluster's own resources "
                         "apply: drop one of them")
    if args.backend != "ray":
        defaults = Args()
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
    for spec in policies:
        for host, env in envs.items():
            try:
                make_policy(spec, env, seed=seeds[0])
            except Exception as err:  # noqa: BLE001 - any failure to load is a usage error
                raise UsageError(
                    f"--policies: cannot build policy {spec!r} for host {host!r}: "
                    f"{type(err).__name__}: {err}"
                ) from None
    budget = next(iter(envs.values())).config.sampler.budget
    plan = Plan(args, policies, hosts, seeds, out_dir, envs, budget)
    _check_existing(plan)
    return plan


def _check_existing(plan: Plan) -> None:
    """Refuse to mix runs of another budget rule or other --set overrides into an existing
    results file."""
    previous = plan.out_dir / "config.json"
    if previous.is_file():
        try:
            before = json.loads(previous.read_text())["args"].get("set", [])
        except (json.JSONDecodeError, KeyError, AttributeError):
            before = None
        if before is not None and list(before) != list(plan.args.set):
            raise UsageError(
                f"--out-dir={str(plan.out_dir)!r} holds runs made with --set {before}, but this "
                f"run uses --set {list(plan.args.set)}; use another --out-dir"
            )
    rows, _ = load_rows(plan.out_dir / "results.csv", repair=False)
    for row in rows:
        if row["preset"] == plan.args.preset and row.get("budget") not in (None, "", plan.budget):
            raise UsageError(
                f"--out-dir={str(plan.out_dir)!r} already holds runs of preset "
                f"{plan.args.preset!r} with sampler.budget={row['budget']!r}, but this run uses "
                f"{plan.budget!r}; use another --out-dir"
            )


# --------------------------------------------------------------------------- results files
def run_key(row: dict[str, Any]) -> tuple[str, str, str, int]:
    return (str(row["policy"]), str(row["host"]), str(row["preset"]), int(row["seed"]))


def load_rows(path: Path, repair: bool = True) -> tuple[list[dict[str, str]], list[str]]:
    """Complete rows of ``results.csv`` and its header. A row cut short by a killed run (or a
    last line without its newline) is dropped; with ``repair`` the file is rewritten without it.
    """
    if not path.is_file():
        return [], []
    text = path.read_text()
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    rows, dropped = [], 0
    for row in reader:
        ok = None not in row and all(v is not None for v in row.values())
        try:
            ok = ok and bool(run_key(row)) and bool(float(row["accuracy"]) >= 0)
        except (KeyError, TypeError, ValueError):
            ok = False
        if ok:
            rows.append(row)
        else:
            dropped += 1
    if rows and not text.endswith("\n"):
        rows.pop()
        dropped += 1
    unique = {run_key(r): r for r in rows}
    dropped += len(rows) - len(unique)
    rows = list(unique.values())
    if dropped and repair:
        write_rows(path, rows, header)
    return rows, header


def write_rows(path: Path, rows: Sequence[dict[str, Any]], header: Sequence[str]) -> None:
    """Rewrite ``path`` atomically."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(header), restval="")
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def append_line(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def csv_line(row: dict[str, Any], header: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=list(header), restval="").writerow(row)
    return buf.getvalue()


def load_traces(path: Path, keys: set[tuple]) -> list[dict[str, Any]]:
    """The last complete trace of each run in ``keys``, in file order."""
    if not path.is_file():
        return []
    out: dict[tuple, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        try:
            trace = json.loads(line)
            key = run_key(trace)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if key in keys:
            out.pop(key, None)
            out[key] = trace
    return list(out.values())


def header_for(modalities: Sequence[str]) -> list[str]:
    per = [f"{p}_{m}" for p in ("acc", "probe", "samples") for m in modalities]
    return [*KEY_FIELDS, "budget", *MAIN_METRICS, *per, "paired_samples",
            "final_val_accuracy", "best_val_accuracy", "best_val_step", "best_val_iteration",
            "steps", "episode_return", "diverged", "wall_time"]


# --------------------------------------------------------------------------- one run
class BestValidation(gym.Wrapper):
    """Keeps a copy of the model weights at the env step with the best validation accuracy.

    Reads ``info["validation"]`` (the env's validation set, or fixed subset of it); where the
    reward did not read validation, evaluates the whole validation split itself. The earliest
    step wins ties. Step 0 is the freshly initialised model.
    """

    def __init__(self, env: DUSEnv) -> None:
        super().__init__(env)
        self.base: DUSEnv = env

    def _track(self, info: dict[str, Any], step: int) -> None:
        if info.get("diverged"):
            self.val_curve.append(None)
            return
        val = info.get("validation")
        if val is None:
            val = self.base.trainer.evaluate(self.base.dataset.split("val"), full=False).as_dict()
        acc = float(val["accuracy"])
        self.val_curve.append(acc)
        if self.best_step is None or acc > self.best_accuracy:
            self.best_accuracy, self.best_step = acc, step
            self.best_iteration = int(info.get("iteration", 0))
            self.best_state = copy.deepcopy(self.base.trainer.model.state_dict())

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.val_curve: list[float | None] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_accuracy, self.best_step, self.best_iteration = float("-inf"), None, 0
        self._steps = 0
        self._track(info, 0)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        self._track(info, self._steps)
        return obs, reward, terminated, truncated, info


def run_selected(env: DUSEnv, policy: Any, seed: int, wrapper: Callable | None = None
                 ) -> tuple[Any, BestValidation]:
    """One training run driven by ``policy``, its model left at the weights of the env step
    with the best validation accuracy (model selection on validation). Returns the episode and
    the tracker (validation curve, best step). ``wrapper`` (a test hook) wraps the env."""
    tracker = BestValidation(env)
    episode = run_episode(wrapper(tracker) if wrapper else tracker, policy, seed=seed)
    if tracker.best_state is not None:
        env.trainer.model.load_state_dict(tracker.best_state)
    return episode, tracker


def run_one(env: DUSEnv, spec: str, preset: str, seed: int, probe_max_train: int,
            wrapper: Callable[[gym.Env], gym.Env] | None = None,
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One training run driven by ``spec``; returns (results row, trace). ``wrapper`` (a test
    hook) wraps the env the policy steps."""
    start = time.perf_counter()
    policy = make_policy(spec, env, seed=seed)
    episode, tracker = run_selected(env, policy, seed, wrapper)
    trainer, dataset = env.trainer, env.dataset
    test = trainer.evaluate(dataset.split("test"))
    probes = trainer.probe_accuracy(dataset, "test", max_train=probe_max_train)
    last = episode.infos[-1]
    modalities = list(env.modalities)
    row: dict[str, Any] = {
        "policy": spec, "host": env.config.trainer.host, "preset": preset, "seed": seed,
        "budget": env.config.sampler.budget,
        "accuracy": test.accuracy, "macro_f1": test.macro_f1, "map": test.map,
    }
    for m in modalities:
        row[f"acc_{m}"] = test.modality_accuracy[m]
    for m in modalities:
        row[f"probe_{m}"] = probes[m]
    for m in modalities:
        row[f"samples_{m}"] = int(last["samples_consumed"][m])
    finals = [v for v in tracker.val_curve if v is not None]
    row.update({
        "paired_samples": int(last["paired_consumed"]),
        "final_val_accuracy": finals[-1] if finals else float("nan"),
        "best_val_accuracy": tracker.best_accuracy if tracker.best_step is not None
        else float("nan"),
        "best_val_step": tracker.best_step if tracker.best_step is not None else -1,
        "best_val_iteration": tracker.best_iteration,
        "steps": episode.length,
        "episode_return": episode.episode_return,
        "diverged": int(episode.diverged),
        "wall_time": time.perf_counter() - start,
    })
    steps = []
    for i, (info, val) in enumerate(zip(episode.infos, tracker.val_curve)):
        steps.append({
            "step": i,
            "iteration": int(info["iteration"]),
            "batch_sizes": info["batch_sizes"] or None,
            "batch_scores": info["batch_scores"],
            "cumulative_scores": info["cumulative_scores"],
            "gap": info["gap"],
            "val_accuracy": val,
            "samples_consumed": info["samples_consumed"],
        })
    trace = {k: row[k] for k in KEY_FIELDS}
    trace.update({"modalities": modalities, "actions": episode.actions, "steps": steps})
    return row, trace


# --------------------------------------------------------------------------- sweep
def prepare_out_dir(plan: Plan, header: list[str]) -> tuple[list[dict[str, str]], list[str]]:
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "args": dataclasses.asdict(plan.args),
        "policies": plan.policies, "hosts": plan.hosts, "seeds": plan.seeds,
        "env_configs": {h: config_to_dict(env.config) for h, env in plan.envs.items()},
        "env_spec": next(iter(plan.envs.values())).spec_dict(),
    }
    (plan.out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    path = plan.out_dir / "results.csv"
    rows, old_header = load_rows(path)
    if not path.is_file():
        write_rows(path, [], header)
    elif old_header != header:
        merged = list(dict.fromkeys([*old_header, *header]))
        if merged != old_header:
            write_rows(path, rows, merged)
        header = merged
    return rows, header


def write_reports(plan: Plan, rows: list[dict[str, str]]) -> dict[str, Any]:
    metrics = reporting.metric_columns(rows, MAIN_METRICS)
    summary = reporting.summarize(rows, metrics, confidence=plan.args.confidence)
    out = plan.out_dir
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    (out / "summary.md").write_text(reporting.summary_markdown(summary))
    traces = load_traces(out / "traces.jsonl", {run_key(r) for r in rows})
    if traces:
        reporting.plot_batch_sizes(traces, out / "batch_sizes.png")
        reporting.plot_scores(traces, out / "scores.png")
        reporting.plot_validation(traces, out / "val_accuracy.png")
    bars = [m for m in metrics if m in MAIN_METRICS or m.startswith(("acc_", "probe_"))]
    if summary["groups"]:
        reporting.plot_final_metrics(summary, bars, out / "final_metrics.png")
    return summary


RunKey = tuple[str, str, int]
"""(policy, host, seed): one run of a sweep (the preset is the sweep's)."""


@dataclass(frozen=True)
class RunFault:
    """Test hook of the Ray backend: the worker running ``(policy, host, seed)`` kills its own
    process (SIGKILL) at env step ``step`` on each of its first ``attempts`` attempts. Attempts
    are counted with marker files in ``marker_dir`` (so workers must share it: one machine)."""

    policy: str
    host: str
    seed: int
    marker_dir: str
    step: int = 2
    attempts: int = 1

    def strikes(self, spec: str, host: str, seed: int) -> bool:
        """Whether this attempt of ``(spec, host, seed)`` is to be killed (records it)."""
        if (self.policy, self.host, self.seed) != (spec, host, seed):
            return False
        folder = Path(self.marker_dir)
        folder.mkdir(parents=True, exist_ok=True)
        done = len(list(folder.glob("attempt_*")))
        if done >= self.attempts:
            return False
        (folder / f"attempt_{done + 1}").write_text(str(os.getpid()))
        return True


@dataclass
class RunFailure:
    """A run that failed on every attempt (Ray backend); it gets no row, so a rerun retries it."""

    error: str
    attempts: int


def run_local(plan: Plan, todo: Sequence[RunKey]
              ) -> Iterator[tuple[RunKey, tuple[dict, dict] | RunFailure]]:
    """The local backend: each run in this process, in order."""
    from threadpoolctl import threadpool_limits

    for policy, host, seed in todo:
        with threadpool_limits(limits=plan.args.threads):
            result = run_one(plan.envs[host], policy, plan.args.preset, seed,
                             plan.args.probe_max_train)
        yield (policy, host, seed), result


def _policy_files(policies: Sequence[str]) -> dict[str, bytes]:
    """The bytes of every policy file a sweep replays, keyed by its ``kind:PATH`` spec (shipped
    to the Ray workers, which may sit on machines without that path)."""
    return {spec: Path(spec.split(":", 1)[1]).read_bytes() for spec in policies if ":" in spec}


def run_on_worker(spec: str, host: str, seed: int, settings: dict[str, Any],
                  files: dict[str, bytes]) -> tuple[dict, dict]:
    """Body of one Ray task: one run, on an env cached per worker process (``reset(seed)``
    makes a run independent of the runs before it in the same env)."""
    import ray
    from threadpoolctl import threadpool_limits

    from dus_agents.ray_backend import KillProcessAtStep, worker_cache

    torch.set_num_threads(settings["threads"])
    device = "cuda" if ray.get_gpu_ids() else "cpu"
    env = worker_cache(("evaluate", settings["preset"], host, settings["budget_matched"],
                        device, tuple(settings["set"])),
                       lambda: make_env(settings["preset"], host, settings["budget_matched"],
                                        device, overrides_set=settings["set"]))
    wrapper = None
    fault: RunFault | None = settings.get("fault")
    if fault is not None and fault.strikes(spec, host, seed):
        wrapper = functools.partial(KillProcessAtStep, step=fault.step)
    with tempfile.TemporaryDirectory(prefix="dus_policy_") as tmp:
        local_spec = spec
        if spec in files:  # replay the shipped copy of the policy file
            kind, path = spec.split(":", 1)
            local = Path(tmp) / Path(path).name
            local.write_bytes(files[spec])
            local_spec = f"{kind}:{local}"
        with threadpool_limits(limits=settings["threads"]):
            row, trace = run_one(env, local_spec, settings["preset"], seed,
                                 settings["probe_max_train"], wrapper=wrapper)
    row["policy"] = trace["policy"] = spec
    return row, trace


def run_ray(plan: Plan, todo: Sequence[RunKey], fault: RunFault | None = None
            ) -> Iterator[tuple[RunKey, tuple[dict, dict] | RunFailure]]:
    """The Ray backend: one Ray task per run (needs an initialised Ray); yields runs as they
    finish. Retries are Ray's (``max_retries``); each run comes back exactly once."""
    import ray

    from dus_agents.ray_backend import TaskResources, run_tasks

    args = plan.args
    settings = {"preset": args.preset, "budget_matched": args.budget_matched,
                "set": list(args.set),
                "probe_max_train": args.probe_max_train, "threads": args.threads,
                "fault": fault}
    files_ref = ray.put(_policy_files(plan.policies))
    resources = TaskResources(num_cpus=args.cpus_per_run, num_gpus=args.gpus_per_run,
                              max_retries=args.max_retries)
    jobs = [(key, (key[0], key[1], key[2], settings, files_ref)) for key in todo]
    for outcome in run_tasks(run_on_worker, jobs, resources, name="dus_evaluate_run"):
        if outcome.ok and outcome.attempts > 1:
            policy, host, seed = outcome.key
            print(f"evaluate.py: run policy={policy} host={host} seed={seed} was retried and "
                  f"finished on attempt {outcome.attempts} of {args.max_retries + 1}",
                  file=sys.stderr)
        if outcome.ok:
            yield outcome.key, outcome.value
        else:
            yield outcome.key, RunFailure(outcome.error or "unknown error", outcome.attempts)


def sweep(plan: Plan, fault: RunFault | None = None
          ) -> tuple[list[dict[str, str]], dict[RunKey, RunFailure]]:
    """Run every run of ``plan`` not yet in ``results.csv``; append each row (and trace) as it
    finishes. Returns all rows and the runs that failed for good (Ray backend only)."""
    from tqdm import tqdm

    first = next(iter(plan.envs.values()))
    rows, header = prepare_out_dir(plan, header_for(first.modalities))
    done = {run_key(r) for r in rows}
    todo = [(p, h, s) for s in plan.seeds for h in plan.hosts for p in plan.policies
            if (p, h, plan.args.preset, s) not in done]
    csv_path, trace_path = plan.out_dir / "results.csv", plan.out_dir / "traces.jsonl"
    failures: dict[RunKey, RunFailure] = {}
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=plan.args.quiet,
               dynamic_ncols=True)
    if plan.args.backend == "ray":
        results = run_ray(plan, todo, fault)
    else:
        results = run_local(plan, todo)
    for (policy, host, seed), result in results:
        bar.update(1)
        bar.set_postfix_str(f"{policy} {host} seed={seed}")
        if isinstance(result, RunFailure):
            failures[(policy, host, seed)] = result
            continue
        row, trace = result
        key = run_key(row)
        if key in done:  # never write a run twice
            continue
        done.add(key)
        append_line(trace_path, json.dumps(trace) + "\n")
        append_line(csv_path, csv_line(row, header))
        rows.append({k: str(v) for k, v in row.items()})
    bar.close()
    record_failures(plan.out_dir, failures)
    return rows, failures


def record_failures(out_dir: Path, failures: dict[RunKey, RunFailure]) -> None:
    """Write ``failed_runs.json`` listing the runs that failed for good, or remove a stale one
    when every run of this sweep finished."""
    path = out_dir / "failed_runs.json"
    if not failures:
        path.unlink(missing_ok=True)
        return
    listing = [{"policy": p, "host": h, "seed": s, "attempts": f.attempts, "error": f.error}
               for (p, h, s), f in failures.items()]
    path.write_text(json.dumps(listing, indent=2) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.ArgumentParser, Args]:
    parser = build_parser()
    ns = parser.parse_args(argv)
    return parser, Args(**vars(ns))


def connect_ray(args: Args):
    """Start or join Ray for ``--backend ray``; raises UsageError when Ray is missing or the
    address does not answer."""
    from dus_agents.ray_backend import RayConnectionError, RayNotInstalledError, check_fits, connect

    try:
        session = connect(args.address or None, num_cpus=args.ray_cpus or None,
                          log_to_driver=not args.quiet)
    except (RayNotInstalledError, RayConnectionError) as err:
        raise UsageError(f"--backend ray: {err}") from None
    try:
        warning = check_fits(session, "--cpus-per-run", args.cpus_per_run, "--gpus-per-run",
                             args.gpus_per_run)
    except ValueError as err:
        session.close()
        raise UsageError(str(err)) from None
    if warning:
        print(f"evaluate.py: {warning}", file=sys.stderr)
    return session


def main(argv: Sequence[str] | None = None, fault: RunFault | None = None) -> int:
    """Run the sweep; 0 when every run has its row, 1 when some run failed for good (listed on
    stderr and in ``failed_runs.json``; rerun to retry them). ``fault`` is a test hook."""
    parser, args = parse_args(argv)
    torch.set_num_threads(args.threads)
    session = None
    try:
        plan = validate(args)
        if args.backend == "ray":
            session = connect_ray(args)
    except UsageError as err:
        parser.error(str(err))
    try:
        rows, failures = sweep(plan, fault)
    finally:
        if session is not None:
            session.close()
    write_reports(plan, rows)
    if not args.quiet:
        print((plan.out_dir / "summary.md").read_text())
        print(f"results: {plan.out_dir / 'results.csv'} ({len(rows)} runs)")
    if failures:
        for (policy, host, seed), failure in failures.items():
            print(f"evaluate.py: run policy={policy} host={host} seed={seed} failed after "
                  f"{failure.attempts} attempt(s): {failure.error}", file=sys.stderr)
        print(f"evaluate.py: {len(failures)} run(s) failed and have no row (listed in "
              f"{plan.out_dir / 'failed_runs.json'}); rerun the same command to retry them",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
