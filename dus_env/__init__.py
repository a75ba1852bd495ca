"""dus-env: Data-aware Unimodal Sampling (DUS) for rebalanced multimodal learning.

``import dus_env`` registers the Gymnasium environments ``dus_env/DUS-v0`` (a fixed set of
modalities) and ``dus_env/DUS-v1`` (any modality count, task suites); string entry points, so
importing stays cheap. The library never prints, never seeds global random generators and
never imports stable-baselines3.

Paper symbol -> code name: n_b -> ``base_batch_size``; n_t^j -> ``batch_sizes[modality]``;
s_t^j -> ``batch_scores[modality]``; S_t^j -> ``cumulative_scores[modality]``;
t, T -> ``iteration``, ``total_iterations``.
"""

from __future__ import annotations

from dus_env.config import (
    PRESETS,
    EnvConfig,
    MfeatConfig,
    MLAConfig,
    ModelConfig,
    MonitorConfig,
    OGMGEConfig,
    RewardConfig,
    SamplerConfig,
    SyntheticConfig,
    TrainerConfig,
    config_from_dict,
    config_to_dict,
    get_preset,
)

__version__ = "0.1.0"
ENV_ID = "dus_env/DUS-v0"
ENV_V1_ID = "dus_env/DUS-v1"
ENV_VERSION = 0
"""Bumped with the env id whenever observation, action or reward meaning changes."""


def _register_envs() -> None:
    import warnings

    from gymnasium.envs.registration import register, registry

    # Gymnasium reads DUS-v1 as a newer version of DUS-v0 and says at every make("DUS-v0") that
    # it is out of date; it is another env, and DUS-v0 stays supported. Only that note is muted.
    warnings.filterwarnings("ignore", message=r".*dus_env/DUS-v0 is out of date",
                            category=DeprecationWarning)

    if ENV_ID not in registry:
        register(id=ENV_ID, entry_point="dus_env.env:DUSEnv")
    if ENV_V1_ID not in registry:
        register(id=ENV_V1_ID, entry_point="dus_env.env_v1:DUSEnvV1")


_register_envs()


def __getattr__(name: str):
    # Heavy modules (torch models, the env) load on first use, not on import.
    if name == "DUSEnv":
        from dus_env.env import DUSEnv

        return DUSEnv
    if name == "DUSEnvV1":
        from dus_env.env_v1 import DUSEnvV1

        return DUSEnvV1
    raise AttributeError(f"module 'dus_env' has no attribute {name!r}")


__all__ = [
    "ENV_ID",
    "ENV_V1_ID",
    "ENV_VERSION",
    "DUSEnvV1",
    "PRESETS",
    "DUSEnv",
    "EnvConfig",
    "MLAConfig",
    "MfeatConfig",
    "ModelConfig",
    "MonitorConfig",
    "OGMGEConfig",
    "RewardConfig",
    "SamplerConfig",
    "SyntheticConfig",
    "TrainerConfig",
    "config_from_dict",
    "config_to_dict",
    "get_preset",
]
