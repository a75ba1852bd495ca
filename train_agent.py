"""Train a DUS sampling agent on DUS-v0 and save it as one policy artefact.

    python train_agent.py                                  # PPO, "default" preset
    python train_agent.py --agent reinforce --preset tiny --total-timesteps 600
    python train_agent.py --n-envs 2 --total-timesteps 8000
    python train_agent.py --vec-env ray --n-envs 4 --total-timesteps 8000   # envs in Ray actors
    python train_agent.py --resume runs/DUS-v0-default__ppo__0__1700000000

A run directory ``{out_dir}/{env}__{agent}__{seed}__{unixtime}`` receives ``config.json``
(these arguments, the env config and spec, the agent settings), ``policy.zip`` (the artefact,
replayable with ``dus_agents.registry.make_policy("ppo:PATH", env)``), ``checkpoints/``,
``tb/`` (TensorBoard), ``logs/`` (CSV), ``monitor/``, ``episodes.jsonl`` (one line per
training episode) and ``summary.json``.

PPO trains in rollouts of ``n_steps * n_envs`` env steps, so the total is rounded up to a whole
number of rollouts; REINFORCE trains in whole episodes (each one a training run), so its total is
rounded up to whole episodes. ``--resume DIR`` continues from the newest checkpoint in DIR and
stops at the requested total (pass a larger ``--total-timesteps`` to extend a finished run).

``--vec-env ray`` puts each PPO env in its own Ray actor (``dus_agents.ray_vec_env.RayVecEnv``):
on this machine by default, on a running cluster with ``--address``. An actor whose process
dies is restarted (``--max-restarts``) and its episode ends as a terminal step flagged
``info["worker_restarted"]``; PPO trains on. Needs ``pip install 'dus-env[ray]'``; see
docs/scaling.md.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AGENTS: tuple[str, ...] = ("ppo", "reinforce")
VEC_ENVS: tuple[str, ...] = ("auto", "dummy", "subproc", "ray")
RAY_FLAGS: tuple[str, ...] = ("address", "ray_cpus", "cpus_per_env", "gpus_per_env",
                              "max_restarts")
"""Flags only --vec-env ray reads."""


@dataclass
class Args:
    agent: str = "ppo"
    """Agent to train: ppo (Stable-Baselines3 PPO over many training runs) or reinforce (the
    online agent that learns inside each run; trained over consecutive runs)."""
    preset: str = "default"
    """Env preset (dus_env.config.PRESETS): default, tiny, mfeat, mfeat3."""
    host: str | None = None
    """Host MML method overriding the preset's (joint, mla, ogm_ge, unimodal)."""
    set: list[str] = dataclasses.field(default_factory=list)
    """Env config override KEY=VALUE over the preset, repeatable, e.g. --set
    reward.name=discrepancy --set sampler.multipliers=[0.5,1,2] (values read as JSON when
    they parse)."""
    total_timesteps: int = 8000
    """Env steps to train for (all envs together); default-preset episodes are 20 steps. The
    default is where PPO's checkpoints beat uniform on validation in docs/RESULTS.md (Cost)."""
    n_envs: int = 0
    """Parallel envs for PPO (see --vec-env); 0: 2 for ppo (one per core of a small machine),
    1 for reinforce, which learns from one env."""
    vec_env: str = "auto"
    """How PPO's envs run: auto (dummy for one env, subproc for more), dummy (all in this
    process), subproc (one process each), ray (one Ray actor each; pip install
    'dus-env[ray]')."""
    address: str | None = None
    """--vec-env ray: the Ray cluster to join (host:port of the head node, ray://host:10001,
    or auto); not given: start Ray on this machine."""
    ray_cpus: int = 0
    """--vec-env ray without --address: logical CPUs of the Ray instance started here (0: every
    core this process may use)."""
    cpus_per_env: float = 1.0
    """--vec-env ray: CPUs each env actor reserves."""
    gpus_per_env: float = 0.0
    """--vec-env ray: GPUs each env actor reserves (a fraction shares a GPU; envs with a GPU
    train their model on it)."""
    max_restarts: int = 3
    """--vec-env ray: restarts of each env actor after its process dies (-1: no limit)."""
    seed: int = 0
    """Seed of the agent and of the training episodes."""
    out_dir: str = "runs"
    """Folder that receives the run directory."""
    run_name: str | None = None
    """Fixed run-directory name instead of {env}__{agent}__{seed}__{unixtime} (must not exist)."""
    resume: str | None = None
    """Run directory to continue from its newest checkpoint (other settings come from its
    config.json; --total-timesteps may raise the total)."""
    checkpoint_freq: int = 1000
    """Timesteps between checkpoints (taken at rollout/episode boundaries)."""
    keep_checkpoints: int = 3
    """How many of the newest checkpoints to keep."""
    eval_episodes: int = 3
    """After training, replay the saved policy (deterministic) and the uniform sampler on this
    many fresh episodes with the same seeds and record both in summary.json (0: skip)."""
    progress_bar: bool = True
    """Show a progress bar (tqdm + rich)."""
    torch_threads: int = 1
    """torch.set_num_threads for this process (workers always use 1)."""


