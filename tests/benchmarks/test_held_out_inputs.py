"""What benchmarks.generalization and benchmarks.oracle check before any run: the policies
named, every file the policies read (loaded, and an oracle never searched on a test seed), and
under --resume that the earlier file was run with the same flags, the same input files and no
task this run would drop. Each problem is one line and exit status 2, with no output written
and an earlier --out left as it was."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from benchmarks import common
from dus_env.slots import V1_MULTIPLIERS

UNIFORM = V1_MULTIPLIERS.index(1.0)
TASK = ("--tasks", "tiny:tiny-3b", "--synthetic-seeds", "2")


def _exit(module: str, argv: list[str], capsys) -> tuple[int, str]:
    main = importlib.import_module(f"benchmarks.{module}").main
    try:
        code = common.run(main, argv)
    except SystemExit as exc:  # a usage error
        code = exc.code
    return code, capsys.readouterr().err


def _oracle(path: Path, seeds: list[int], index: int = UNIFORM) -> Path:
    """A benchmarks.oracle result for tiny-3b: one schedule, searched on ``seeds``."""
    path.write_text(json.dumps({"search_seeds": seeds, "tasks": {
        "tiny-3b": {"suite": "tiny", "schedule": [[index] * 3]}}}))
    return path


def _refused(module: str, argv: list[str], capsys, out: Path, *, before: str | None = None
             ) -> str:
    code, err = _exit(module, [*argv, "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "Traceback" not in err
    if before is None:
        assert not out.exists()
    else:
        assert out.read_text() == before
    return err


@pytest.mark.parametrize("policies, message", [
    ("uniform,heuristc", "--policies='heuristc' is not valid; valid choices: ['uniform', "
                         "'heuristic', 'ppo-default', 'generalist', 'oracle']"),
    ("heuristic,generalist", "--policies='heuristic,generalist' lacks 'uniform': every gain "
                             "is measured against it"),
])
def test_policies_are_checked(policies, message, capsys, tmp_path):
    err = _refused("generalization", [*TASK, "--policies", policies], capsys,
                   tmp_path / "g.json")
    assert message in err


@pytest.mark.parametrize("flag", ["--oracle", "--generalist", "--ppo-default"])
def test_a_missing_policy_file_is_refused_naming_its_flag(flag, capsys, tmp_path):
    policy = flag.removeprefix("--")
    err = _refused("generalization", [*TASK, "--policies", f"uniform,{policy}", flag,
                                      str(tmp_path / "nope")], capsys, tmp_path / "g.json")
    assert f"{flag}='{tmp_path / 'nope'}'" in err and "No such file" in err


def test_an_oracle_searched_on_a_test_seed_is_refused(capsys, tmp_path):
    oracle = _oracle(tmp_path / "oracle.json", [1, 500])
    err = _refused("generalization", [*TASK, "--policies", "uniform,oracle", "--oracle",
                                      str(oracle)], capsys, tmp_path / "g.json")
    assert f"--oracle='{oracle}' was searched on seeds [1] that are test seeds" in err
    assert "reported on the runs it was tuned on" in err


def test_a_generalist_that_cannot_act_in_a_task_is_refused_naming_it(capsys, tmp_path):
    from stable_baselines3 import PPO

    import dus_env
    from dus_agents.base import make_dus_env
    from dus_agents.ppo import PPOPolicy, quiet_logger

    env = make_dus_env(dus_env.ENV_ID, preset="tiny")  # a DUS-v0 policy: not a generalist
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=4, n_epochs=1, device="cpu", seed=0)
    model.set_logger(quiet_logger())
    v0 = PPOPolicy(model.policy, env.unwrapped.spec_dict()).save(tmp_path / "v0.zip")
    err = _refused("generalization", [*TASK, "--policies", "uniform,generalist",
                                      "--generalist", str(v0)], capsys, tmp_path / "g.json")
    assert f"--generalist='{v0}' cannot act in task 'tiny-3b'" in err and "DUS-v0" in err


def test_resume_refuses_changed_input_files_other_tasks_and_unrecorded_settings(
        capsys, tmp_path):
    oracle = _oracle(tmp_path / "oracle.json", [500])
    out = tmp_path / "g.json"
    argv = [*TASK, "--policies", "uniform,oracle", "--oracle", str(oracle), "--out", str(out)]
    assert _exit("generalization", argv, capsys)[0] == 0
    first = json.loads(out.read_text())
    assert list(first["settings"]["inputs"]) == [f"--oracle={oracle}"]
    # uniform's own schedule replayed as the oracle: the same runs, exactly 0 apart
    assert first["tasks"]["tiny-3b"]["policies"]["oracle"]["vs_uniform"]["mean"] == 0.0
    before = out.read_text()
    assert _exit("generalization", [*argv, "--resume"], capsys)[0] == 0  # nothing changed
    assert json.loads(out.read_text())["resumed_tasks"] == ["tiny-3b"]
    before = out.read_text()
    _oracle(oracle, [500], index=UNIFORM + 4)  # the oracle file rerun: its numbers are stale
    err = _refused("generalization", [*argv[:-2], "--resume"], capsys, out, before=before)
    assert "--resume" in err and "other settings or input files (differing: inputs" in err
    _oracle(oracle, [500])
    err = _refused("generalization", ["--tasks", "tiny:tiny-2", *argv[2:-2], "--resume"],
                   capsys, out, before=before)
    assert "holds tasks that --tasks='tiny:tiny-2' does not list (tiny-3b)" in err
    legacy = dict(json.loads(before))
    legacy.pop("settings")
    out.write_text(json.dumps(legacy))
    before = out.read_text()
    err = _refused("generalization", [*argv[:-2], "--resume"], capsys, out, before=before)
    assert "does not record the settings and input files" in err


def test_oracle_resume_refuses_a_file_holding_tasks_this_run_would_drop(capsys, tmp_path):
    out = tmp_path / "oracle.json"
    argv = ["--tasks", "tiny:tiny-2", "--trials", "1", "--search-seeds", "500"]
    assert _exit("oracle", [*argv, "--out", str(out)], capsys)[0] == 0
    before = out.read_text()
    err = _refused("oracle", ["--tasks", "tiny:tiny-3b", *argv[2:], "--resume"], capsys, out,
                   before=before)
    assert "holds tasks that --tasks='tiny:tiny-3b' does not list (tiny-2)" in err


def test_oracle_refuses_a_negative_search_seed(capsys, tmp_path):
    err = _refused("oracle", ["--tasks", "tiny:tiny-2", "--search-seeds=-1"], capsys,
                   tmp_path / "o.json")
    assert "--search-seeds: -1 is negative" in err


def test_overlapping_task_items_resolve_to_each_task_once():
    from benchmarks.oracle import resolve_tasks
    from dus_env.suites import get_suite

    names = [t.name for _, t in resolve_tasks("mfeat-views:heldout,real:heldout")]
    assert len(names) == len(set(names))
    assert set(names) == {t.name for t in get_suite("real").split("heldout")}
    assert [t.name for _, t in resolve_tasks("tiny:heldout,tiny:tiny-3b")] == \
        [t.name for t in get_suite("tiny").split("heldout")]
