"""Frozen, validated configuration for every component, and the presets.

* :mod:`~dus_env.config.components`: the component configs and :class:`EnvConfig`;
* :mod:`~dus_env.config.data`: one config per dataset kind (:data:`DATA_CONFIGS`);
* :mod:`~dus_env.config.presets`: :data:`PRESETS`, built on first use;
* :mod:`~dus_env.config.io`: dicts, JSON and command-line overrides.

Importing this package imports no torch: names are checked against the registries of
:mod:`dus_env.registry`, which hold import paths.
"""

from dus_env.config.components import (
    DEVICE_TYPES,
    EnvConfig,
    MLAConfig,
    ModelConfig,
    MonitorConfig,
    OGMGEConfig,
    RewardConfig,
    SamplerConfig,
    TrainerConfig,
    check_device,
)
from dus_env.config.data import (
    DATA_CONFIGS,
    FASHION_MNIST_PAIRINGS,
    FASHION_MNIST_VIEWS,
    MFEAT_VIEWS,
    ON_ERROR,
    CremadConfig,
    DataConfig,
    FashionMNISTConfig,
    FeaturesConfig,
    FileDatasetConfig,
    KineticsSoundsConfig,
    MfeatConfig,
    NVGestureConfig,
    SarcasmConfig,
    SyntheticConfig,
    Twitter2015Config,
    register_dataset,
)
from dus_env.config.io import config_from_dict, config_to_dict, overrides_from_pairs
from dus_env.config.presets import (
    PAPER_EPOCHS,
    PRESETS,
    get_preset,
    preset_help,
    preset_table,
    register_preset,
)
from dus_env.registry import ENCODERS, HOSTS, REWARDS

__all__ = [
    "DATA_CONFIGS", "DEVICE_TYPES", "ENCODERS", "FASHION_MNIST_PAIRINGS",
    "FASHION_MNIST_VIEWS", "HOSTS", "MFEAT_VIEWS", "ON_ERROR", "PAPER_EPOCHS", "PRESETS",
    "REWARDS", "CremadConfig", "DataConfig", "EnvConfig", "FashionMNISTConfig",
    "FeaturesConfig", "FileDatasetConfig", "KineticsSoundsConfig", "MLAConfig", "MfeatConfig",
    "ModelConfig", "MonitorConfig", "NVGestureConfig", "OGMGEConfig", "RewardConfig",
    "SamplerConfig", "SarcasmConfig", "SyntheticConfig", "TrainerConfig", "Twitter2015Config",
    "check_device", "config_from_dict", "config_to_dict", "get_preset", "overrides_from_pairs",
    "preset_help", "preset_table", "register_dataset", "register_preset",
]
