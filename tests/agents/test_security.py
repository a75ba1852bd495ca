"""Files from strangers never run code: every entry point that reads a policy or checkpoint.

Each crafted file carries a payload that, if it were ever unpickled, would create a marker
file. The payloads are live (``test_the_payloads_are_live`` runs them the unsafe way, in a
subprocess); every entry point below must leave the marker absent, and where it refuses the
file, its error names the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import pytest

import dus_env
from dus_agents.artifact import ARTIFACT_ENTRY, artifact_header, read_artifact
from dus_agents.ppo import PPOPolicy
from dus_agents.registry import make_policy
from dus_agents.reinforce import ReinforceAgent
from dus_env.errors import ArtifactError
from tests.conftest import ROOT, run_script
from tests.support import security_payloads as sp

TINY = "tiny"


@pytest.fixture
def env():
    return gym.make(dus_env.ENV_ID, preset=TINY)


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def _with_header(zip_path: Path, env, format_version: int = 1) -> Path:
    """Copy a valid ``dus_artifact.json`` (this env's spec, kind ppo) into a zip."""
    header = {**artifact_header("ppo", env.unwrapped.spec_dict()),
              "format_version": format_version}
    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr(ARTIFACT_ENTRY, json.dumps(header))
    return zip_path


def _sb3_artefact(tmp_path: Path, env, marker: Path, format_version: int = 1) -> Path:
    """The attack of the issue: an SB3 zip with a payload in ``data`` and a valid dus-env
    header copied in (format 1: what PPOPolicy.save wrote before; format 2: today's header)."""
    path = sp.evil_sb3_zip(tmp_path / f"EVIL_v{format_version}.zip", marker,
                           entry="observation_space")
    return _with_header(path, env, format_version)


def _format2_artefact(tmp_path: Path, env, marker: Path, member: str = "policy.pt") -> Path:
    """A format-2 PPO artefact whose tensor member is a malicious pickle."""
    good = PPOPolicy(_tiny_policy(env), env.unwrapped.spec_dict()).save(tmp_path / "good.zip")
    bad = tmp_path / "EVIL2.zip"
    sp.evil_torch_file(tmp_path / "evil.pt", marker)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = (tmp_path / "evil.pt").read_bytes() if name == member else src.read(name)
            dst.writestr(name, data)
    return bad


def _tiny_policy(env):
    from stable_baselines3 import PPO

    return PPO("MlpPolicy", env, n_steps=8, batch_size=8, device="cpu").policy


def test_the_payloads_are_live(tmp_path, marker):
    """The unsafe way does run them, so the entry points' passes below mean something."""
    evil = sp.evil_sb3_zip(tmp_path / "e.zip", marker)
    code = ("from stable_baselines3 import PPO; import sys\n"
            f"try:\n    PPO.load({str(evil)!r}, device='cpu')\nexcept Exception:\n    pass")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    assert not sp.marker_absent(marker)


def test_ppo_load_refuses_an_sb3_zip_artefact(tmp_path, env, marker):
    path = _sb3_artefact(tmp_path, env, marker)
    with pytest.raises(ArtifactError, match="format-1 PPO artefact") as err:
        PPOPolicy.load(path, env)
    assert str(path) in str(err.value)
    with pytest.raises(ArtifactError):
        make_policy(f"ppo:{path}", env)
    current = _sb3_artefact(tmp_path, env, marker, format_version=2)
    with pytest.raises(ArtifactError, match="has no member 'policy.json'") as err:
        PPOPolicy.load(current, env)
    assert str(current) in str(err.value)
    assert sp.marker_absent(marker)


@pytest.mark.parametrize("member", ["policy.pt"])
def test_ppo_load_refuses_a_pickle_in_a_tensor_member(tmp_path, env, marker, member):
    path = _format2_artefact(tmp_path, env, marker, member)
    with pytest.raises(ArtifactError, match="holds something other than tensors") as err:
        PPOPolicy.load(path, env)
    assert str(path) in str(err.value)
    assert sp.marker_absent(marker)


def test_reinforce_load_refuses_a_pickle(tmp_path, env, marker):
    good = ReinforceAgent.for_env(env).save(tmp_path / "r.zip")
    bad = tmp_path / "EVIL_R.zip"
    sp.evil_torch_file(tmp_path / "evil.pt", marker)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, (tmp_path / "evil.pt").read_bytes() if name == "optimizer.pt"
                         else src.read(name))
    with pytest.raises(ArtifactError, match="optimizer.pt") as err:
        ReinforceAgent.load(bad, env)
    assert str(bad) in str(err.value)
    assert sp.marker_absent(marker)


