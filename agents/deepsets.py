"""A permutation-equivariant actor-critic for DUS-v1 (DeepSets), as an SB3 policy.

One network is shared by every modality slot, so its weights do not depend on how many
modalities a task has, and permuting the slots permutes the actions:

* each slot's row (its own features, :mod:`dus_env.slots`) and the global features go through
  the same encoder ``phi`` to a slot embedding ``h_j``;
* the context ``c`` is the mean of the embeddings of the *present* slots (absent ones are
  masked out of the pooling);
* each slot's action logits come from the same head ``rho([h_j, c])``; an absent slot's
  distribution puts all its mass on the uniform index, so it adds nothing to the action's
  log-probability or entropy (its index is ignored by the env anyway);
* the value is ``v([c, globals])``, on the pooled rows;
* optionally (``anchor``) the policy is a correction to DUS-H: with ``k_H`` the grid index
  DUS-H picks for a slot from the same observation, the logit of index ``k`` is
  ``-strength * |k - k_H| + rho_{k - k_H}``: a fixed prior centred on DUS-H plus a learned
  logit per *offset* from DUS-H's choice (``rho`` has ``2K - 1`` outputs, offsets ``-(K-1)``
  to ``K-1``), so "one grid step more than DUS-H" is one learned number, whatever index DUS-H
  picked. The learned logits start near 0, so a fresh anchored policy *is* DUS-H (its
  deterministic action is DUS-H's; it explores the steps next to it). DUS-H is symmetric in
  the modalities, so the policy stays permutation-equivariant.

:class:`DeepSetsPolicy` subclasses SB3's ``ActorCriticPolicy`` and plugs into ``PPO`` as the
policy class (``PPO(DeepSetsPolicy, env, policy_kwargs={...})``). It is saved as weights plus
JSON (:func:`dus_agents.ppo.policy_layout` calls :meth:`DeepSetsPolicy.dus_layout`) and
rebuilt from that JSON, never unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from dus_agents.artifact import global_random_kept
from dus_agents.sb3_files import ACTIVATIONS, check_widths
from dus_env.slots import GLOBAL_PARTS, SlotLayout

with global_random_kept():  # the first import of stable_baselines3 loads rich, which draws
    from stable_baselines3.common.distributions import MultiCategoricalDistribution
    from stable_baselines3.common.policies import ActorCriticPolicy

MASKED_LOGIT = -1e9
"""Logit of every non-uniform index of an absent slot (its probability underflows to 0)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    """Raise ``ValueError`` naming ``settings.<name>`` unless ``value`` is an integer in
    ``[low, high]``."""
    if not _is_int(value) or value < low or (high is not None and value > high):
        valid = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"settings.{name}={value!r} is not valid; expected an integer {valid}")


def _mlp(width_in: int, widths: tuple[int, ...], width_out: int | None,
         activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(width_in, width), activation()]
        width_in = width
    if width_out is not None:
        layers.append(nn.Linear(width_in, width_out))
    return nn.Sequential(*layers)


