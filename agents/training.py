"""Training a sampling policy: the loops behind ``dus-train`` (``train_agent.py``).

:func:`train` builds the env, runs PPO (:func:`train_ppo`, Stable-Baselines3 over many training
runs) or the online REINFORCE agent (:func:`train_reinforce`, consecutive runs), saves the
policy artefact and writes the run directory: ``config.json``, ``policy.zip``,
``checkpoints/``, ``tb/``, ``logs/``, ``monitor/``, ``episodes.jsonl``, ``summary.json``.
:class:`TrainArgs` is what the command line fills; :mod:`dus_agents.cli.train` validates it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dus_env.errors import UsageError
from dus_env.files import atomic_write

AGENTS: tuple[str, ...] = ("ppo", "reinforce")
VEC_ENVS: tuple[str, ...] = ("auto", "dummy", "subproc", "ray")
RAY_FLAGS: tuple[str, ...] = ("address", "ray_cpus", "cpus_per_env", "gpus_per_env",
                              "max_restarts")
"""Flags only --vec-env ray reads."""


@dataclass
class TrainArgs:
    """What to train (each field is one ``dus-train`` / ``train_agent.py`` flag)."""

    agent: str = "ppo"
    """Agent to train: ppo (Stable-Baselines3 PPO over many training runs) or reinforce (the
    online agent that learns inside each run; trained over consecutive runs)."""
    preset: str = "default"
    """Env preset (see --help's list); not used with --suite."""
    suite: str | None = None
    """Train on this task suite's training tasks instead of one preset (dus_env/DUS-v1 with
    permuted slots, the paired reward, the DeepSets policy; see dus_env.suites), selecting the
    best checkpoint on the suite's validation slice (--eval-tasks x its validation seeds)."""
    host: str | None = None
    """Host MML method overriding the preset's (joint, mla, ogm_ge, unimodal)."""
    set: list[str] = dataclasses.field(default_factory=list, metadata={"metavar": "KEY=VALUE"})
    """Env config override KEY=VALUE over the preset, repeatable, e.g. --set
    reward.name=discrepancy --set sampler.multipliers=[0.5,1,2] (values read as JSON when
    they parse)."""
    ppo: list[str] = dataclasses.field(default_factory=list, metadata={"metavar": "KEY=VALUE"})
    """PPO setting override KEY=VALUE (a dus_agents.ppo.PPOConfig field), repeatable, e.g.
    --ppo learning_rate=1e-3 --ppo episodes_per_rollout=2 (values read as JSON); --agent ppo
    only. The settings used are recorded in config.json."""
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
    """Seed of the agent and of the training episodes (0 to 2**32-1)."""
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
    eval_freq: int = 10000
    """--suite: timesteps between model-selection evaluations (and one at the end)."""
    eval_tasks: int = 8
    """--suite: training tasks in the validation slice (the first N, each with the suite's
    validation seeds, which no training episode uses); never held-out tasks or test data."""
    imitate_episodes: int = 0
    """--suite: start PPO from DUS-H instead of from uniform: before training, fit the DeepSets
    policy's action head to DUS-H's actions on this many episodes of the suite's training
    tasks (behaviour cloning; 0: no warm start)."""
    anchor: str = "none"
    """--suite: none (the DeepSets policy starts near uniform) or heuristic (a fixed DUS-H
    prior on its logits: it starts as DUS-H and learns a correction; the paired reward's
    reference run is then DUS-H too, unless --set reward.reference_policy names another)."""
    anchor_strength: float = 1.0
    """--anchor heuristic: the prior's logit drop per grid step away from DUS-H's choice."""
    progress_bar: bool = True
    """Show a progress bar (tqdm + rich)."""
    torch_threads: int = 1
    """torch.set_num_threads for this process (workers always use 1); at most 1024."""


# --------------------------------------------------------------------------- helpers
def env_overrides(args: TrainArgs, run_dir: Path | None = None) -> dict[str, Any]:
    """The env config overrides over the preset (or every task of the suite): ``--set``
    pairs, then ``--host``; with ``--suite``, the paired reward unless ``--set`` names
    another (its reference run DUS-H with ``--anchor heuristic``), its reference curves cached
    in ``run_dir/reference_cache``."""
    from dus_env.config import overrides_from_pairs

    overrides = overrides_from_pairs(args.set)
    if args.host:
        overrides.setdefault("trainer", {})["host"] = args.host
    if args.suite:
        reward = overrides.setdefault("reward", {})
        reward.setdefault("name", "paired")
        paired = reward["name"] in ("paired", "paired_best")
        if args.anchor == "heuristic" and paired:
            reward.setdefault("reference_policy", "heuristic")
        if run_dir is not None and paired:
            reward.setdefault("reference_cache", str(run_dir / "reference_cache"))
    return overrides


def make_probe_env(args: TrainArgs, run_dir: Path | None = None) -> Any:
    """The env a run's settings describe (for its spec, and for the final replay)."""
    import dus_env
    from dus_agents.base import make_dus_env

    overrides = env_overrides(args, run_dir) or None
    if args.suite:
        return make_dus_env(dus_env.ENV_V1_ID, suite=args.suite, config=overrides)
    return make_dus_env(dus_env.ENV_ID, preset=args.preset, config=overrides)


def make_logger(run_dir: Path, segment: int):
    """SB3 logger writing TensorBoard events to tb/ and CSV to logs/progress_<segment>.csv."""
    from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat

    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    return Logger(folder=str(run_dir / "logs"), output_formats=[
        TensorBoardOutputFormat(str(run_dir / "tb")),
        CSVOutputFormat(str(run_dir / "logs" / f"progress_{segment}.csv")),
    ])


def read_episodes(run_dir: Path) -> list[dict[str, float]]:
    """The recorded training episodes; a line cut short by a kill is left out."""
    path = run_dir / "episodes.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def episode_seed(seed: int, index: int) -> int:
    """Reset seed of training episode ``index`` (the same after a resume)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def compare_with_uniform(policy: Any, args: TrainArgs, n_episodes: int) -> dict[str, Any]:
    """Deterministic replay of ``policy`` and the uniform sampler on the same fresh seeds.

    With ``--suite``: the suite's training tasks in turn, each on an episode seed outside every
    task's pool and the validation seeds (DUS-v1 maps a plain reset seed to a training task
    and a seed of its training pool: episodes the policy trained on)."""
    import itertools

    import numpy as np

    from dus_agents import UniformPolicy, run_episode

    env = make_probe_env(args)
    seeds: list[int] = []
    tasks: list[str | None] = [None] * n_episodes
    if args.suite:
        suite = env.unwrapped.suite
        used = set(suite.validation_seeds) | {s for t in (*suite.train, *suite.heldout)
                                              for s in (t.seeds or ())}
        seeds = list(itertools.islice((s for s in itertools.count(10_000) if s not in used),
                                      n_episodes))
        tasks = [suite.train[i % len(suite.train)].name for i in range(n_episodes)]
    else:
        seeds = [10_000 + i for i in range(n_episodes)]
    out: dict[str, Any] = {"seeds": seeds}
    if args.suite:
        out["tasks"] = tasks
    for name, pol in (("policy", policy), ("uniform", UniformPolicy.for_env(env))):
        returns, accs = [], []
        for s, task in zip(seeds, tasks):
            options = None if task is None else {"task": task, "episode_seed": s}
            result = run_episode(env, pol, seed=s, deterministic=True, options=options)
            returns.append(result.episode_return)
            val = result.infos[-1].get("validation") or {}
            accs.append(val.get("accuracy"))
        out[name] = {"returns": returns, "mean_return": float(np.mean(returns)),
                     "final_val_acc": accs}
    out["mean_return_difference"] = out["policy"]["mean_return"] - out["uniform"]["mean_return"]
    env.close()
    return out


def build_vec_env(args: TrainArgs, run_dir: Path, reward_scale: float,
                  crash_at_step: dict[int, int] | None = None):
    """PPO's VecEnv as ``--vec-env`` asks (monitor files ``monitor/<rank>.monitor.csv``).
    ``crash_at_step`` is the RayVecEnv test hook (``{env index: step}``)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from dus_agents.ppo import make_env_fn, make_vec_env

    overrides = env_overrides(args, run_dir)
    if args.vec_env == "auto":
        return make_vec_env(args.preset, args.n_envs, overrides, monitor_dir=run_dir / "monitor",
                            reward_scale=reward_scale, suite=args.suite)
    (run_dir / "monitor").mkdir(parents=True, exist_ok=True)
    if args.vec_env == "ray" and args.gpus_per_env > 0:
        overrides = {**overrides, "device": "cuda"}
    fns = [make_env_fn(args.preset, overrides, str(run_dir / "monitor" / str(rank)), reward_scale,
                       args.suite)
           for rank in range(args.n_envs)]
    if args.vec_env == "dummy":
        return DummyVecEnv(fns)
    if args.vec_env == "subproc":
        return SubprocVecEnv(fns)
    from dus_agents.ray_vec_env import RayVecEnv

    return RayVecEnv(fns, num_cpus=args.cpus_per_env, num_gpus=args.gpus_per_env,
                     max_restarts=args.max_restarts, crash_at_step=crash_at_step)