def test_from_sb3_reads_a_model_zip_as_data(tmp_path, env, marker):
    # a payload in the pickled entries is never executed: the network still loads
    evil = tmp_path / "zoo.zip"
    model = sp.save_tiny_ppo(tmp_path / "plain.zip", env=env.unwrapped)
    del model
    sp._replace_member(tmp_path / "plain.zip", "data", json.dumps(_evil_data(
        tmp_path / "plain.zip", marker)).encode())
    (tmp_path / "plain.zip").rename(evil)
    policy = PPOPolicy.from_sb3(evil, env)
    policy.predict(env.observation_space.sample(), deterministic=True)
    # a payload in the weights is refused, naming the file
    bad = sp.evil_sb3_policy_pth_zip(tmp_path / "zoo2.zip", marker)
    with pytest.raises(ArtifactError) as err:
        PPOPolicy.from_sb3(bad, env)
    assert str(bad) in str(err.value)
    assert sp.marker_absent(marker)


def _evil_data(path: Path, marker: Path) -> dict:
    """The ``data`` member of an SB3 zip with a payload in its ``lr_schedule`` entry."""
    import base64

    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    data["lr_schedule"][":serialized:"] = base64.b64encode(sp.payload_bytes(marker)).decode()
    return data


def test_evaluate_cli_refuses_without_running_it(tmp_path, env, marker):
    for path in (_sb3_artefact(tmp_path, env, marker), _format2_artefact(tmp_path, env, marker)):
        out = tmp_path / f"eval_{path.stem}"
        proc = run_script("evaluate.py", "--preset", TINY, "--policies", f"uniform,ppo:{path}",
                          "--seeds", "0", "--out-dir", str(out), "--quiet", check=False)
        assert proc.returncode == 2, proc.stderr
        assert str(path) in proc.stderr and "Traceback" not in proc.stderr
        assert not out.exists()
    assert sp.marker_absent(marker)


def test_plain_loop_example_refuses_without_running_it(tmp_path, env, marker):
    path = _sb3_artefact(tmp_path, env, marker)
    proc = run_script("examples/plain_loop.py", "--preset", TINY, "--policy", f"ppo:{path}",
                      check=False)
    assert proc.returncode != 0
    assert str(path) in proc.stderr
    assert sp.marker_absent(marker)


def test_resume_skips_a_planted_checkpoint_without_running_it(tmp_path, env, marker):
    proc = run_script("train_agent.py", "--preset", TINY, "--n-envs", "1", "--no-progress-bar",
                      "--eval-episodes", "0", "--total-timesteps", "24", "--checkpoint-freq",
                      "24", "--out-dir", str(tmp_path), "--run-name", "run", timeout=300)
    checkpoints = tmp_path / "run" / "checkpoints"
    planted = checkpoints / "rl_model_999999_steps.zip"  # newer than any real one
    _sb3_artefact(tmp_path, env, marker).rename(planted)
    proc = run_script("train_agent.py", "--resume", str(tmp_path / "run"), "--total-timesteps",
                      "48", timeout=300)
    assert f"skipping checkpoint {planted}" in proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_from"].endswith("rl_model_24_steps.zip")
    assert sp.marker_absent(marker)


def test_only_the_members_asked_for_are_read_and_sizes_are_bounded(tmp_path, env):
    good = PPOPolicy(_tiny_policy(env), env.unwrapped.spec_dict()).save(tmp_path / "good.zip")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        with dst.open("junk.bin", "w", force_zip64=True) as handle:  # 300 MiB of zeros
            chunk = bytes(2**20)
            for _ in range(300):
                handle.write(chunk)
    assert bomb.stat().st_size < 2 * 2**20
    policy = PPOPolicy.load(bomb, env)  # the junk member is never read
    assert policy.env_spec == env.unwrapped.spec_dict()
    with pytest.raises(ArtifactError, match=r"member 'junk.bin' is 314572800 bytes .* over the "
                                            r"limit of 268435456 bytes; refused without"):
        read_artifact(bomb)  # asked for every member: the oversized one is refused unread
    weights = tmp_path / "w.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(weights, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            if name != "policy.pt":
                dst.writestr(name, src.read(name))
        with dst.open("policy.pt", "w", force_zip64=True) as handle:
            for _ in range(300):
                handle.write(bytes(2**20))
    with pytest.raises(ArtifactError, match=r"'policy.pt' is 314572800 bytes") as err:
        PPOPolicy.load(weights, env)
    assert str(weights) in str(err.value)


def test_a_saved_ppo_artefact_is_only_json_and_tensors(tmp_path, env):
    path = PPOPolicy(_tiny_policy(env), env.unwrapped.spec_dict()).save(tmp_path / "p.zip")
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == [ARTIFACT_ENTRY, "policy.json", "policy.pt"]
        layout = json.loads(archive.read("policy.json"))
    assert layout["policy"] == "mlp" and layout["action_space"]["nvec"] == [5, 5]
