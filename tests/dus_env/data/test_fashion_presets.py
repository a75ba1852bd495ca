"""Fashion-MNIST wired into the package: the data config, ``make_dataset``, the ``small_cnn``
encoder and the ``fashion`` preset, on the tiny generated idx copy of test_fashion_mnist.py
(nothing reads the installed data)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dus_env.config import (
    DATA_CONFIGS,
    ENCODERS,
    EnvConfig,
    FashionMNISTConfig,
    ModelConfig,
    config_from_dict,
    config_to_dict,
    get_preset,
)
from dus_env.config import presets as presets_module
from dus_env.data import make_dataset
from dus_env.data import fashion_mnist as fm
from dus_env.env import DUSEnv
from dus_env.errors import DatasetError
from dus_env.models.conv import build_small_cnn
from tests.conftest import ROOT
from tests.support.fashion import (
    N_TEST,
    N_TRAIN,
    VAL,
    write_copy,
)

torch.set_num_threads(1)

# no test sees the machine's copy, the caller's env var or another test's cache
pytestmark = pytest.mark.usefixtures("fashion_isolated")

# sizes that fit the 200-train / 50-test fixture (the preset's max batch of 128 must fit)
FIT = {"n_train": N_TRAIN - VAL, "val_size": VAL, "n_test": N_TEST, "expect_canonical": False}




# ----------------------------------------------------------------------------- config
def test_config_is_a_registered_data_kind():
    assert DATA_CONFIGS["fashion_mnist"] is FashionMNISTConfig is fm.FashionMNISTConfig
    assert FashionMNISTConfig.reader == "dus_env.data.fashion_mnist:load_fashion_mnist"
    assert FashionMNISTConfig.cacheable is False
    assert FashionMNISTConfig().modalities == ("rotated", "noisy") == fm.MODALITIES
    assert issubclass(fm.IdxFormatError, DatasetError)
    assert issubclass(fm.IdxFormatError, ValueError)


def test_config_round_trips_through_dicts_and_json(root: Path):
    data = {"name": "fashion_mnist", "root": str(root), "n_train": 100, "val_size": 40,
            "n_test": 30, "rotation": 30, "noise": 0.25, "pairing": "same_image", "seed": 7,
            "expect_canonical": False}
    cfg = config_from_dict({"data": data})
    assert isinstance(cfg, EnvConfig) and isinstance(cfg.data, FashionMNISTConfig)
    assert cfg.data == FashionMNISTConfig(**data)
    assert type(cfg.data.rotation) is float and cfg.data.rotation == 30.0
    assert cfg.modalities == ("rotated", "noisy")
    as_json = json.loads(json.dumps(config_to_dict(cfg)))
    assert as_json["data"]["name"] == "fashion_mnist"
    assert config_from_dict(as_json) == cfg
    # only the name: every other field keeps its default
    assert config_from_dict({"data": {"name": "fashion_mnist"}}).data == FashionMNISTConfig()
    # over a preset of another kind, the data slice is replaced whole
    over = config_from_dict({"data": {"name": "fashion_mnist", "noise": 0.1}},
                            base=get_preset("tiny"))
    assert over.data == FashionMNISTConfig(noise=0.1)


BAD_VALUES = [
    ("name", "mnist", ValueError, "'fashion_mnist'"),
    ("root", "", ValueError, "empty"),
    ("root", 3, TypeError, "expected str"),
    ("n_train", "abc", TypeError, "expected int"),
    ("n_train", 5, ValueError, "[20, inf]"),
    ("n_train", 1.5, TypeError, "expected int"),
    ("val_size", None, TypeError, "expected int"),
    ("val_size", 19, ValueError, "[20, inf]"),
    ("n_test", True, TypeError, "expected int"),
    ("n_test", 0, ValueError, "[20, inf]"),
    ("rotation", "45", TypeError, "expected float"),
    ("rotation", 181, ValueError, "[0.0, 180.0]"),
    ("rotation", -1.0, ValueError, "[0.0, 180.0]"),
    ("noise", -0.5, ValueError, "[0.0, inf]"),
    ("noise", float("nan"), ValueError, "finite"),
    ("noise", [0.1], TypeError, "expected float"),
    ("pairing", "same-class", ValueError, "Did you mean 'same_class'?"),
    ("pairing", "x", ValueError, "['same_class', 'same_image']"),
    ("seed", -1, ValueError, "[0, inf]"),
    ("seed", "0", TypeError, "expected int"),
    ("expect_canonical", "yes", TypeError, "expected bool"),
    ("expect_canonical", 1, TypeError, "expected bool"),
]


def test_every_field_has_bad_values_below():
    assert {f for f, *_ in BAD_VALUES} == {f.name for f in dataclasses.fields(FashionMNISTConfig)}


@pytest.mark.parametrize("field,value,exc,part", BAD_VALUES)
def test_bad_values_fail_naming_the_field_and_value(field: str, value, exc: type, part: str):
    for build in (lambda: FashionMNISTConfig(**{field: value}),
                  lambda: config_from_dict({"data": {"name": "fashion_mnist", field: value}})):
        with pytest.raises(exc) as info:
            build()
        msg = str(info.value)
        assert f"data.{field}={value!r}" in msg, msg
        assert part in msg, msg


def test_a_path_root_is_kept_as_a_string(root: Path):
    cfg = FashionMNISTConfig(root=root)
    assert cfg.root == str(root)
    assert json.dumps(config_to_dict(EnvConfig(data=cfg)))


# ----------------------------------------------------------------------------- make_dataset
def test_make_dataset_reads_the_folder_given_as_data_root(root: Path):
    cfg = config_from_dict({"data": {"name": "fashion_mnist", "root": str(root), **FIT}}).data
    ds = make_dataset(cfg)
    assert isinstance(ds, fm.FashionMNISTDataset)
    assert ds.modalities == ("rotated", "noisy") and ds.n_classes == 10
    assert {s: len(ds.split(s)) for s in ("train", "val", "test")} == {
        "train": N_TRAIN - VAL, "val": VAL, "test": N_TEST}
    assert ds.input_shapes == {"rotated": (1, 28, 28), "noisy": (1, 28, 28)}
    # not cached by make_dataset (cacheable=False) but by the reader, keyed by file identity
    from dus_env import data as data_module

    assert cfg not in data_module._CACHE
    assert make_dataset(cfg) is ds and make_dataset(cfg, cache=False) is ds
    assert len(fm._CACHE) == 1


def test_make_dataset_errors_name_the_folder(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="data.root = .*nowhere: does not exist"):
        make_dataset(FashionMNISTConfig(root=str(missing)))
    small = write_copy(tmp_path / "small")
    with pytest.raises(DatasetError, match="official train split has 60000"):
        make_dataset(FashionMNISTConfig(root=str(small)))  # expect_canonical=True by default


# ----------------------------------------------------------------------------- encoder
def test_small_cnn_is_a_registered_encoder():
    assert ENCODERS["small_cnn"] == "dus_env.models.conv:build_small_cnn"
    assert ENCODERS.load("small_cnn") is build_small_cnn
    cfg = ModelConfig(encoder="small_cnn")
    assert cfg.encoder_for("rotated") == "small_cnn"
    assert ModelConfig(encoders=(("noisy", "small_cnn"),)).encoder_for("noisy") == "small_cnn"
    with pytest.raises(ValueError, match=r"model.encoder='small_cnm'.*Did you mean 'small_cnn'"):
        ModelConfig(encoder="small_cnm")


# ----------------------------------------------------------------------------- preset
def test_fashion_preset_settings():
    cfg = get_preset("fashion")
    data = cfg.data
    assert isinstance(data, FashionMNISTConfig)
    assert data.root is None and data.n_test is None and data.val_size == 5000
    assert data.n_train == presets_module.FASHION_N_TRAIN
    # the noise stays the reader's default until it is chosen on validation
    assert data.noise == presets_module.FASHION_NOISE == FashionMNISTConfig().noise
    assert (data.rotation, data.pairing, data.seed) == (45.0, "same_class", 0)
    assert cfg.model.encoder == "small_cnn" and cfg.model.encoders == ()
    assert cfg.model.weights == ()  # trained from scratch
    assert cfg.trainer.host == "joint"
    assert cfg.total_iterations == presets_module.FASHION_ITERATIONS
    assert cfg.iters_per_step == presets_module.FASHION_ITERS_PER_STEP
    assert cfg.sampler.max_batch_size <= data.n_train


def test_fashion_preset_env_resets_and_trains_on_the_fixture(root: Path):
    base = get_preset("fashion")
    env = DUSEnv(preset="fashion", config={"data": {"root": str(root), **FIT}})
    # only the data sizes (and the canonical-count check) differ from the preset
    assert env.config.replace(data=base.data) == base
    assert env.config.data == dataclasses.replace(base.data, root=str(root), **FIT)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["validation"]["n_samples"] == VAL
    model = env.trainer.model
    for m in env.modalities:
        convs = [x for x in model.encoders[m].modules() if isinstance(x, torch.nn.Conv2d)]
        assert [c.out_channels for c in convs] == [16, 32]
    before = [p.detach().clone() for p in model.parameters()]
    k = len(env.config.sampler.multipliers) - 1
    for action in (env.uniform_action, np.array([k, 0])):
        obs, reward, done, truncated, info = env.step(action)
        assert env.observation_space.contains(obs) and np.isfinite(reward)
        assert not done and not truncated and not info["diverged"]
        assert all(np.isfinite(v) for v in info["losses"].values())
    assert info["batch_sizes"]["rotated"] > info["batch_sizes"]["noisy"]
    assert info["iteration"] == 2 * env.config.iters_per_step
    changed = [not torch.equal(a, p.detach()) for a, p in zip(before, model.parameters())]
    assert all(changed)  # every weight, both CNNs and the heads, received gradients


def test_fashion_preset_needs_no_torch_to_build():
    code = ("import sys; import dus_env.config as c; cfg = c.get_preset('fashion'); "
            "c.ModelConfig(encoder='small_cnn'); "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if "
            "m.startswith('torch'))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_readme_preset_table_is_in_sync():
    proc = subprocess.run([sys.executable, "tools/sync_docs.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "| `fashion` |" in (Path(ROOT) / "README.md").read_text()


def test_both_checkers_on_the_fashion_preset_as_gym_make_builds_it(tmp_path: Path, monkeypatch):
    """The preset exactly as ``gym.make`` builds it (the official 60,000 / 10,000 counts it
    checks for), on a generated copy found through the env var as a user's would be."""
    import warnings

    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    import dus_env
    from dus_agents.base import make_dus_env

    monkeypatch.setenv(fm.ENV_VAR, str(write_copy(tmp_path / "fmnist", n_train=60000,
                                                  n_test=10000)))
    fm.clear_cache()
    try:
        env = make_dus_env(dus_env.ENV_ID, preset="fashion")
        assert env.unwrapped.config == get_preset("fashion")  # nothing changed for the test
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            gym_check_env(env.unwrapped)
            sb3_check_env(env.unwrapped, warn=True)
        assert [str(w.message) for w in records] == []
    finally:
        fm.clear_cache()
