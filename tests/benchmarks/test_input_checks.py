"""What every benchmark checks before it starts (benchmarks.common.parse): its presets and
that ``--out`` can be written, each a one-line error and exit status 2, no traceback."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from benchmarks import common
from tests.conftest import run_module

MODULES = ("overhead", "levers", "imbalance", "paired_reward", "ppo_rewards", "cost")


def _exit(module: str, argv: list[str], capsys) -> tuple[int, str]:
    main = importlib.import_module(f"benchmarks.{module}").main
    with pytest.raises(SystemExit) as exc:
        common.run(main, argv)
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize("module", MODULES)
def test_an_unknown_preset_is_one_line_naming_the_presets(module, capsys, tmp_path):
    code, err = _exit(module, ["--preset", "foo", "--out", str(tmp_path / "o.json")], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"python -m benchmarks.{module}: error: --preset='foo' is not valid; "
                          "valid choices: ['default', 'tiny'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["a directory", "under a file"])
def test_an_out_path_that_cannot_take_the_result_is_refused_before_the_run(case, capsys,
                                                                           tmp_path):
    (tmp_path / "file").write_text("keep")
    out = tmp_path if case == "a directory" else tmp_path / "file" / "o.json"
    code, err = _exit("overhead", ["--smoke", "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert ("is a directory; give a file path" if case == "a directory"
            else f"{str(tmp_path / 'file')!r} is a file, not a directory") in err
    assert (tmp_path / "file").read_text() == "keep"


def test_a_missing_out_folder_is_fine_and_left_for_the_run_to_make(tmp_path):
    args = common.parse(common.BenchArgs, ["--out", str(tmp_path / "new" / "o.json")])
    assert args.out.endswith("o.json") and not (tmp_path / "new").exists()


def test_cost_with_a_bad_preset_fails_before_its_training_subprocess(tmp_path: Path):
    """It used to die later in a CalledProcessError from the dus-train it starts."""
    proc = run_module("benchmarks.cost", "--preset", "foo", "--out", str(tmp_path / "c.json"),
                      check=False, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "--preset='foo' is not valid" in proc.stderr
