"""Bad input: each a clear error naming the field, the value and the valid choices."""

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
