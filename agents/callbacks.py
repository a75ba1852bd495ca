"""Stable-Baselines3 callbacks for DUS-v0: ``dus/*`` scalars and rollout-aligned checkpoints.

:func:`step_scalars` and :func:`episode_scalars` turn one env ``info`` into named scalars; the
callbacks send them to the SB3 logger (TensorBoard, CSV), and ``train_agent.py`` reuses the same
functions for the online REINFORCE agent, so both agents log the same names:

=================================  ======================================================
name                               value
=================================  ======================================================
``dus/batch_size/<modality>``      samples the modality trained on in this step
``dus/score/<modality>``           batch score s^j averaged over the step
``dus/cumulative_score/<m>``       cumulative score S^j after the step
``dus/gap/<modality>``             discrepancy S^j - mean_{k!=j} S^k
``dus/loss/<term>``                step-mean training loss per term
``dus/reward/<term>``              each reward term (``val_delta``, ...)
``dus/val_acc``                    validation accuracy, on steps where the reward read it
``dus/episode/*``                  at episode end: ``return``, ``length``,
                                   ``final_val_acc``, ``diverged``, ``samples/<m>``,
                                   ``cumulative_score/<m>`` (final S^j)
=================================  ======================================================

Per-modality and per-loss scalars go to TensorBoard/CSV but not to the stdout table (SB3
truncates its keys there, and long modality names would collide).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

from dus_env.files import append_line, atomic_write


STEP_GROUPS: tuple[tuple[str, str], ...] = (
    ("batch_sizes", "batch_size"), ("batch_scores", "score"),
    ("cumulative_scores", "cumulative_score"), ("gap", "gap"), ("losses", "loss"),
    ("reward_terms", "reward"),
)
"""(info key, scalar group): every per-name dict of an env info logged as ``dus/<group>/<name>``."""


def step_scalars(info: dict[str, Any]) -> dict[str, float]:
    """The per-step ``dus/*`` scalars of one env info."""
    out = {
        f"dus/{prefix}/{name}": float(value)
        for key, prefix in STEP_GROUPS
        for name, value in info.get(key, {}).items()
    }
    validation = info.get("validation")
    if validation:
        out["dus/val_acc"] = float(validation["accuracy"])
    return out


def episode_scalars(info: dict[str, Any], episode_return: float | None = None,
                    length: int | None = None) -> dict[str, float]:
    """The ``dus/episode/*`` scalars from an episode's last info (and return/length when known;
    a Monitor-wrapped env puts them in ``info["episode"]``)."""
    out: dict[str, float] = {}
    if episode_return is None and "episode" in info:
        episode_return, length = info["episode"]["r"], info["episode"]["l"]
    if episode_return is not None:
        out["dus/episode/return"] = float(episode_return)
    if length is not None:
        out["dus/episode/length"] = float(length)
    validation = info.get("validation")
    if validation:
        out["dus/episode/final_val_acc"] = float(validation["accuracy"])
    out["dus/episode/diverged"] = float(bool(info.get("diverged", False)))
    for m, n in info.get("samples_consumed", {}).items():
        out[f"dus/episode/samples/{m}"] = float(n)
    for m, v in info.get("cumulative_scores", {}).items():
        out[f"dus/episode/cumulative_score/{m}"] = float(v)
    return out


_STDOUT_KEYS = ("dus/val_acc", "dus/episode/return", "dus/episode/length",
                "dus/episode/final_val_acc", "dus/episode/diverged")


def stdout_exclusion(key: str) -> tuple[str, ...] | None:
    """Logger ``exclude`` for ``key``: only a few summary scalars reach the stdout table."""
    if key in _STDOUT_KEYS or key.startswith("dus/reward/"):
        return None
    return ("stdout", "log")


class DUSInfoCallback(BaseCallback):
    """Log the ``dus/*`` scalars of every env step (means over each rollout) and of every
    finished episode to the model's logger; keep a record of finished episodes.

    Args:
        episodes_file: if given, each finished episode is appended to this JSON-lines file
            as soon as it ends (its ``dus/episode/*`` scalars plus ``timesteps``).
    """

    def __init__(self, episodes_file: str | os.PathLike | None = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.episodes_file = Path(episodes_file) if episodes_file is not None else None
        self.episodes: list[dict[str, float]] = []
        """One dict of ``dus/episode/*`` scalars (and ``timesteps``) per finished episode."""

    def _on_step(self) -> bool:
        infos = self.locals.get("infos", [])
        dones = self.locals.get("dones", np.zeros(len(infos), dtype=bool))
        for info, done in zip(infos, dones):
            for key, value in step_scalars(info).items():
                self.logger.record_mean(key, value, exclude=stdout_exclusion(key))
            if done:
                scalars = episode_scalars(info)
                for key, value in scalars.items():
                    self.logger.record_mean(key, value, exclude=stdout_exclusion(key))
                record = {**scalars, "timesteps": int(self.model.num_timesteps)}
                self.episodes.append(record)
                if self.episodes_file is not None:
                    append_jsonl(self.episodes_file, record)
        return True


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` (synced, so a finished episode is never lost)."""
    append_line(path, json.dumps(record))


def truncate_jsonl(path: str | os.PathLike, max_timesteps: int) -> None:
    """Drop the lines of ``path`` recorded after ``max_timesteps`` (work a resumed run redoes)."""
    path = Path(path)
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:  # a line cut short by a kill is dropped
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("timesteps", 0) <= max_timesteps:
            kept.append(line)
    atomic_write(path, "".join(line + "\n" for line in kept))


_CHECKPOINT_RE = re.compile(r"_(\d+)_steps\.zip$")


class RolloutCheckpointCallback(CheckpointCallback):
    """:class:`CheckpointCallback` that saves between rollouts, never in the middle of one.

    SB3's callback saves every ``save_freq`` env steps, which for PPO may fall inside a rollout
    whose data (and update) a resumed run would never see. This one saves at the start of a
    rollout (right after the previous update) once at least ``save_freq_timesteps`` timesteps
    passed since the last save, and once more when training ends, so resuming from the newest
    checkpoint repeats nothing and skips nothing. Files are written to a temp name and renamed,
    so a kill mid-save leaves no truncated checkpoint; only the newest ``keep_last`` are kept.

    A checkpoint is the package's own format (:func:`dus_agents.ppo.save_checkpoint`: tensors
    and JSON, never a pickle), recording the rows each ``Monitor`` CSV had at that moment, so a
    resume can drop the episodes a killed segment logged after it.

    Args:
        save_freq_timesteps: timesteps (all envs together) between checkpoints.
        save_path: folder of the checkpoints ``{name_prefix}_{timesteps}_steps.zip``.
        name_prefix: file name prefix.
        keep_last: how many checkpoints to keep (None: all).
        env_spec: the env spec recorded in the checkpoint (None: asked of the training env).
        monitor_dir: the folder of the training envs' ``Monitor`` CSVs (None: none recorded).
    """

    def __init__(self, save_freq_timesteps: int, save_path: str | os.PathLike,
                 name_prefix: str = "rl_model", keep_last: int | None = 3,
                 verbose: int = 0, env_spec: dict[str, Any] | None = None,
                 monitor_dir: str | os.PathLike | None = None) -> None:
        if save_freq_timesteps < 1:
            raise ValueError(f"save_freq_timesteps={save_freq_timesteps} must be >= 1")
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"keep_last={keep_last} must be >= 1 or None")
        super().__init__(save_freq=save_freq_timesteps, save_path=str(save_path),
                         name_prefix=name_prefix, verbose=verbose)
        self.keep_last = keep_last
        self.env_spec = env_spec
        self.monitor_dir = Path(monitor_dir) if monitor_dir is not None else None
        self._last_saved = -1

    def _on_training_start(self) -> None:
        self._last_saved = self.model.num_timesteps  # a resumed model is already saved there

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        self.num_timesteps = self.model.num_timesteps
        if self.num_timesteps - self._last_saved >= self.save_freq:
            self.save_now()

    def _on_training_end(self) -> None:
        self.num_timesteps = self.model.num_timesteps
        if self.num_timesteps != self._last_saved:
            self.save_now()

    def save_now(self) -> Path:
        from dus_agents.ppo import rng_states, save_checkpoint

        path = Path(self._checkpoint_path(extension="zip"))
        spec = self.env_spec or self.training_env.env_method("spec_dict", indices=[0])[0]
        save_checkpoint(self.model, path, spec, {"monitor_rows": monitor_rows(self.monitor_dir),
                                                 "rng": rng_states(self.training_env)})
        self._last_saved = self.num_timesteps
        if self.keep_last is not None:
            for old in list_checkpoints(self.save_path, self.name_prefix)[:-self.keep_last]:
                old.unlink(missing_ok=True)
        return path


MONITOR_SUFFIX = ".monitor.csv"
MONITOR_HEADER_LINES = 2
"""SB3's Monitor CSV starts with a ``#{json}`` line and the column line."""


def monitor_rows(folder: Path | None) -> dict[str, int]:
    """Episodes logged so far in each ``*.monitor.csv`` of ``folder`` (by file name)."""
    if folder is None or not folder.is_dir():
        return {}
    return {p.name: max(0, sum(1 for _ in p.open()) - MONITOR_HEADER_LINES)
            for p in sorted(folder.glob("*" + MONITOR_SUFFIX))}


def truncate_monitors(folder: Path, rows: dict[str, int]) -> None:
    """Cut each Monitor CSV back to its header and its first ``rows[name]`` episodes (what it
    held at the checkpoint a run resumes from); files the checkpoint did not know are cleared to
    their header. Keeps SB3's header, so ``stable_baselines3.common.monitor.load_results``
    still reads the folder."""
    for path in sorted(folder.glob("*" + MONITOR_SUFFIX)):
        lines = path.read_text().splitlines(keepends=True)
        keep = MONITOR_HEADER_LINES + rows.get(path.name, 0)
        complete = [line for line in lines[:keep] if line.endswith("\n")]
        atomic_write(path, "".join(complete))


def list_checkpoints(folder: str | os.PathLike, name_prefix: str = "rl_model") -> list[Path]:
    """Checkpoint files in ``folder``, oldest (fewest timesteps) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.glob(f"{name_prefix}_*_steps.zip"):
        match = _CHECKPOINT_RE.search(p.name)
        if match:
            found.append((int(match.group(1)), p))
    return [p for _, p in sorted(found)]


def checkpoint_timesteps(path: str | os.PathLike) -> int:
    """The timestep count in a checkpoint's file name."""
    match = _CHECKPOINT_RE.search(Path(path).name)
    if not match:
        raise ValueError(f"{str(path)!r} is not named like a checkpoint (*_<timesteps>_steps.zip)")
    return int(match.group(1))


def slice_returns(env: Any, policy: Any, pairs: list[tuple[str, int]]) -> list[float]:
    """One deterministic episode of ``policy`` per (task, episode seed) pair of a validation
    slice in a DUS-v1 ``env`` (paired reward): each episode's return, in the pairs' order."""
    returns = []
    for task, seed in pairs:
        obs, _ = env.reset(seed=seed, options={"task": task, "episode_seed": seed})
        total, done = 0.0, False
        while not done:
            action, _ = policy.predict(obs, deterministic=True)
            obs, reward, done, _, _ = env.step(action)
            total += float(reward)
        returns.append(total)
    return returns


class SelectionCallback(BaseCallback):
    """Model selection for ``dus-train --suite``: every ``eval_freq`` timesteps (between
    rollouts) and at the end, replay the current policy deterministically on a validation
    slice of ``(task, episode seed)`` pairs and keep the best one as ``best_policy.zip``.

    The slice's seeds are the suite's validation seeds, which no training episode uses, and its
    tasks are training tasks: held-out tasks and test data are never read. Each evaluation is
    appended to ``selection.jsonl``; each new best is also kept as ``best_policies/<timesteps>.zip``
    (a few kilobytes). A resumed run drops the evaluations after its checkpoint from both (they
    are redone) and puts back the best policy among those it keeps, so what it ships never
    comes from the discarded part of the run.

    Args:
        env: a DUS-v1 env over the suite (paired reward), used only for evaluation.
        pairs: the validation slice, ``(task name, episode seed)``.
        eval_freq: timesteps between evaluations.
        run_dir: the run directory (``best_policy.zip``, ``selection.jsonl``).
        env_spec: the spec recorded in ``best_policy.zip``.
    """

    def __init__(self, env: Any, pairs: list[tuple[str, int]], eval_freq: int,
                 run_dir: str | os.PathLike, env_spec: dict[str, Any], verbose: int = 0) -> None:
        super().__init__(verbose)
        if eval_freq < 1:
            raise ValueError(f"eval_freq={eval_freq} must be >= 1")
        self.env, self.pairs, self.eval_freq = env, list(pairs), eval_freq
        self.run_dir, self.env_spec = Path(run_dir), env_spec
        self.best_path = self.run_dir / "best_policy.zip"
        self.log_path = self.run_dir / "selection.jsonl"
        self.snapshots = self.run_dir / "best_policies"
        self.history: list[dict[str, Any]] = []
        for line in (self.log_path.read_text().splitlines() if self.log_path.is_file() else ()):
            try:
                self.history.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        self._last = -1

    @property
    def best(self) -> dict[str, Any] | None:
        return max(self.history, key=lambda r: r["mean_return"], default=None)

    def _on_training_start(self) -> None:
        now = self.model.num_timesteps
        kept = [r for r in self.history if r["timesteps"] <= now]
        dropped = len(self.history) - len(kept)
        if dropped:  # evaluations after the checkpoint are redone
            atomic_write(self.log_path, "".join(json.dumps(r) + "\n" for r in kept))
        for snapshot in self.snapshots.glob("*.zip") if self.snapshots.is_dir() else ():
            if snapshot.stem.isdigit() and int(snapshot.stem) > now:
                snapshot.unlink()
        self.history = kept
        best = self.best
        if best is not None:  # the best policy among the evaluations kept, and no other
            source = self.snapshots / f"{best['timesteps']}.zip"
            if source.is_file():
                atomic_write(self.best_path, source.read_bytes())
            elif dropped:  # a run from before the snapshots: its best may be a dropped one
                self.best_path.unlink(missing_ok=True)
        elif dropped:
            self.best_path.unlink(missing_ok=True)
        done = [r["timesteps"] for r in self.history]
        self._last = max(done) if done else -1

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self._last < 0 or self.model.num_timesteps - self._last >= self.eval_freq:
            self.evaluate()

    def _on_training_end(self) -> None:
        if self.model.num_timesteps != self._last:
            self.evaluate()

    def evaluate(self) -> dict[str, Any]:
        """Replay the current policy on the slice; record it; keep it if it is the best."""
        from dus_agents.ppo import PPOPolicy

        policy = PPOPolicy(self.model.policy, self.env_spec)
        returns = slice_returns(self.env, policy, self.pairs)
        record = {"timesteps": int(self.model.num_timesteps),
                  "mean_return": float(np.mean(returns)), "returns": returns}
        best = self.best
        if best is None or record["mean_return"] > best["mean_return"]:
            # saved before it is logged: a run killed in between never logs a best it lacks
            snapshot = self.snapshots / f"{record['timesteps']}.zip"
            self.snapshots.mkdir(parents=True, exist_ok=True)
            policy.save(snapshot, {"selected_at_timesteps": record["timesteps"],
                                   "validation_mean_paired_return": record["mean_return"],
                                   "validation_slice": [list(p) for p in self.pairs]})
            atomic_write(self.best_path, snapshot.read_bytes())
        self.history.append(record)
        append_jsonl(self.log_path, record)
        self.logger.record("dus/selection/mean_paired_return", record["mean_return"])
        self._last = record["timesteps"]
        return record

    def summary(self) -> dict[str, Any]:
        best = self.best
        return {"evaluations": len(self.history), "best": best,
                "curve": [[r["timesteps"], r["mean_return"]] for r in self.history]}