class DeepSetsPolicy(ActorCriticPolicy):
    """The DUS-v1 actor-critic shared across modality slots.

    Args:
        observation_space, action_space, lr_schedule: as for SB3 policies (the DUS-v1 spaces).
        history_length: H of the env's layout (the row size is ``2 H + 3``).
        uniform_index: the grid index of uniform sampling (an absent slot's only action).
        hidden: widths of the slot encoder ``phi`` (its last width is the embedding size).
        head: hidden widths of the per-slot action head and of the value head.
        activation: one of ``tanh``, ``relu``, ``elu``, ``leaky_relu``, ``gelu``, ``silu``.
        anchor: None, or the DUS-H prior on the logits (:func:`heuristic_anchor` builds it):
            ``{"rule": "heuristic", "strength": s, "multipliers": [...], "gamma": ..,
            "warmup": .., "min_multiplier": .., "max_multiplier": ..}``.
    """

    def __init__(self, observation_space: gym.spaces.Box, action_space: gym.spaces.MultiDiscrete,
                 lr_schedule: Any, *, history_length: int, uniform_index: int,
                 hidden: tuple[int, ...] = (64, 64), head: tuple[int, ...] = (64,),
                 activation: str = "tanh", anchor: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not valid; valid choices: "
                             f"{list(ACTIVATIONS)}")
        if not isinstance(action_space, gym.spaces.MultiDiscrete) or \
                len(set(np.asarray(action_space.nvec).ravel())) != 1:
            raise ValueError(f"action_space={action_space} must be MultiDiscrete([K] * slots)")
        nvec = np.asarray(action_space.nvec)
        hidden = check_widths("settings.hidden", hidden, 1)
        head = check_widths("settings.head", head)
        _check_int("history_length", history_length, 1)
        _check_int("uniform_index", uniform_index, 0, int(nvec[0]) - 1)
        self.slot_layout = SlotLayout(len(nvec), history_length, "gap", int(nvec[0]))
        if self.slot_layout.size != int(np.prod(observation_space.shape)):
            raise ValueError(
                f"observation_space has {int(np.prod(observation_space.shape))} values; a "
                f"DUS-v1 layout of {len(nvec)} slots and H={history_length} has "
                f"{self.slot_layout.size}")
        self.history_length, self.uniform_index = int(history_length), int(uniform_index)
        self.hidden, self.head = hidden, head
        self.activation = activation
        self.anchor = check_anchor(anchor, int(nvec[0]))
        kwargs.setdefault("ortho_init", False)
        super().__init__(observation_space, action_space, lr_schedule, net_arch=[],
                         activation_fn=ACTIVATIONS[activation], **kwargs)

    # ------------------------------------------------------------------ networks
    def _build(self, lr_schedule: Any) -> None:
        act = ACTIVATIONS[self.activation]
        layout = self.slot_layout
        g, f, k = layout.n_global, layout.row_size, layout.n_actions
        embed = self.hidden[-1]
        self.phi = _mlp(f + g, self.hidden, None, act)
        self.rho = _mlp(2 * embed, self.head, k if self.anchor is None else 2 * k - 1, act)
        self.value_head = _mlp(embed + g, self.head, 1, act)
        with torch.no_grad():  # start near the uniform distribution over the grid
            self.rho[-1].weight.mul_(0.01)
            self.rho[-1].bias.zero_()
        self.action_dist = MultiCategoricalDistribution(list(self.action_space.nvec))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1),
                                              **self.optimizer_kwargs)

    def _split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(globals (B, G), rows (B, N, F), present mask (B, N))."""
        layout = self.slot_layout
        obs = obs.float().reshape(obs.shape[0], -1)
        glob = obs[:, : layout.n_global]
        rows = obs[:, layout.n_global:].reshape(obs.shape[0], layout.max_modalities,
                                                layout.row_size)
        return glob, rows, rows[..., -1] > 0.5

    def _embed(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                 torch.Tensor]:
        glob, rows, present = self._split(obs)
        n = rows.shape[1]
        h = self.phi(torch.cat([rows, glob[:, None, :].expand(-1, n, -1)], dim=-1))
        weight = present.float()[..., None]
        # summed in sorted order, so the context is bit for bit the same whatever the slot
        # order (a plain sum rounds differently when the rows are permuted)
        total = torch.sort(h * weight, dim=1).values.sum(dim=1)
        context = total / weight.sum(dim=1).clamp_min(1.0)
        return glob, h, context, present

    def heuristic_indices(self, obs: torch.Tensor) -> torch.Tensor:
        """The grid index DUS-H (the anchor's settings) picks for each slot, ``(B, N)``: the
        rule of ``dus_agents.heuristic.HeuristicPolicy`` itself
        (:func:`dus_env.sampler.inverse_score_multipliers`), uniform during the warm-up and
        for absent slots. A fixed prior: no gradient flows through it."""
        from dus_env.sampler import inverse_score_multipliers, nearest_grid_indices

        if self.anchor is None:
            raise ValueError("this policy has no anchor")
        a = self.anchor
        glob, rows, present = (t.detach().cpu().numpy() for t in self._split(obs))
        requested = inverse_score_multipliers(
            rows[..., self.history_length - 1], present, gamma=a["gamma"],
            min_multiplier=a["min_multiplier"], max_multiplier=a["max_multiplier"])
        index = nearest_grid_indices(requested, a["multipliers"])
        index[(glob[:, 0] < a["warmup"])[:, None] | ~present] = self.uniform_index
        return torch.as_tensor(index, device=obs.device)

    def _anchored(self, offset_logits: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Per-index logits from the learned per-offset ones ``(B, N, 2K - 1)``: the prior
        ``-strength * |k - k_H|`` plus the learned logit of offset ``k - k_H``."""
        k = self.slot_layout.n_actions
        index = self.heuristic_indices(obs)
        offsets = torch.arange(k, device=index.device)[None, None, :] - index[..., None]
        learned = torch.gather(offset_logits, -1, offsets + (k - 1))
        return learned - float(self.anchor["strength"]) * offsets.abs().float()

    def _logits(self, h: torch.Tensor, context: torch.Tensor, present: torch.Tensor,
                obs: torch.Tensor | None = None) -> torch.Tensor:
        n = h.shape[1]
        logits = self.rho(torch.cat([h, context[:, None, :].expand(-1, n, -1)], dim=-1))
        if self.anchor is not None:
            assert obs is not None
            logits = self._anchored(logits, obs)
        absent = torch.full_like(logits, MASKED_LOGIT)
        absent[..., self.uniform_index] = 0.0
        return torch.where(present[..., None], logits, absent)  # (B, N, K)

    def _distribution_and_value(self, obs: torch.Tensor):
        glob, h, context, present = self._embed(obs)
        logits = self._logits(h, context, present, obs)
        distribution = self.action_dist.proba_distribution(
            action_logits=logits.reshape(logits.shape[0], -1))
        value = self.value_head(torch.cat([context, glob], dim=-1))
        return distribution, value

    # ------------------------------------------------------------------ SB3 interface
    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        distribution, values = self._distribution_and_value(obs)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        distribution, values = self._distribution_and_value(obs)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: torch.Tensor):
        return self._distribution_and_value(obs)[0]

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self._distribution_and_value(obs)[1]

    def action_logits(self, obs: torch.Tensor) -> torch.Tensor:
        """Per-slot logits, shape ``(B, max_modalities, K)`` (tests, diagnostics)."""
        _, h, context, present = self._embed(obs)
        return self._logits(h, context, present, obs)

    # ------------------------------------------------------------------ files
    def dus_layout(self) -> dict[str, Any]:
        """The JSON that rebuilds this network (spaces are added by the saver)."""
        settings = {"history_length": self.history_length, "uniform_index": self.uniform_index,
                    "hidden": list(self.hidden), "head": list(self.head),
                    "activation": self.activation}
        if self.anchor is not None:  # policies without one keep the layout they always had
            settings["anchor"] = dict(self.anchor)
        return {"policy": "deepsets", "settings": settings}

    @classmethod
    def from_layout(cls, observation_space: gym.spaces.Box,
                    action_space: gym.spaces.MultiDiscrete,
                    layout: Mapping[str, Any]) -> DeepSetsPolicy:
        s = dict(layout["settings"])
        allowed = {"history_length", "uniform_index", "hidden", "head", "activation", "anchor"}
        if set(s) - allowed:
            raise ValueError(f"unknown DeepSets settings {sorted(set(s) - allowed)}; valid: "
                             f"{sorted(allowed)}")
        missing = sorted(allowed - {"anchor"} - set(s))
        if missing:
            raise ValueError(f"DeepSets settings lack {missing}; needed: "
                             f"{sorted(allowed - {'anchor'})}")
        for name in ("hidden", "head"):
            if not isinstance(s[name], list):
                raise ValueError(f"settings.{name}={s[name]!r} is not valid; expected a list of "
                                 "positive integer layer widths, e.g. [64, 64]")
        return cls(observation_space, action_space, lambda _: 0.0,
                   history_length=s["history_length"], uniform_index=s["uniform_index"],
                   hidden=tuple(s["hidden"]), head=tuple(s["head"]),
                   activation=s["activation"], anchor=s.get("anchor"))


