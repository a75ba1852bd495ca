"""Reward design for PPO: train one PPO policy per reward on a preset, then screen each on
validation with ``benchmarks.levers`` (replayed next to uniform and the heuristic).

``train_agent.py`` trains on a preset's own reward (``val_delta``: the change of validation
accuracy each step, a small and noisy signal). Here the same PPO settings
(``dus_agents.ppo.PPOConfig``, ``make_vec_env``, ``build_ppo``) train on the preset with the reward
replaced by ``discrepancy`` (reduction of the gap between the modalities' cumulative scores,
no validation data) or ``hybrid`` (val_delta + 0.5 x discrepancy). Replay uses the preset as
is (the reward does not enter the policy's observation or action), so the policies are
compared with uniform exactly as in the quality benchmark, on the tuning seeds.

    python -m benchmarks.ppo_rewards --rewards hybrid,discrepancy --timesteps 12000 \\
        --out-dir results/ppo_rewards --levers-out results/levers/default_joint_ppo_rewards.json
    python -m benchmarks.ppo_rewards --smoke
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import common
from dus_agents.cli.common import check_at_least, comma_list

LOG = common.logger("ppo_rewards")


@dataclasses.dataclass
class Args(common.BenchArgs):
    """``python -m benchmarks.ppo_rewards``."""

    out: str = dataclasses.field(default="", metadata={"metavar": "PATH"})
    """Where the list of trained policies goes (JSON); empty: OUT_DIR/trained.json."""
    preset: str = "default"
    """Env preset."""
    rewards: str = "hybrid,discrepancy"
    """Comma list of reward names to train PPO on."""
    timesteps: int = 12000
    """PPO timesteps per reward."""
    n_envs: int = 2
    """Parallel envs."""
    seed: int = 0
    """PPO seed."""
    out_dir: str = "results/ppo_rewards"
    """Folder of the trained policies (ppo_REWARD.zip, trained.json)."""
    levers_out: str = ""
    """Run the validation screen of the trained policies into this JSON (empty: no screen,
    except under --smoke, which writes OUT_DIR/levers.json)."""
    levers_seeds: str = "100-119"
    """Tuning seeds of the screen."""

    SMOKE = {"preset": "tiny", "timesteps": 24, "n_envs": 1, "levers_seeds": "0-1"}


def train(preset: str, reward: str, timesteps: int, n_envs: int, out: Path, seed: int) -> dict:
    from dus_agents.ppo import PPOConfig, PPOPolicy, build_ppo, make_vec_env
    from dus_env.env import DUSEnv

    config = PPOConfig()
    overrides = {"reward": {"name": reward}}
    probe = DUSEnv(config=overrides, preset=preset)
    vec = make_vec_env(preset, n_envs, overrides, reward_scale=config.reward_scale)
    model = build_ppo(vec, config, seed, probe.config.steps_per_episode)
    start = time.perf_counter()
    model.learn(timesteps)
    seconds = time.perf_counter() - start
    vec.close()
    path = out / f"ppo_{reward}.zip"
    PPOPolicy(model, probe.spec_dict()).save(path, metadata={"reward": reward,
                                                              "timesteps": timesteps})
    return {"reward": reward, "policy": str(path), "timesteps": int(model.num_timesteps),
            "seconds": seconds}


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(Args, argv)
    rewards = comma_list("--rewards", args.rewards)
    check_at_least("--timesteps", args.timesteps, 1)
    check_at_least("--n-envs", args.n_envs, 1)
    common.setup(args)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trained = []
    for reward in rewards:
        path = out_dir / f"ppo_{reward}.zip"
        if path.is_file() and not args.smoke:
            LOG.info("%s exists; not retraining", path)
            trained.append({"reward": reward, "policy": str(path)})
            continue
        trained.append(train(args.preset, reward, args.timesteps, args.n_envs, out_dir,
                             args.seed))
        LOG.info("trained PPO on reward %s: %s", reward, trained[-1])
    common.write_json(args.out or out_dir / "trained.json", trained)
    if args.levers_out or args.smoke:
        from benchmarks import levers

        arms = ["mean/uniform", "mean/heuristic"] + [f"mean/ppo={t['policy']}" for t in trained]
        out = args.levers_out or str(out_dir / "levers.json")
        extra = ["--probe-max-train", "300"] if args.smoke else []
        levers.main(["--preset", args.preset, "--seeds", args.levers_seeds, "--arms",
                     ",".join(arms), "--out", out, "--threads", str(args.threads), *extra])
    if args.smoke:
        print("smoke ok")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
