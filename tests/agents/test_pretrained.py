"""The generalist shipped with the package: safe to load, true to its spec, usable everywhere."""

from __future__ import annotations

import json
import random
import zipfile

import numpy as np
import pytest
import torch

from dus_agents import make_controller
from dus_agents.artifact import read_header
from dus_agents.ppo import PPOPolicy, SampledPolicy
from dus_agents.registry import make_policy, pretrained_path
from dus_env.env_v1 import DUSEnvV1
from tests.conftest import run_script
from tests.support.rng import isolated_global_rng


def test_the_shipped_artefact_is_tensors_and_json_and_loads_through_the_safe_loader():
    path = pretrained_path()
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["dus_artifact.json", "policy.json", "policy.pt"]
        layout = json.loads(archive.read("policy.json"))
    assert layout["policy"] == "deepsets"
    policy = PPOPolicy.load(path)  # weights_only tensors + JSON, never unpickled
    header = read_header(path)
    assert policy.env_spec == header["env_spec"]
    assert header["env_spec"] == DUSEnvV1(suite="synthetic-mix").spec_dict()
    meta = header["metadata"]
    assert meta["args"]["suite"] == "synthetic-mix" and meta["timesteps"] > 0


@pytest.mark.parametrize("task", ["mix-heldout-00", "mix-heldout-01", "mix-heldout-02"])
def test_it_acts_on_two_three_and_four_modalities(task):
    env = DUSEnvV1(suite="synthetic-mix", split="heldout")
    policy = make_policy("pretrained", env)
    obs, info = env.reset(seed=0, options={"task": task})
    action, _ = policy.predict(obs, deterministic=True)
    assert action.shape == (4,) and 2 <= len(info["slots"]) <= 4
    env.step(action)


def test_in_a_plain_loop_for_any_modality_names():
    controller = make_controller(["audio", "video", "depth"], n_classes=6,
                                 total_iterations=100, policy="pretrained")
    assert controller.max_modalities == 4
    rng = np.random.default_rng(0)
    for _ in range(10):
        controller.observe_scores({m: float(rng.uniform(0.1, 0.9))
                                   for m in ("audio", "video", "depth")})
    assert set(controller.batch_sizes) == {"audio", "video", "depth"}


def _decisions(policy: str, seed: int) -> list[tuple[int, ...]]:
    controller = make_controller(["audio", "video", "depth"], n_classes=6,
                                 total_iterations=100, policy=policy, seed=seed)
    rng = np.random.default_rng(0)
    sizes = []
    for _ in range(100):
        controller.observe_scores({m: float(rng.uniform(0.1, 0.9))
                                   for m in ("audio", "video", "depth")})
        sizes.append(tuple(controller.batch_sizes.values()))
    return sizes


def test_sampled_pretrained_in_the_plain_loop_is_seeded_and_draws_no_global_numbers():
    """``sampled:SPEC`` works in make_controller as in dus-evaluate: the policy's actions are
    sampled with its own generator, seeded with ``seed``."""
    controller = make_controller(["a", "b"], 6, 100, "sampled:pretrained", seed=1)
    assert isinstance(controller.policy, SampledPolicy)
    with isolated_global_rng():
        np.random.seed(5), torch.manual_seed(5)  # (Python's random is only read)
        before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
        first = _decisions("sampled:pretrained", seed=1)
        assert random.getstate() == before[0]
        assert np.array_equal(np.random.get_state()[1], before[1])
        assert torch.equal(torch.get_rng_state(), before[2])
    assert _decisions("sampled:pretrained", seed=1) == first  # the same seed, the same run
    assert _decisions("sampled:pretrained", seed=2) != first
    assert _decisions("pretrained", seed=1) != first  # sampled, not the most likely action


@pytest.mark.parametrize("spec, match", [
    ("ppo:", r"policy spec 'ppo:' has no path after 'ppo:'; write ppo:PATH"),
    ("reinforce:", r"policy spec 'reinforce:' has no path after 'reinforce:'"),
    ("sampled:uniform", r"policy spec 'sampled:uniform': sampled: needs a PPO policy; valid "
                        r"forms: 'sampled:pretrained', 'sampled:ppo:PATH'"),
    ("sampled:ppo:", r"policy spec 'ppo:' has no path after 'ppo:'"),
    ("ppx:x.zip", r"policy kind='ppx' is not valid; valid choices: \['ppo', 'reinforce'\]"),
])
def test_the_plain_loop_reads_policy_strings_as_make_policy_does(spec, match):
    """One parser: an empty path is refused as such (not read as the current directory), in
    make_controller as in make_policy (dus-evaluate)."""
    with pytest.raises(ValueError, match=match) as loop:
        make_controller(["a", "b"], 6, 100, spec)
    with pytest.raises(ValueError, match=match) as evaluate:
        make_policy(spec, DUSEnvV1(suite="synthetic-mix"))
    assert type(loop.value) is type(evaluate.value) and str(loop.value) == str(evaluate.value)


def test_in_evaluate_and_in_the_plain_loop_example(tmp_path):
    out = tmp_path / "eval"
    run_script("evaluate.py", "--preset", "default", "--policies", "uniform,pretrained",
               "--seeds", "0", "--out-dir", str(out), "--quiet", "--probe-max-train", "500")
    summary = json.loads((out / "summary.json").read_text())
    assert {g["policy"] for g in summary["groups"]} == {"uniform", "pretrained"}
    proc = run_script("examples/plain_loop.py", "--policy", "pretrained", "--preset", "default",
                      "--print-every", "1000")
    assert "policy pretrained: samples consumed" in proc.stdout