ANCHORS: tuple[str, ...] = ("none", "heuristic")
"""Priors a DeepSets policy's logits may start from (``dus-train --anchor``)."""
ANCHOR_FIELDS: tuple[str, ...] = ("rule", "strength", "multipliers", "gamma", "warmup",
                                  "min_multiplier", "max_multiplier")


def heuristic_anchor(multipliers: Any, strength: float = 1.0) -> dict[str, Any]:
    """The DUS-H anchor of :class:`DeepSetsPolicy` on the grid ``multipliers``, with DUS-H's
    defaults (:data:`dus_env.sampler.HEURISTIC_DEFAULTS`); ``strength``: the prior's logit
    drop per grid step away from DUS-H's index (1: DUS-H's own index has about 46% of the mass
    on the 17-value grid, each neighbour 17%)."""
    from dus_env.sampler import HEURISTIC_DEFAULTS

    return {"rule": "heuristic", "strength": float(strength),
            "multipliers": [float(m) for m in multipliers], **HEURISTIC_DEFAULTS}


def check_anchor(anchor: Mapping[str, Any] | None, n_actions: int) -> dict[str, Any] | None:
    """``anchor`` checked (fields, rule, a grid of ``n_actions`` positive values, a strength
    >= 0), as plain JSON values; None stays None."""
    if anchor is None:
        return None
    if not isinstance(anchor, Mapping) or set(anchor) != set(ANCHOR_FIELDS):
        got = sorted(anchor) if isinstance(anchor, Mapping) else type(anchor).__name__
        raise ValueError(f"anchor={got!r} must be a mapping with exactly the fields "
                         f"{list(ANCHOR_FIELDS)}")
    if anchor["rule"] != "heuristic":
        raise ValueError(f"anchor.rule={anchor['rule']!r} is not valid; valid choices: "
                         "['heuristic']")
    grid = [float(m) for m in anchor["multipliers"]]
    if len(grid) != n_actions or min(grid) <= 0:
        raise ValueError(f"anchor.multipliers has {len(grid)} values (min {min(grid, default=0)})"
                         f"; the action grid needs {n_actions} positive values")
    out = {"rule": "heuristic", "multipliers": grid}
    for name in ("strength", "gamma", "warmup", "min_multiplier", "max_multiplier"):
        value = float(anchor[name])
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"anchor.{name}={anchor[name]!r} must be a finite number >= 0")
        out[name] = value
    return out


