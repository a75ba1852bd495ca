"""Reward design for PPO: train one PPO policy per reward on a preset, then screen each on
validation with ``benchmarks/levers.py`` (replayed next to uniform and the heuristic).

``train_agent.py`` trains on a preset's own reward (``val_delta``: the change of validation
accuracy each step, a small and noisy signal). Here the same PPO settings
(``dus_agents.ppo.PPOConfig``, ``make_vec_env``, ``build_ppo``) train on the preset with the reward
replaced by ``discrepancy`` (reduction of the gap between the modalities' cumulative scores,
no validation data) or ``hybrid`` (val_delta + 0.5 x discrepancy). Replay uses the preset as
is (the reward does not enter the policy's observation or action), so the policies are
compared with uniform exactly as in the quality benchmark, on the tuning seeds.

    python benchmarks/ppo_rewards.py --rewards hybrid,discrepancy --timesteps 12000 \\
        --out-dir results/ppo_rewards --levers-out results/levers/default_joint_ppo_rewards.json
    python benchmarks/ppo_rewards.py --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per process (see quality.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train(preset: str, reward: str, timesteps: int, n_envs: int, out: Path, seed: int) -> dict:
    import torch

    from dus_agents.ppo import PPOConfig, PPOPolicy, build_ppo, make_vec_env
    from dus_env.env import DUSEnv

    torch.set_num_threads(1)
    config = PPOConfig()
    overrides = {"reward": {"name": reward}}
    probe = DUSEnv(config=overrides, preset=preset)
    vec = make_vec_env(preset, n_envs, overrides, reward_scale=config.reward_scale)
    model = build_ppo(vec, config, seed, probe.config.n_steps)
    start = time.perf_counter()
    model.learn(timesteps)
    seconds = time.perf_counter() - start
    vec.close()
    path = out / f"ppo_{reward}.zip"
    PPOPolicy(model, probe.spec_dict()).save(path, metadata={"reward": reward,
                                                              "timesteps": timesteps})
    return {"reward": reward, "policy": str(path), "timesteps": int(model.num_timesteps),
            "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="default", help="env preset (default: default)")
    p.add_argument("--rewards", default="hybrid,discrepancy",
                   help="comma list of reward names to train PPO on")
    p.add_argument("--timesteps", type=int, default=12000, help="PPO timesteps per reward")
    p.add_argument("--n-envs", type=int, default=2, help="parallel envs (default 2)")
    p.add_argument("--seed", type=int, default=0, help="PPO seed (default 0)")
    p.add_argument("--out-dir", type=Path, default=Path("results/ppo_rewards"))
    p.add_argument("--levers-out", type=Path, default=None,
                   help="run the validation screen of the trained policies into this JSON")
    p.add_argument("--levers-seeds", default="100-119", help="tuning seeds of the screen")
    p.add_argument("--smoke", action="store_true", help="seconds: tiny preset, 24 timesteps")
    args = p.parse_args(argv)
    if args.smoke:
        args.preset, args.timesteps, args.n_envs, args.levers_seeds = "tiny", 24, 1, "0-1"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    trained = []
    for reward in [r.strip() for r in args.rewards.split(",") if r.strip()]:
        path = args.out_dir / f"ppo_{reward}.zip"
        if path.is_file() and not args.smoke:
            print(f"{path} exists; not retraining", file=sys.stderr)
            trained.append({"reward": reward, "policy": str(path)})
            continue
        trained.append(train(args.preset, reward, args.timesteps, args.n_envs, args.out_dir,
                             args.seed))
        print(f"trained PPO on reward {reward}: {trained[-1]}", file=sys.stderr, flush=True)
    (args.out_dir / "trained.json").write_text(json.dumps(trained, indent=1))
    if args.levers_out or args.smoke:
        import levers  # benchmarks/levers.py

        arms = ["mean/uniform", "mean/heuristic"] + [f"mean/ppo={t['policy']}" for t in trained]
        out = args.levers_out or args.out_dir / "levers.json"
        extra = ["--probe-max-train", "300"] if args.smoke else []
        levers.main(["--preset", args.preset, "--seeds", args.levers_seeds, "--arms",
                     ",".join(arms), "--out", str(out), *extra])
    if args.smoke:
        print("smoke ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