def close_quietly(vec_env: Any) -> None:
    """Close ``vec_env`` after training stopped on an exception (Ctrl-C, a full disk, a lost
    worker): an error of the close itself (a dead worker's pipe: ``EOFError``,
    ``BrokenPipeError``) is dropped, so the exception that stopped training is the one
    reported."""
    try:
        vec_env.close()
    except Exception:  # noqa: BLE001 - the original exception matters, not this one
        pass


# --------------------------------------------------------------------------- agents
def ppo_config(args: TrainArgs):
    """The PPO settings of a run: the suite's or the preset's defaults, then ``--ppo``."""
    from dus_agents.ppo import PPOConfig

    base = PPOConfig.for_suite() if args.suite else PPOConfig()
    return base.with_overrides(args.ppo)


def train_ppo(args: TrainArgs, run_dir: Path, probe_env: Any, segment: int,
              crash_at_step: dict[int, int] | None = None) -> tuple[Any, dict]:
    from stable_baselines3.common.utils import set_random_seed

    from dus_agents.callbacks import (
        DUSInfoCallback,
        RolloutCheckpointCallback,
        list_checkpoints,
        truncate_jsonl,
        truncate_monitors,
    )
    from dus_agents.ppo import (
        PPOPolicy,
        build_ppo,
        read_checkpoint,
        restore_checkpoint,
        restore_rng_states,
    )
    from dus_env.errors import ArtifactError

    config = ppo_config(args)
    spec = probe_env.unwrapped.spec_dict()
    episode_length = (max(t.config.steps_per_episode for t in probe_env.unwrapped._pool)
                      if args.suite else probe_env.unwrapped.config.steps_per_episode)
    rollout = config.rollout_steps(episode_length) * args.n_envs
    target = -(-args.total_timesteps // rollout) * rollout
    info: dict[str, Any] = {"rollout_timesteps": rollout, "target_timesteps": target,
                            "ppo_config": config.to_dict(),
                            "sb3_kwargs": config.sb3_kwargs(episode_length, args.n_envs)}
    checkpoint = None
    for path in reversed(list_checkpoints(run_dir / "checkpoints")):
        try:  # read as data: a checkpoint that is not the package's own format is refused
            checkpoint = read_checkpoint(path, probe_env)
            break
        except (ArtifactError, OSError) as exc:  # fall back to the one before
            print(f"warning: skipping checkpoint {path}: {exc}", file=sys.stderr)
    if checkpoint is not None:  # the episodes logged after it are redone: drop their rows
        truncate_monitors(run_dir / "monitor", checkpoint.counters.get("monitor_rows", {}))
    vec_env = build_vec_env(args, run_dir, config.reward_scale, crash_at_step)
    model = build_ppo(vec_env, config, args.seed, episode_length,
                      policy="deepsets" if args.suite else "mlp",
                      deepsets={"anchor": args.anchor, "anchor_strength": args.anchor_strength})
    if checkpoint is not None:
        restore_checkpoint(model, checkpoint)
        info["resumed_from"] = str(checkpoint.path)
        # its random state: the run goes on as if never stopped (where every env was between
        # episodes); a checkpoint without one (older, or another --n-envs) reseeds instead
        rng = checkpoint.counters.get("rng")
        info["resumed_exactly"] = bool(rng) and restore_rng_states(rng, vec_env)
        if not info["resumed_exactly"]:
            set_random_seed(args.seed + model.num_timesteps)
            vec_env.seed(args.seed + model.num_timesteps)
    elif args.suite and args.imitate_episodes:
        info["imitation"] = imitate_heuristic(model, args, probe_env)
    model.set_logger(make_logger(run_dir, segment))
    done = model.num_timesteps
    truncate_jsonl(run_dir / "episodes.jsonl", done)
    dus_cb = DUSInfoCallback(run_dir / "episodes.jsonl")
    callbacks = [dus_cb, RolloutCheckpointCallback(
        args.checkpoint_freq, run_dir / "checkpoints", keep_last=args.keep_checkpoints,
        env_spec=spec, monitor_dir=run_dir / "monitor")]
    selection = None
    if args.suite:
        from dus_agents.callbacks import SelectionCallback

        suite = probe_env.unwrapped.suite
        slice_ = [(t.name, s) for t in suite.train[: args.eval_tasks]
                  for s in suite.validation_seeds]
        selection = SelectionCallback(make_probe_env(args, run_dir), slice_, args.eval_freq,
                                      run_dir, spec)
        callbacks.append(selection)
        info["validation_slice"] = [list(x) for x in slice_]
    try:
        if done < target:
            model.learn(target - done, callback=callbacks, reset_num_timesteps=False,
                        progress_bar=args.progress_bar)
    except BaseException:
        close_quietly(vec_env)  # its workers may be gone (Ctrl-C reached them too)
        raise
    vec_env.close()
    if args.vec_env == "ray":
        info["worker_restarts"] = int(sum(vec_env.restarts))
    policy = PPOPolicy(model.policy, spec)
    if selection is not None:  # the best checkpoint on the validation slice, not the last
        info["selection"] = selection.summary()
        if selection.best_path.is_file():
            policy = PPOPolicy.load(selection.best_path)
    info["timesteps"] = int(model.num_timesteps)
    return policy, info


def imitate_heuristic(model: Any, args: TrainArgs, probe_env: Any) -> dict[str, Any]:
    """Behaviour cloning of DUS-H (on the env's grid) into a fresh DeepSets policy: DUS-H acts
    on ``args.imitate_episodes`` episodes of the suite's training tasks (drawn as training draws
    them, slots permuted; a reward that reads no validation, as only the observations matter)
    and the policy's action head is fit to its actions."""
    import numpy as np

    import dus_env
    from dus_agents.base import make_dus_env
    from dus_agents.deepsets import imitate
    from dus_agents.heuristic import HeuristicPolicy

    start = time.perf_counter()
    # the run's own --set / --host overrides (its observation layout, its host), with a reward
    # that reads no validation
    env = make_dus_env(dus_env.ENV_V1_ID, suite=args.suite,
                       config={**env_overrides(args), "reward": {"name": "discrepancy"}})
    teacher = HeuristicPolicy.for_env(env)
    observations, actions = [], []
    for episode in range(args.imitate_episodes):
        obs, _ = env.reset(seed=episode_seed(args.seed + 7919, episode))
        done = False
        while not done:
            action, _ = teacher.predict(obs, deterministic=True)
            observations.append(obs)
            actions.append(action)
            obs, _, done, _, _ = env.step(action)
    losses = imitate(model.policy, np.stack(observations), np.stack(actions), seed=args.seed)
    env.close()
    return {"episodes": args.imitate_episodes, "observations": len(observations),
            "loss_first_epoch": losses[0], "loss_last_epoch": losses[-1],
            "seconds": time.perf_counter() - start}


def train_reinforce(args: TrainArgs, run_dir: Path, probe_env: Any, segment: int) -> tuple[Any, dict]:
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
    from dus_env.errors import ArtifactError

    env = probe_env
    episode_length = env.unwrapped.config.steps_per_episode
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
        except (ArtifactError, OSError) as exc:  # fall back to the one before
            print(f"warning: skipping checkpoint {checkpoint}: {exc}", file=sys.stderr)
    if agent is None:
        agent = ReinforceAgent.for_env(env, ReinforceConfig(), seed=args.seed)
    info["reinforce_config"] = agent.config.to_dict()
    logger = make_logger(run_dir, segment)
    checkpoints.mkdir(parents=True, exist_ok=True)
    last_saved = agent.steps_seen
    truncate_jsonl(run_dir / "episodes.jsonl", agent.steps_seen)
    start_episode = agent.n_episodes  # episodes that ended early (diverged) count as one each
    bar = tqdm(total=target, initial=agent.steps_seen, unit="step", disable=not args.progress_bar)
    for index in range(start_episode, n_episodes):
        result = run_episode(env, agent, seed=episode_seed(args.seed, index), deterministic=False)
        for step_info in result.infos[1:]:
            for key, value in step_scalars(step_info).items():
                logger.record_mean(key, value)
        scalars = episode_scalars(result.infos[-1], result.episode_return, result.length)
        append_jsonl(run_dir / "episodes.jsonl", {**scalars, "timesteps": agent.steps_seen})
        for key, value in {**scalars, **{f"reinforce/{k}": v
                                         for k, v in agent.last_update.items()}}.items():
            logger.record(key, value)
        logger.record("time/episodes", agent.n_episodes)
        logger.dump(step=agent.steps_seen)
        bar.update(result.length)
        if agent.steps_seen - last_saved >= args.checkpoint_freq or index == n_episodes - 1:
            path = checkpoints / f"reinforce_{agent.steps_seen}_steps.zip"
            agent.save(path, spec, {"episodes": agent.n_episodes})
            last_saved = agent.steps_seen
            for old in list_checkpoints(checkpoints, "reinforce")[:-args.keep_checkpoints]:
                old.unlink(missing_ok=True)
    bar.close()
    logger.close()
    info["timesteps"] = int(agent.steps_seen)
    info["updates"] = int(agent.n_updates)
    return agent, info


# --------------------------------------------------------------------------- the run
def train(args: TrainArgs, resume_dir: Path | None,
          crash_at_step: dict[int, int] | None = None) -> int:
    """Everything after argument checking: build the env, train, save, summarise. A full disk
    is :class:`dus_agents.cli.common.Failed` (one line: what is kept, how to resume)."""
    import torch

    from dus_agents.callbacks import list_checkpoints
    from dus_agents.cli import common as cli

    torch.set_num_threads(args.torch_threads)
    try:
        probe_env = make_probe_env(args)
    except (ValueError, TypeError) as exc:  # before anything is written
        raise UsageError(f"could not build the env: {exc}") from None
    if args.suite:
        env_name = f"DUS-v1-{args.suite}"
    else:
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
    try:
        return _train_in(args, run_dir, segment, probe_env, crash_at_step)
    except (OSError, EOFError) as err:
        # a full disk, or a subprocess env worker gone (killed, out of memory): the finished
        # checkpoints are kept, say so and how to go on
        lost_worker = (isinstance(err, (EOFError, BrokenPipeError, ConnectionResetError))
                       and args.agent == "ppo" and args.vec_env != "ray")
        if not (cli.is_disk_error(err) or lost_worker):
            raise
        prefix = "rl_model" if args.agent == "ppo" else "reinforce"
        kept = f"its {len(list_checkpoints(run_dir / 'checkpoints', prefix))} finished " \
               "checkpoint(s) are kept"
        rerun = (f"rerun with --resume {run_dir}" if (run_dir / "config.json").is_file()
                 else "rerun the same command")
        if lost_worker:
            raise cli.Failed(f"an env worker process of the run in {run_dir} died "
                             f"({cli.one_line(err)}); {kept}; {rerun} (--vec-env ray restarts "
                             "lost workers)") from None
        raise cli.Failed(cli.write_failure(run_dir, err, kept, rerun)) from None


def _train_in(args: TrainArgs, run_dir: Path, segment: int, probe_env: Any,
              crash_at_step: dict[int, int] | None) -> int:
    """:func:`train`'s run in ``run_dir`` (segment ``segment``): write, train, save, summarise."""
    import numpy as np

    import dus_env
    from dus_env.seeding import cpu_capability

    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "args": dataclasses.asdict(args),
        "env_id": dus_env.ENV_V1_ID if args.suite else dus_env.ENV_ID,
        "env_config": probe_env.unwrapped.config_dict(),
        "env_spec": probe_env.unwrapped.spec_dict(),
        "segments": segment + 1,
        "command": [sys.executable, *sys.argv],
        "torch_cpu_capability": cpu_capability(),  # bit-for-bit repetition needs the same
    }
    atomic_write(run_dir / "config.json", json.dumps(config, indent=2, default=str))
    print(f"run directory: {run_dir}")

    start = time.perf_counter()
    if args.agent == "ppo":
        policy, info = train_ppo(args, run_dir, probe_env, segment, crash_at_step)
    else:
        policy, info = train_reinforce(args, run_dir, probe_env, segment)
    train_time = time.perf_counter() - start
    policy_path = run_dir / "policy.zip"
    best = (info.get("selection") or {}).get("best")
    selected = {"selected_at_timesteps": best["timesteps"]} if best else {}
    policy.save(policy_path, metadata={"args": dataclasses.asdict(args),
                                       "timesteps": info["timesteps"], **selected})

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
    atomic_write(run_dir / "summary.json", json.dumps(summary, indent=2, default=str))
    probe_env.close()
    print(f"trained {summary['timesteps']} timesteps ({summary['episodes']} episodes) in "
          f"{train_time:.1f} s; final mean episode return "
          f"{summary['final_mean_episode_return']}; policy: {policy_path}")
    if "replay_vs_uniform" in summary:
        cmp = summary["replay_vs_uniform"]
        print(f"replay (deterministic) mean return {cmp['policy']['mean_return']:.2f} vs uniform "
              f"{cmp['uniform']['mean_return']:.2f} on {args.eval_episodes} fresh episodes")
    return 0
