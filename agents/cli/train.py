"""``dus-train`` (``train_agent.py``): train a DUS sampling agent on DUS-v0 and save it as one
policy artefact.

    dus-train                                          # PPO, "default" preset
    dus-train --agent reinforce --preset tiny --total-timesteps 600
    dus-train --n-envs 2 --total-timesteps 8000
    dus-train --vec-env ray --n-envs 2 --total-timesteps 8000   # envs in Ray actors
    dus-train --resume runs/DUS-v0-default__ppo__0__1700000000

A run directory ``{out_dir}/{env}__{agent}__{seed}__{unixtime}`` receives ``config.json``
(these arguments, the env config and spec, the agent settings), ``policy.zip`` (the artefact,
replayable with ``dus_agents.registry.make_policy("ppo:PATH", env)``), ``checkpoints/``,
``tb/`` (TensorBoard), ``logs/`` (CSV), ``monitor/``, ``episodes.jsonl`` (one line per
training episode) and ``summary.json``.

PPO trains in rollouts of ``n_steps * n_envs`` env steps, so the total is rounded up to a whole
number of rollouts; REINFORCE trains in whole episodes (each one a training run), so its total is
rounded up to whole episodes. ``--resume DIR`` continues from the newest checkpoint in DIR and
stops at the requested total (pass a larger ``--total-timesteps`` to extend a finished run).
A checkpoint holds the random state too (torch's, numpy's, Python's and each env's at the
start of its episode), so a resumed PPO run goes on exactly as one never stopped wherever its
envs were between episodes at the checkpoint (tasks of one length: every preset); a checkpoint
written without it, or resumed with another ``--n-envs``, reseeds (``summary.json``'s
``resumed_exactly`` says which). REINFORCE resumes exactly too.

``--vec-env ray`` puts each PPO env in its own Ray actor (``dus_agents.ray_vec_env.RayVecEnv``):
on this machine by default, on a running cluster with ``--address``. An actor whose process
dies is restarted (``--max-restarts``) and its episode ends as a terminal step flagged
``info["worker_restarted"]``; PPO trains on. Needs ``pip install 'dus-env[ray]'``; see
docs/scaling.md.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dus_agents.training import (
    AGENTS,
    RAY_FLAGS,
    VEC_ENVS,
    TrainArgs,
    env_overrides,
    ppo_config,
    train,
)
from dus_agents.cli import common as cli
from dus_env.config import overrides_from_pairs as cli_overrides
from dus_env.config.fields import check_fields
from dus_env.config import preset_help
from dus_env.errors import UsageError, check_range, did_you_mean

PROG = "dus-train"


def build_parser():
    return cli.build_parser(
        TrainArgs, prog=PROG,
        description="Train a DUS sampling agent (PPO or online REINFORCE) on DUS-v0 (a preset) "
                    "or DUS-v1 (--suite).",
        epilog="presets: " + preset_help(),
    )


def check_choice(name: str, value: Any, choices: Any) -> None:
    choices = list(choices)
    if value not in choices:
        raise UsageError(f"--{name.replace('_', '-')}={value!r} is not valid; valid choices: "
                         f"{choices}.{did_you_mean(value, choices)}")


SEED_RANGE = (0, 2**32 - 1)
"""Seeds numpy and Stable-Baselines3 accept."""


def check_seed(field: str, seed: int) -> None:
    """``ValueError`` unless ``seed`` is in :data:`SEED_RANGE`."""
    check_range(field, seed, *SEED_RANGE)


RESUME_FIXED = ("agent", "preset", "suite", "host", "set", "ppo", "seed", "n_envs", "out_dir",
                "run_name", "anchor", "anchor_strength")
MAX_RUN_NAME_BYTES = 200
"""Longest --run-name (file systems allow 255 bytes per name; suffixes are added)."""


def check_ppo_device(device: str) -> None:
    """``ValueError`` unless ``--ppo device=...`` names a torch device this machine can train
    on, checked as ``--set device=...`` is (SB3 would quietly train a missing ``cuda`` on the
    CPU)."""
    from dus_env.config.components import check_device
    from dus_env.env import check_device_available

    check_device("--ppo device", device)
    check_device_available(device, "--ppo device")


def parse_args(argv: Sequence[str] | None = None) -> tuple[TrainArgs, Path | None]:
    """Parse and validate; every error exits with code 2 before anything is written.
    Returns the arguments and the run directory to resume (or None)."""
    from dus_env.config import HOSTS, PRESETS

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = TrainArgs(**vars(parser.parse_args(argv)))
    resume_dir = None
    if args.resume is not None:
        resume_dir = Path(args.resume)
        config_file = resume_dir / "config.json"
        if not config_file.is_file():
            raise UsageError(f"--resume={args.resume!r}: no run directory with a config.json there")
        try:
            saved = json.loads(config_file.read_text())["args"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise UsageError(f"--resume={args.resume!r}: {str(config_file)!r} is unreadable "
                             f"({type(exc).__name__}: {exc}); refusing to resume") from None
        if not isinstance(saved, dict) or not {"agent", "preset", "seed"} <= set(saved):
            raise UsageError(f"--resume={args.resume!r}: {str(config_file)!r} is damaged: its "
                             f"'args' is {str(saved)[:60]!r}, not the run's arguments; refusing "
                             "to resume")
        given = cli.explicit_flags(parser, argv)
        for name in RESUME_FIXED:
            if name in given and getattr(args, name) != saved.get(name):
                raise UsageError(
                    f"--{name.replace('_', '-')}={getattr(args, name)!r} conflicts with the "
                    f"resumed run's {name}={saved.get(name)!r}; drop it to resume"
                )
        merged = {k: saved[k] for k in saved if k in TrainArgs.__dataclass_fields__}
        for name in given:
            merged[name] = getattr(args, name)
        merged["resume"] = str(resume_dir)
        args = TrainArgs(**merged)
        try:
            check_fields(args)
            check_seed("seed", args.seed)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--resume={str(resume_dir)!r}: {str(config_file)!r} is damaged "
                             f"({exc}); refusing to resume") from None
    check_choice("agent", args.agent, AGENTS)
    check_choice("preset", args.preset, PRESETS)
    if args.suite is not None:
        from dus_env.suites import SUITES

        check_choice("suite", args.suite, SUITES)
        given_now = cli.explicit_flags(parser, argv)
        for name in ("preset", "host"):
            if name in given_now and resume_dir is None:
                raise UsageError(f"--{name} does not apply with --suite={args.suite!r} (each "
                                 f"task has its own); drop --{name} or --suite")
        if args.agent != "ppo":
            raise UsageError(f"--suite trains PPO with the DeepSets policy; --agent="
                             f"{args.agent!r} is not available for suites")
    from dus_agents.deepsets import ANCHORS

    check_choice("anchor", args.anchor, ANCHORS)
    if args.anchor != "none" and args.suite is None:
        raise UsageError(f"--anchor={args.anchor!r} applies to the DeepSets policy of --suite "
                         "runs only; add --suite or drop --anchor")
    if args.anchor != "none" and args.imitate_episodes:
        raise UsageError(f"--anchor={args.anchor!r} and --imitate-episodes="
                         f"{args.imitate_episodes} both start PPO from DUS-H; give one of them")
    if not (args.anchor_strength > 0 and args.anchor_strength < float("inf")):
        raise UsageError(f"--anchor-strength={args.anchor_strength} must be a finite number > 0")
    for name, low in (("eval_freq", 1), ("eval_tasks", 1)):
        if getattr(args, name) < low:
            raise UsageError(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= {low}")
    check_choice("vec_env", args.vec_env, VEC_ENVS)
    if args.host is not None:
        check_choice("host", args.host, HOSTS)
    if args.set:
        from dus_env.config import config_from_dict, get_preset

        cli.check_set(args.set, args.preset)  # every key, value and name, as dus-evaluate's
        try:  # then with --host and the suite's reward added
            config_from_dict(env_overrides(args), base=get_preset(args.preset))
        except (ValueError, TypeError) as exc:
            raise UsageError(cli.set_message(exc)) from None
        pairs = cli_overrides(args.set)
        if args.host is not None and "host" in pairs.get("trainer", {}):
            raise UsageError(f"--host={args.host!r} and --set trainer.host="
                             f"{pairs['trainer']['host']!r} conflict; give one of them")
    if args.ppo:
        if args.agent != "ppo":
            raise UsageError(f"--ppo applies to --agent ppo only, not --agent={args.agent!r}; "
                             "drop --ppo")
        try:
            check_ppo_device(ppo_config(args).device)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.n_envs == 0:
        args = dataclasses.replace(args, n_envs=2 if args.agent == "ppo" else 1)
    if args.ppo and ppo_config(args).n_steps is not None and args.n_envs >= 1:
        try:  # a fixed rollout length is checked now; one from episodes once the env exists
            ppo_config(args).sb3_kwargs(episode_length=1, n_envs=args.n_envs)
        except ValueError as exc:
            raise UsageError(f"--ppo: {exc}") from None
    for name, low in (("total_timesteps", 1), ("n_envs", 1), ("checkpoint_freq", 1),
                      ("keep_checkpoints", 1), ("eval_episodes", 0), ("imitate_episodes", 0)):
        if getattr(args, name) < low:
            raise UsageError(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= {low}")
    cli.check_at_least("--torch-threads", args.torch_threads, 1, cli.MAX_THREADS)
    if resume_dir is None:  # a resumed run's seed was checked as part of its config.json
        try:
            check_seed("--seed", args.seed)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.imitate_episodes and args.suite is None:
        raise UsageError(f"--imitate-episodes={args.imitate_episodes} warm-starts the DeepSets "
                         "policy of --suite runs only; add --suite or drop --imitate-episodes")
    if args.agent == "reinforce" and args.n_envs != 1:
        raise UsageError(f"--n-envs={args.n_envs}: the reinforce agent learns online from one env "
                     "at a time; use --n-envs 1 (or --agent ppo)")
    if args.agent == "reinforce" and args.vec_env != "auto":
        raise UsageError(f"--vec-env={args.vec_env!r}: the reinforce agent steps one env in this "
                     "process; drop --vec-env (or use --agent ppo)")
    for name, low in (("ray_cpus", 0), ("cpus_per_env", 0), ("gpus_per_env", 0),
                      ("max_restarts", -1)):
        if getattr(args, name) < low:
            raise UsageError(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= {low}")
    if args.address and args.ray_cpus:
        raise UsageError(f"--ray-cpus={args.ray_cpus} sizes a Ray instance started on this machine; "
                     f"with --address={args.address!r} the cluster's own resources apply: drop "
                     "one of them")
    if args.vec_env != "ray":
        for name in RAY_FLAGS:
            if name in cli.explicit_flags(parser, argv):
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} applies to --vec-env ray only; add --vec-env ray or "
                             f"drop {flag}")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir={args.out_dir!r} is a file, not a directory")
    for parent in out_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--out-dir={args.out_dir!r}: {str(parent)!r} is a file, not a directory")
    if resume_dir is None:
        cli.check_writable_dir("--out-dir", out_dir)
    if resume_dir is None and args.run_name is not None:
        name = args.run_name
        if ("/" in name or "\\" in name or name in ("", ".", "..")
                or any(ord(c) < 32 or ord(c) == 127 for c in name)
                or len(name.encode("utf-8")) > MAX_RUN_NAME_BYTES):
            raise UsageError(f"--run-name={name[:80]!r}{'...' if len(name) > 80 else ''} must be "
                             f"a plain folder name: no '/', no control characters such as a "
                             f"newline, at most {MAX_RUN_NAME_BYTES} bytes")
        if (out_dir / args.run_name).exists():
            raise UsageError(f"--run-name={args.run_name!r}: {str(out_dir / args.run_name)!r} exists; "
                         "use --resume to continue it")
    return args, resume_dir


def main(argv: Sequence[str] | None = None, crash_at_step: dict[int, int] | None = None) -> int:
    """Train and save one policy. Bad input: one line on stderr and ``SystemExit(2)``, before
    anything is written. ``crash_at_step`` is a test hook of ``--vec-env ray`` (``{env index:
    n}``: that env's first actor kills its own process in its n-th step)."""
    return cli.run(lambda a: _main(a, crash_at_step), argv, prog=PROG)


def _main(argv: Sequence[str] | None, crash_at_step: dict[int, int] | None) -> int:
    args, resume_dir = parse_args(argv)
    cli.require("stable_baselines3", "agents", "dus-train")
    cli.require("tensorboard", "agents", "dus-train's TensorBoard logs")
    if args.progress_bar:
        for module in ("tqdm", "rich"):
            cli.require(module, "agents", "the progress bar (or pass --no-progress-bar)")
    session = None
    if args.vec_env == "ray":
        from dus_agents.ray_backend import open_session

        session, warning = open_session(args.address, args.ray_cpus, "--cpus-per-env",
                                        args.cpus_per_env, "--gpus-per-env", args.gpus_per_env,
                                        count=args.n_envs, what="env actors (--n-envs)")
        if warning:
            print(f"{PROG}: {warning}", file=sys.stderr)
    try:
        return train(args, resume_dir, crash_at_step)
    finally:
        if session is not None:
            session.close()


if __name__ == "__main__":
    sys.exit(main())