def imitate(policy: DeepSetsPolicy, observations: np.ndarray, actions: np.ndarray, *,
            epochs: int = 30, batch_size: int = 256, learning_rate: float = 1e-3,
            seed: int = 0) -> list[float]:
    """Fit the policy's action head to ``actions`` (behaviour cloning): cross-entropy of each
    present slot's logits against its action index; absent slots do not count. Used to start
    PPO from a hand-written rule (DUS-H) instead of from uniform. Returns the mean loss of
    each epoch. Randomness: a private generator seeded with ``seed``."""
    obs = torch.as_tensor(observations, dtype=torch.float32)
    act = torch.as_tensor(actions, dtype=torch.long)
    _, _, present = policy._split(obs)
    optimizer = torch.optim.Adam([p for name, p in policy.named_parameters()
                                  if not name.startswith("value_head")], lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = torch.randperm(len(obs), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(obs), batch_size):
            idx = order[start:start + batch_size]
            logits = policy.action_logits(obs[idx])  # (B, N, K)
            mask = present[idx]
            loss = nn.functional.cross_entropy(logits[mask], act[idx][mask])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        losses.append(total / max(count, 1))
    policy.set_training_mode(False)
    return losses


def deepsets_kwargs(env: Any, **overrides: Any) -> dict[str, Any]:
    """``policy_kwargs`` of :class:`DeepSetsPolicy` for a DUS-v1 env (wrapped or vectorised)."""
    from dus_agents.base import unwrap_dus

    base = unwrap_dus(env)
    layout = base.layout
    if not isinstance(layout, SlotLayout):
        raise ValueError("the DeepSets policy needs a DUS-v1 env (dus_env/DUS-v1)")
    from dus_env.sampler import uniform_index

    kwargs = {"history_length": layout.history_length,
              "uniform_index": uniform_index(base.config.sampler.multipliers)}
    anchor = overrides.pop("anchor", "none")
    if anchor not in ANCHORS:
        raise ValueError(f"anchor={anchor!r} is not valid; valid choices: {list(ANCHORS)}")
    strength = float(overrides.pop("anchor_strength", 1.0))
    if anchor == "heuristic":
        kwargs["anchor"] = heuristic_anchor(base.config.sampler.multipliers, strength)
    kwargs.update(overrides)
    return kwargs


__all__ = ["ANCHORS", "DeepSetsPolicy", "GLOBAL_PARTS", "check_anchor", "deepsets_kwargs",
           "heuristic_anchor"]
