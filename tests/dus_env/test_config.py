"""Bad input: each a clear error naming the field, the value and the valid choices."""

import numpy as np
import pytest

from dus_env.config import (
    MfeatConfig,
    MonitorConfig,
    RewardConfig,
    SamplerConfig,
    SyntheticConfig,
    TrainerConfig,
    config_from_dict,
    get_preset,
)
from dus_env.data import make_dataset
from dus_env.env import DUSEnv


def test_unknown_dataset_name_with_suggestion():
    with pytest.raises(ValueError, match=r"data.name='mfet'.*valid choices.*'mfeat'.*Did you mean 'mfeat'"):
        config_from_dict({"data": {"name": "mfet"}})
    with pytest.raises(ValueError, match=r"data.name='nope'.*valid choices"):
        make_dataset(type("C", (), {"name": "nope"})())


def test_unknown_host_reward_preset_names():
    with pytest.raises(ValueError, match=r"trainer.host='jiont'.*\['joint', 'mla', 'ogm_ge', 'unimodal'\].*Did you mean 'joint'"):
        TrainerConfig(host="jiont")
    with pytest.raises(ValueError, match=r"reward.name='val_delt'.*Did you mean 'val_delta'"):
        RewardConfig(name="val_delt")
    with pytest.raises(ValueError, match=r"preset='tiyn'.*Did you mean 'tiny'"):
        get_preset("tiyn")


def test_view_names_and_views_not_in_mfeat():
    with pytest.raises(ValueError, match=r"data.views='bogus'.*valid choices.*'fou'"):
        MfeatConfig(views=("fou", "bogus"))
    with pytest.raises(ValueError, match=r"data.views='pxi'.*Did you mean 'pix'"):
        MfeatConfig(views=("fou", "pxi"))
    with pytest.raises(ValueError, match="at least 2 views"):
        MfeatConfig(views=("fou",))


def test_batch_size_bounds_inverted_or_zero():
    with pytest.raises(ValueError, match="min_batch_size=64, base_batch_size=32, max_batch_size=128"):
        SamplerConfig(base_batch_size=32, min_batch_size=64, max_batch_size=128)
    with pytest.raises(ValueError, match="min_batch_size=0"):
        SamplerConfig(min_batch_size=0)
    with pytest.raises(ValueError, match=r"sampler.base_batch_size=0 is out of range"):
        SamplerConfig(base_batch_size=0)


def test_fewer_than_two_modalities_and_history_length():
    with pytest.raises(ValueError, match="at least 2 modalities"):
        SyntheticConfig(modalities=("only",), clusters_per_class=(1,), separation=(1.0,),
                        confused_pairs=(0,))
    with pytest.raises(ValueError, match=r"monitor.history_length=0 is out of range; valid range: \[1, inf\]"):
        MonitorConfig(history_length=0)


def test_config_with_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown config key 'sampler.base_bach_size'.*Did you mean 'base_batch_size'"):
        config_from_dict({"sampler": {"base_bach_size": 8}})
    with pytest.raises(ValueError, match=r"unknown config key 'totl_iterations'.*Did you mean 'total_iterations'"):
        DUSEnv(config={"totl_iterations": 10}, preset="tiny")
    with pytest.raises(TypeError):
        SamplerConfig(bogus=1)


def test_iteration_budget_validation():
    with pytest.raises(ValueError, match="must be a multiple of iters_per_step"):
        get_preset("tiny").replace(total_iterations=61)


def test_overrides_from_pairs_nests_parses_and_rejects_bad_pairs():
    from dus_env.config import config_from_dict, get_preset, overrides_from_pairs

    got = overrides_from_pairs(["reward.name=discrepancy", "sampler.multipliers=[0.5,1,2]",
                                "trainer.lr=0.1", "data.root=/some/where"])
    assert got == {"reward": {"name": "discrepancy"}, "sampler": {"multipliers": [0.5, 1, 2]},
                   "trainer": {"lr": 0.1}, "data": {"root": "/some/where"}}
    for bad in ("reward", "=x", "reward..name=x"):
        with pytest.raises(ValueError, match="expected KEY=VALUE"):
            overrides_from_pairs([bad])
    with pytest.raises(ValueError, match="already set"):
        overrides_from_pairs(["reward=1", "reward.name=x"])
    with pytest.raises(ValueError, match="Did you mean 'trainer'"):
        config_from_dict(overrides_from_pairs(["trainr.lr=1"]), base=get_preset("tiny"))


# ----------------------------------------------------------------------------- types (issue 12)
@pytest.mark.parametrize("overrides,error,message", [
    ({"data": {"n_train": "abc"}}, TypeError, "data.n_train='abc' has type str; expected int"),
    ({"data": {"n_train": 1000.5}}, TypeError, "data.n_train=1000.5 has type float; expected int"),
    ({"data": {"n_train": True}}, TypeError, "data.n_train=True has type bool; expected int"),
    ({"model": {"hidden_dims": [32.5]}}, TypeError,
     r"model.hidden_dims\[0\]=32.5 has type float; expected int"),
    ({"device": "quantum"}, ValueError, "device='quantum' is not a torch device"),
    ({"data": {"modalities": "ab"}}, TypeError,
     "data.modalities='ab' has type str; expected a list of str"),
    ({"trainer": {"lr": float("inf")}}, ValueError, "trainer.lr=inf must be a finite number"),
    ({"reward": {"scale": float("nan")}}, ValueError, "reward.scale=nan must be a finite number"),
    ({"sampler": {"multipliers": [0.5, float("inf")]}}, ValueError,
     r"sampler.multipliers\[1\]=inf must be a finite number"),
    ({"trainer": {"optimizer": "lbfgs"}}, ValueError,
     r"trainer.optimizer='lbfgs' is not valid; valid choices: \['sgd', 'adam'\]"),
    ({"monitor": 5}, TypeError, "monitor=5 has type int; expected a dict"),
])
def test_wrong_types_fail_at_construction_naming_the_field(overrides, error, message):
    with pytest.raises(error, match=message):
        config_from_dict(overrides, base=get_preset("tiny"))


def test_batch_sizes_must_fit_the_train_split_when_the_env_builds_its_data():
    from dus_env.env import DUSEnv

    with pytest.raises(ValueError, match=r"sampler.base_batch_size=1000000000 is out of range"):
        config_from_dict({"sampler": {"base_batch_size": 10**9, "max_batch_size": 10**9}},
                         base=get_preset("tiny"))
    with pytest.raises(ValueError, match=r"sampler.max_batch_size=600 exceeds the train split's "
                                         r"512 samples; valid range: \[16, 512\]"):
        DUSEnv(preset="tiny", config={"sampler": {"max_batch_size": 600}})


def test_numpy_values_are_accepted_as_the_python_ones():
    cfg = config_from_dict({"data": {"n_train": np.int64(600)},
                            "trainer": {"lr": np.float32(0.5)}}, base=get_preset("tiny"))
    assert type(cfg.data.n_train) is int and cfg.data.n_train == 600
    assert type(cfg.trainer.lr) is float


def test_reset_takes_a_numpy_integer_seed():
    from dus_env.env import DUSEnv

    env = DUSEnv(preset="tiny")
    a, _ = env.reset(seed=np.int64(5))
    b, _ = env.reset(seed=5)
    np.testing.assert_array_equal(a, b)
