"""One evaluation run: a policy drives one training run, the model is selected on validation,
then tested once.

:func:`run_one` gives the row ``results.csv`` gets and the per-step trace; :func:`run_selected`
is the core (the episode plus best-validation weights), shared with the lever screens of
``benchmarks/levers.py``. Model selection reads validation only; the test split is read once,
after training.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import torch

from dus_agents.evaluation.results import KEY_FIELDS
from dus_agents.registry import make_policy
from dus_agents.rollout import run_episode
from dus_env.config import overrides_from_pairs
from dus_env.env import DUSEnv

MAIN_METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "map")
"""The multimodal test metrics of every row."""


def header_for(modalities: Sequence[str]) -> list[str]:
    """The columns of ``results.csv`` for these modalities."""
    per = [f"{p}_{m}" for p in ("acc", "probe", "samples") for m in modalities]
    return [*KEY_FIELDS, "budget", *MAIN_METRICS, "sum_heads_accuracy", *per, "paired_samples",
            "final_val_accuracy", "best_val_accuracy", "best_val_step", "best_val_iteration",
            "steps", "episode_return", "diverged", "wall_time"]


def make_env(preset: str, host: str, budget_matched: bool, device: str = "cpu",
             overrides_set: Sequence[str] = (), layout: str = "v0") -> DUSEnv:
    """The env of one host: the preset, then ``--set`` pairs, then the host and budget; a
    DUS-v1 env of the same task (its grid, modality ``i`` in slot ``i``) with ``layout="v1"``,
    or one taking requested multipliers as actions with ``layout="full"``. The same seed gives
    the same training run in each, for the same per-modality sizes."""
    overrides = overrides_from_pairs(overrides_set)
    overrides.setdefault("trainer", {})["host"] = host
    if budget_matched:
        overrides.setdefault("sampler", {})["budget"] = "renormalize"
    if device != "cpu":
        overrides["device"] = device
    if layout == "v1":
        from dus_env.env_v1 import DUSEnvV1

        return DUSEnvV1(config=overrides, preset=preset, permute_modalities=False)
    if layout == "full":
        overrides.setdefault("sampler", {})["action"] = "multipliers"
    return DUSEnv(config=overrides, preset=preset)


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
        self._track(info, 0)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._track(info, len(self.val_curve))
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
            wrapper: Callable[[gym.Env], gym.Env] | None = None, policy: Any = None,
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One training run driven by ``spec`` (or by ``policy``, recorded under the name
    ``spec``); returns (results row, trace). ``wrapper`` (a test hook) wraps the env the policy
    steps."""
    start = time.perf_counter()
    if policy is None:
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
        "sum_heads_accuracy": test.sum_heads_accuracy,
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
