"""tools/reproduce_policy.py: retrain an artefact from its recorded flags, compare bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from dus_agents.artifact import read_artifact, tensor_bytes, tensors_from_bytes
from tests.conftest import ROOT

TOOL = ROOT / "tools" / "reproduce_policy.py"


def tool(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *argv], capture_output=True, text=True,
                          timeout=600, check=False)


def rewritten(src: Path, dst: Path, member: str, change) -> Path:
    """A copy of the artefact ``src`` with ``member``'s bytes passed through ``change``."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            new.writestr(name, change(data) if name == member else data)
    return dst


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train_agent.py"), "--suite", "tiny", "--total-timesteps",
         "48", "--eval-freq", "24", "--eval-tasks", "1", "--no-progress-bar", "--eval-episodes",
         "0", "--out-dir", str(out), "--run-name", "a"],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return out / "a" / "policy.zip"


def test_a_run_reproduces_bit_for_bit_from_its_recorded_flags(trained: Path,
                                                              tmp_path: Path) -> None:
    proc = tool("--policy", str(trained), "--out-dir", str(tmp_path / "again"), "--out",
                str(tmp_path / "report.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["identical"] and report["tensors"] >= 4 and report["max_abs_diff"] == 0
    assert report["members"] == ["policy.json", "policy.pt"]
    # the kernel path the artefact records was the one pinned
    assert report["cpu_capability"] == \
        read_artifact(trained, members=()).versions["torch_cpu_capability"].lower()
    # only the flags that differ from the defaults are passed (as a person types them)
    assert "--suite" in report["command"] and "--preset" not in report["command"]
    assert (tmp_path / "again" / "reproduced" / "policy.zip").is_file()


def test_a_changed_tensor_is_found_and_named(trained: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(trained) as archive:
        state = tensors_from_bytes(archive.read("policy.pt"), trained, "policy.pt")
    key = next(k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point())
    state[key] = state[key] + 0.25
    changed = rewritten(trained, tmp_path / "changed.zip", "policy.pt",
                        lambda _: tensor_bytes(state))
    proc = tool("--policy", str(changed), "--out", str(tmp_path / "report.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"policy.pt:{key}" in proc.stdout and "NOT identical" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert not report["identical"] and report["max_abs_diff"] == pytest.approx(0.25)


@pytest.mark.parametrize("argv, words", [
    (["--policy", "no/such.zip"], ["--policy='no/such.zip'", "does not exist"]),
    (["--cpu-capability", "sse9"], ["--cpu-capability='sse9'", "avx2", "recorded"]),
])
def test_bad_input_is_one_line(argv: list[str], words: list[str], tmp_path: Path) -> None:
    proc = tool(*argv, "--out", str(tmp_path / "report.json"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert all(w in proc.stderr for w in words) and "Traceback" not in proc.stderr
    assert not (tmp_path / "report.json").exists()


def test_an_artefact_without_recorded_flags_is_refused(trained: Path, tmp_path: Path) -> None:
    bare = rewritten(trained, tmp_path / "bare.zip", "dus_artifact.json",
                     lambda data: json.dumps({**json.loads(data), "metadata": {}}).encode())
    proc = tool("--policy", str(bare))
    assert proc.returncode == 2 and "records no training flags" in proc.stderr, proc.stderr