# --------------------------------------------------------------------------- arguments
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each dataclass field (the help text of its flag)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train a DUS sampling agent (PPO or online REINFORCE) on DUS-v0.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    docs = field_docs(Args)
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        help_text = docs.get(f.name, "")
        if f.name == "set":
            parser.add_argument(flag, action="append", default=[], metavar="KEY=VALUE",
                                help=help_text)
        elif f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default,
                                help=help_text)
        elif f.type in ("int", int):
            parser.add_argument(flag, type=int, default=f.default, metavar="N", help=help_text)
        elif f.type in ("float", float):
            parser.add_argument(flag, type=float, default=f.default, metavar="X", help=help_text)
        else:
            parser.add_argument(flag, type=str, default=f.default, metavar=f.name.upper(),
                                help=help_text)
    return parser


def explicit_flags(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """Names of the fields given on the command line."""
    quiet = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            kwargs = {"dest": action.dest, "default": argparse.SUPPRESS}
            if isinstance(action, argparse.BooleanOptionalAction):
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["type"] = action.type
            quiet.add_argument(*action.option_strings, **kwargs)
    namespace, _ = quiet.parse_known_args(argv)
    return set(vars(namespace))


def check_choice(parser: argparse.ArgumentParser, name: str, value: Any, choices: Any) -> None:
    from dus_env.errors import did_you_mean

    choices = list(choices)
    if value not in choices:
        parser.error(f"--{name.replace('_', '-')}={value!r} is not valid; valid choices: "
                     f"{choices}.{did_you_mean(value, choices)}")


RESUME_FIXED = ("agent", "preset", "host", "set", "seed", "n_envs", "out_dir", "run_name")


def parse_args(argv: list[str] | None = None) -> tuple[Args, Path | None]:
    """Parse and validate; every error exits with code 2 before anything is written.
    Returns the arguments and the run directory to resume (or None)."""
    from dus_env.config import HOSTS, PRESETS

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = Args(**vars(parser.parse_args(argv)))
    resume_dir = None
    if args.resume is not None:
        resume_dir = Path(args.resume)
        config_file = resume_dir / "config.json"
        if not config_file.is_file():
            parser.error(f"--resume={args.resume!r}: no run directory with a config.json there")
        try:
            saved = json.loads(config_file.read_text())["args"]
        except (json.JSONDecodeError, KeyError) as exc:
            parser.error(f"--resume={args.resume!r}: unreadable config.json ({exc})")
        given = explicit_flags(parser, argv)
        for name in RESUME_FIXED:
            if name in given and getattr(args, name) != saved.get(name):
                parser.error(
                    f"--{name.replace('_', '-')}={getattr(args, name)!r} conflicts with the "
                    f"resumed run's {name}={saved.get(name)!r}; drop it to resume"
                )
        merged = {k: saved[k] for k in saved if k in Args.__dataclass_fields__}
        for name in given:
            merged[name] = getattr(args, name)
        merged["resume"] = str(resume_dir)
        args = Args(**merged)
    check_choice(parser, "agent", args.agent, AGENTS)
    check_choice(parser, "preset", args.preset, PRESETS)
    check_choice(parser, "vec_env", args.vec_env, VEC_ENVS)
    if args.host is not None:
        check_choice(parser, "host", args.host, HOSTS)
    if args.set:
        from dus_env.config import config_from_dict, get_preset

        try:  # every key, value and name checked before anything is written
            config_from_dict(env_overrides(args), base=get_preset(args.preset))
        except (ValueError, TypeError) as exc:
            parser.error(str(exc) if str(exc).startswith("--set") else f"--set: {exc}")
    if args.n_envs == 0:
        args = dataclasses.replace(args, n_envs=2 if args.agent == "ppo" else 1)
    for name, low in (("total_timesteps", 1), ("n_envs", 1), ("checkpoint_freq", 1),
                      ("keep_checkpoints", 1), ("eval_episodes", 0), ("torch_threads", 1)):
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= {low}")
    if args.agent == "reinforce" and args.n_envs != 1:
        parser.error(f"--n-envs={args.n_envs}: the reinforce agent learns online from one env "
                     "at a time; use --n-envs 1 (or --agent ppo)")
    if args.agent == "reinforce" and args.vec_env != "auto":
        parser.error(f"--vec-env={args.vec_env!r}: the reinforce agent steps one env in this "
                     "process; drop --vec-env (or use --agent ppo)")
    for name, low in (("ray_cpus", 0), ("cpus_per_env", 0), ("gpus_per_env", 0),
                      ("max_restarts", -1)):
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= {low}")
    if args.address and args.ray_cpus:
        parser.error(f"--ray-cpus={args.ray_cpus} sizes a Ray instance started on this machine; "
                     f"with --address={args.address!r} the cluster's own resources apply: drop "
                     "one of them")
    if args.vec_env != "ray":
        for name in RAY_FLAGS:
            if name in explicit_flags(parser, argv):
                flag = "--" + name.replace("_", "-")
                parser.error(f"{flag} applies to --vec-env ray only; add --vec-env ray or "
                             f"drop {flag}")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        parser.error(f"--out-dir={args.out_dir!r} is a file, not a directory")
    for parent in out_dir.parents:
        if parent.exists() and not parent.is_dir():
            parser.error(f"--out-dir={args.out_dir!r}: {str(parent)!r} is a file, not a directory")
    if resume_dir is None and args.run_name is not None:
        if "/" in args.run_name or args.run_name in ("", ".", ".."):
            parser.error(f"--run-name={args.run_name!r} must be a plain folder name")
        if (out_dir / args.run_name).exists():
            parser.error(f"--run-name={args.run_name!r}: {str(out_dir / args.run_name)!r} exists; "
                         "use --resume to continue it")
    return args, resume_dir


# --------------------------------------------------------------------------- helpers
def env_overrides(args: Args) -> dict[str, Any]:
    """The env config overrides over the preset: ``--set`` pairs, then ``--host``."""
    from dus_env.config import overrides_from_pairs

    overrides = overrides_from_pairs(args.set)
    if args.host:
        overrides.setdefault("trainer", {})["host"] = args.host
    return overrides


def make_logger(run_dir: Path, segment: int):
    """SB3 logger writing TensorBoard events to tb/ and CSV to logs/progress_<segment>.csv."""
    from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat

    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    return Logger(folder=str(run_dir / "logs"), output_formats=[
        TensorBoardOutputFormat(str(run_dir / "tb")),
        CSVOutputFormat(str(run_dir / "logs" / f"progress_{segment}.csv")),
    ])


def read_episodes(run_dir: Path) -> list[dict[str, float]]:
    path = run_dir / "episodes.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def episode_seed(seed: int, index: int) -> int:
    """Reset seed of training episode ``index`` (the same after a resume)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def compare_with_uniform(policy: Any, args: Args, n_episodes: int) -> dict[str, Any]:
    """Deterministic replay of ``policy`` and the uniform sampler on the same fresh seeds."""
    import gymnasium as gym
    import numpy as np

    import dus_env
    from dus_agents import UniformPolicy, run_episode

    env = gym.make(dus_env.ENV_ID, preset=args.preset, config=env_overrides(args) or None)
    seeds = [10_000 + i for i in range(n_episodes)]
    out: dict[str, Any] = {"seeds": seeds}
    for name, pol in (("policy", policy), ("uniform", UniformPolicy.for_env(env))):
        returns, accs = [], []
        for s in seeds:
            result = run_episode(env, pol, seed=s, deterministic=True)
            returns.append(result.episode_return)
            val = result.infos[-1].get("validation") or {}
            accs.append(val.get("accuracy"))
        out[name] = {"returns": returns, "mean_return": float(np.mean(returns)),
                     "final_val_acc": accs}
    out["mean_return_difference"] = out["policy"]["mean_return"] - out["uniform"]["mean_return"]
    env.close()
    return out


def build_vec_env(args: Args, run_dir: Path, reward_scale: float,
                  crash_at_step: dict[int, int] | None = None):
    """PPO's VecEnv as ``--vec-env`` asks (monitor files ``monitor/<rank>.monitor.csv``).
    ``crash_at_step`` is the RayVecEnv test hook (``{env index: step}``)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from dus_agents.ppo import make_env_fn, make_vec_env

    overrides = env_overrides(args)
    if args.vec_env == "auto":
        return make_vec_env(args.preset, args.n_envs, overrides, monitor_dir=run_dir / "monitor",
                            reward_scale=reward_scale)
    (run_dir / "monitor").mkdir(parents=True, exist_ok=True)
    if args.vec_env == "ray" and args.gpus_per_env > 0:
        overrides = {**overrides, "device": "cuda"}
    fns = [make_env_fn(args.preset, overrides, str(run_dir / "monitor" / str(rank)), reward_scale)
           for rank in range(args.n_envs)]
    if args.vec_env == "dummy":
        return DummyVecEnv(fns)
    if args.vec_env == "subproc":
        return SubprocVecEnv(fns)
    from dus_agents.ray_vec_env import RayVecEnv

    return RayVecEnv(fns, num_cpus=args.cpus_per_env, num_gpus=args.gpus_per_env,
                     max_restarts=args.max_restarts, crash_at_step=crash_at_step)


# --------------------------------------------------------------------------- agents
def train_ppo(args: Args, run_dir: Path, probe_env: Any, segment: int,
              crash_at_step: dict[int, int] | None = None) -> tuple[Any, dict]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.utils import set_random_seed

    from dus_agents.callbacks import (
        DUSInfoCallback,
        RolloutCheckpointCallback,
        list_checkpoints,
        truncate_jsonl,
    )
    from dus_agents.ppo import PPOConfig, PPOPolicy, build_ppo

    config = PPOConfig()
    episode_length = probe_env.unwrapped.config.n_steps
    rollout = config.rollout_steps(episode_length) * args.n_envs
    target = -(-args.total_timesteps // rollout) * rollout
    vec_env = build_vec_env(args, run_dir, config.reward_scale, crash_at_step)
    info: dict[str, Any] = {"rollout_timesteps": rollout, "target_timesteps": target,
                            "ppo_config": config.to_dict(),
                            "sb3_kwargs": config.sb3_kwargs(episode_length, args.n_envs)}
    model = None
    for checkpoint in reversed(list_checkpoints(run_dir / "checkpoints")):
        try:
            model = PPO.load(str(checkpoint), env=vec_env, device=config.device)
            info["resumed_from"] = str(checkpoint)
            break
        except Exception as exc:  # a damaged checkpoint: fall back to the one before
            print(f"warning: skipping unreadable checkpoint {checkpoint}: {exc}", file=sys.stderr)
    if model is None:
        model = build_ppo(vec_env, config, args.seed, episode_length)
    else:
        set_random_seed(args.seed + model.num_timesteps)
        vec_env.seed(args.seed + model.num_timesteps)
    model.set_logger(make_logger(run_dir, segment))
    done = model.num_timesteps
    truncate_jsonl(run_dir / "episodes.jsonl", done)
    dus_cb = DUSInfoCallback(run_dir / "episodes.jsonl")
    callbacks = [dus_cb, RolloutCheckpointCallback(
        args.checkpoint_freq, run_dir / "checkpoints", keep_last=args.keep_checkpoints)]
    try:
        if done < target:
            model.learn(target - done, callback=callbacks, reset_num_timesteps=False,
                        progress_bar=args.progress_bar)
    finally:
        vec_env.close()
    if args.vec_env == "ray":
        info["worker_restarts"] = int(sum(vec_env.restarts))
    policy = PPOPolicy(model, probe_env.unwrapped.spec_dict())
    info["timesteps"] = int(model.num_timesteps)
    return policy, info


def train_reinforce(args: Args, run_dir: Path, probe_env: Any, segment: int) -> tuple[Any, dict]:
    from tqdm.auto import tqdm

    from dus_agents.callbacks import (
        append_jsonl,
        episode_scalars,
        list_checkpoints,
        step_scalars,
        truncate_jsonl,
    )
    from dus_agents.reinforce import ReinforceAgent, ReinforceConfig
    from dus_agents.rollout import run_episode

    env = probe_env
    episode_length = env.unwrapped.config.n_steps
    n_episodes = -(-args.total_timesteps // episode_length)
    target = n_episodes * episode_length
    spec = env.unwrapped.spec_dict()
    checkpoints = run_dir / "checkpoints"
    agent, info = None, {"target_timesteps": target, "episode_length": episode_length}
    for checkpoint in reversed(list_checkpoints(checkpoints, "reinforce")):
        try:
            agent = ReinforceAgent.load(checkpoint, env, frozen=False)
            info["resumed_from"] = str(checkpoint)
            break
        except Exception as exc:
            print(f"warning: skipping unreadable checkpoint {checkpoint}: {exc}", file=sys.stderr)
    if agent is None:
        agent = ReinforceAgent.for_env(env, ReinforceConfig(), seed=args.seed)
    info["reinforce_config"] = agent.config.to_dict()
    logger = make_logger(run_dir, segment)
    checkpoints.mkdir(parents=True, exist_ok=True)
    last_saved = agent.n_steps
    truncate_jsonl(run_dir / "episodes.jsonl", agent.n_steps)
    start_episode = agent.n_steps // episode_length
    bar = tqdm(total=target, initial=agent.n_steps, unit="step", disable=not args.progress_bar)
    for index in range(start_episode, n_episodes):
        result = run_episode(env, agent, seed=episode_seed(args.seed, index), deterministic=False)
        for step_info in result.infos[1:]:
            for key, value in step_scalars(step_info).items():
                logger.record_mean(key, value)
        scalars = episode_scalars(result.infos[-1], result.episode_return, result.length)
        append_jsonl(run_dir / "episodes.jsonl", {**scalars, "timesteps": agent.n_steps})
        for key, value in {**scalars, **{f"reinforce/{k}": v
                                         for k, v in agent.last_update.items()}}.items():
            logger.record(key, value)
        logger.record("time/episodes", agent.n_episodes)
        logger.dump(step=agent.n_steps)
        bar.update(result.length)
        if agent.n_steps - last_saved >= args.checkpoint_freq or index == n_episodes - 1:
            path = checkpoints / f"reinforce_{agent.n_steps}_steps.zip"
            agent.save(path, spec, {"episodes": agent.n_episodes})
            last_saved = agent.n_steps
            for old in list_checkpoints(checkpoints, "reinforce")[:-args.keep_checkpoints]:
                old.unlink(missing_ok=True)
    bar.close()
    logger.close()
    info["timesteps"] = int(agent.n_steps)
    info["updates"] = int(agent.n_updates)
    return agent, info


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None, crash_at_step: dict[int, int] | None = None) -> int:
    """Train and save one policy. ``crash_at_step`` is a test hook of ``--vec-env ray``
    (``{env index: n}``: that env's first actor kills its own process in its n-th step)."""
    args, resume_dir = parse_args(argv)
    session = None
    if args.vec_env == "ray":
        from dus_agents.ray_backend import (
            RayConnectionError,
            RayNotInstalledError,
            check_fits,
            connect,
        )

        try:
            session = connect(args.address, num_cpus=args.ray_cpus or None)
        except (RayNotInstalledError, RayConnectionError) as err:
            build_parser().error(f"--vec-env ray: {err}")
        try:
            warning = check_fits(session, "--cpus-per-env", args.cpus_per_env,
                                 "--gpus-per-env", args.gpus_per_env)
        except ValueError as err:
            session.close()
            build_parser().error(str(err))
        if warning:
            print(f"train_agent.py: {warning}", file=sys.stderr)
    try:
        return train(args, resume_dir, crash_at_step)
    finally:
        if session is not None:
            session.close()


def train(args: Args, resume_dir: Path | None,
          crash_at_step: dict[int, int] | None = None) -> int:
    """Everything after argument checking: build the env, train, save, summarise."""
    import gymnasium as gym
    import numpy as np
    import torch

    import dus_env

    torch.set_num_threads(args.torch_threads)
    try:
        probe_env = gym.make(dus_env.ENV_ID, preset=args.preset,
                             config=env_overrides(args) or None)
    except (ValueError, TypeError) as exc:
        print(f"error: could not build the env: {exc}", file=sys.stderr)
        return 2
    env_name = f"DUS-v0-{args.preset}" + (f"-{args.host}" if args.host else "")

    if resume_dir is not None:
        run_dir = resume_dir
        previous = json.loads((run_dir / "config.json").read_text())
        segment = previous.get("segments", 1)
    else:
        name = args.run_name or f"{env_name}__{args.agent}__{args.seed}__{int(time.time())}"
        run_dir = Path(args.out_dir) / name
        suffix = 1
        while run_dir.exists():
            run_dir = Path(args.out_dir) / f"{name}_{suffix}"
            suffix += 1
        segment = 0
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "args": dataclasses.asdict(args),
        "env_id": dus_env.ENV_ID,
        "env_config": probe_env.unwrapped.config_dict(),
        "env_spec": probe_env.unwrapped.spec_dict(),
        "segments": segment + 1,
        "command": [sys.executable, *sys.argv],
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str))
    print(f"run directory: {run_dir}")

    start = time.perf_counter()
    if args.agent == "ppo":
        policy, info = train_ppo(args, run_dir, probe_env, segment, crash_at_step)
    else:
        policy, info = train_reinforce(args, run_dir, probe_env, segment)
    train_time = time.perf_counter() - start
    policy_path = run_dir / "policy.zip"
    policy.save(policy_path, metadata={"args": dataclasses.asdict(args),
                                       "timesteps": info["timesteps"]})

    previous_summary = {}
    if (run_dir / "summary.json").exists():
        previous_summary = json.loads((run_dir / "summary.json").read_text())
    records = read_episodes(run_dir)
    # an episode cut short by a lost Ray worker has no return (and no Monitor record)
    episodes = [e for e in records if "dus/episode/return" in e]
    last = episodes[-10:]
    summary: dict[str, Any] = {
        "agent": args.agent,
        "preset": args.preset,
        "host": args.host or probe_env.unwrapped.config.trainer.host,
        "seed": args.seed,
        "requested_timesteps": args.total_timesteps,
        **info,
        "episodes": len(episodes),
        "episodes_lost_to_worker_restarts": len(records) - len(episodes),
        "wall_time_s": train_time,
        "total_wall_time_s": train_time + previous_summary.get("total_wall_time_s", 0.0),
        "final_mean_episode_return": (float(np.mean([e["dus/episode/return"] for e in last]))
                                      if last else None),
        "final_mean_val_acc": (float(np.mean([e["dus/episode/final_val_acc"] for e in last
                                              if "dus/episode/final_val_acc" in e]))
                               if any("dus/episode/final_val_acc" in e for e in last) else None),
        "policy": str(policy_path),
        "segments": segment + 1,
    }
    if args.eval_episodes:
        from dus_agents.registry import make_policy

        replay = make_policy(f"{args.agent}:{policy_path}", probe_env)
        summary["replay_vs_uniform"] = compare_with_uniform(replay, args, args.eval_episodes)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    probe_env.close()
    print(f"trained {summary['timesteps']} timesteps ({summary['episodes']} episodes) in "
          f"{train_time:.1f} s; final mean episode return "
          f"{summary['final_mean_episode_return']}; policy: {policy_path}")
    if "replay_vs_uniform" in summary:
        cmp = summary["replay_vs_uniform"]
        print(f"replay (deterministic) mean return {cmp['policy']['mean_return']:.2f} vs uniform "
              f"{cmp['uniform']['mean_return']:.2f} on {args.eval_episodes} fresh episodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
