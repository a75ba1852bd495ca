"""The generalist shipped with the package: safe to load, true to its spec, usable everywhere."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from dus_agents import make_controller
from dus_agents.artifact import read_header
from dus_agents.ppo import PPOPolicy
from dus_agents.registry import make_policy, pretrained_path
from dus_env.env_v1 import DUSEnvV1
from tests.conftest import run_script


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


def test_in_evaluate_and_in_the_plain_loop_example(tmp_path):
    out = tmp_path / "eval"
    run_script("evaluate.py", "--preset", "default", "--policies", "uniform,pretrained",
               "--seeds", "0", "--out-dir", str(out), "--quiet", "--probe-max-train", "500")
    summary = json.loads((out / "summary.json").read_text())
    assert {g["policy"] for g in summary["groups"]} == {"uniform", "pretrained"}
    proc = run_script("examples/plain_loop.py", "--policy", "pretrained", "--preset", "default",
                      "--print-every", "1000")
    assert "policy pretrained: samples consumed" in proc.stdout
