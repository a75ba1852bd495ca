"""The Ray backend of a sweep: every run one Ray task with its own resources.

Rows stream back as runs finish, in finishing order; a run whose worker dies or raises is
retried (``max_retries``) and reported. Policy files are shipped to the workers as bytes, so
workers on other machines need no shared path. Needs the optional extra ``dus-env[ray]``.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dus_agents.evaluation.runs import make_env, run_one
from dus_agents.evaluation.sweep import Plan, RunFailure, RunKey


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


def policy_files(policies: Sequence[str]) -> dict[str, bytes]:
    """The bytes of every policy file a sweep replays, keyed by its ``kind:PATH`` spec (shipped
    to the Ray workers, which may sit on machines without that path)."""
    from dus_agents.artifact import resolve_policy_path

    return {spec: resolve_policy_path(spec.split(":", 1)[1]).read_bytes()
            for spec in policies if ":" in spec}


def run_on_worker(spec: str, host: str, seed: int, settings: dict[str, Any],
                  files: dict[str, bytes]) -> tuple[dict, dict]:
    """Body of one Ray task: one run, on an env cached per worker process (``reset(seed)``
    makes a run independent of the runs before it in the same env)."""
    import ray
    from threadpoolctl import threadpool_limits

    from dus_agents.ray_backend import KillProcessAtStep, worker_cache

    torch.set_num_threads(settings["threads"])
    device = "cuda" if ray.get_gpu_ids() else "cpu"
    layout = settings["layouts"].get(spec, "v0")
    env = worker_cache(("evaluate", settings["preset"], host, settings["budget_matched"],
                        device, tuple(settings["set"]), layout),
                       lambda: make_env(settings["preset"], host, settings["budget_matched"],
                                        device, overrides_set=settings["set"], layout=layout))
    wrapper = None
    fault: RunFault | None = settings.get("fault")
    if fault is not None and fault.strikes(spec, host, seed):
        wrapper = functools.partial(KillProcessAtStep, step=fault.step)
    with tempfile.TemporaryDirectory(prefix="dus_policy_") as tmp:
        local_spec = spec
        if spec in files:  # replay the shipped copy of the policy file
            kind, _ = spec.split(":", 1)
            local = Path(tmp) / "policy.zip"
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
                "fault": fault, "layouts": dict(plan.layouts)}
    files_ref = ray.put(policy_files(plan.policies))
    resources = TaskResources(num_cpus=args.cpus_per_run, num_gpus=args.gpus_per_run,
                              max_retries=args.max_retries)
    jobs = [(key, (key[0], key[1], key[2], settings, files_ref)) for key in todo]
    for outcome in run_tasks(run_on_worker, jobs, resources, name="dus_evaluate_run"):
        if outcome.ok and outcome.attempts > 1:
            policy, host, seed = outcome.key
            print(f"evaluate: run policy={policy} host={host} seed={seed} was retried and "
                  f"finished on attempt {outcome.attempts} of {args.max_retries + 1}",
                  file=sys.stderr)
        if outcome.ok:
            yield outcome.key, outcome.value
        else:
            yield outcome.key, RunFailure(outcome.error or "unknown error", outcome.attempts)
