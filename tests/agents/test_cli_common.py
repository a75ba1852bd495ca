"""The shared command-line toolkit: dataclass -> argparse, one-line usage errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from dus_agents.cli import common as cli
from dus_env.errors import UsageError


@dataclass
class Demo:
    name: str = "a"
    """The name."""
    count: int = 2
    """How many."""
    rate: float = 0.5
    """A rate."""
    flag: bool = False
    """Turn it on."""
    maybe: str | None = None
    """Optional."""
    pairs: list[str] = dataclasses.field(default_factory=list, metadata={"metavar": "K=V"})
    """Repeatable."""


def test_parser_has_one_flag_per_field_with_its_docstring():
    parser = cli.build_parser(Demo, prog="demo")
    text = parser.format_help()
    for flag, doc in (("--name", "The name."), ("--count", "How many."), ("--flag", "Turn it on"),
                      ("--no-flag", ""), ("--pairs K=V", "Repeatable.")):
        assert flag in text and doc in text
    args, given = cli.parse(Demo, ["--count", "5", "--flag", "--pairs", "a=1", "--pairs", "b=2"],
                            parser)
    assert args == Demo(count=5, flag=True, pairs=["a=1", "b=2"])
    assert given == {"count", "flag", "pairs"}
    assert cli.parse(Demo, [], parser)[0] == Demo()


def test_usage_errors_are_one_line_and_exit_2(capsys):
    def main(argv):
        raise UsageError("--count=-1 is out of range;\nvalid range: [0, inf]")

    with pytest.raises(SystemExit) as exc:
        cli.run(main, [], prog="demo")
    assert exc.value.code == 2
    assert capsys.readouterr().err == "demo: error: --count=-1 is out of range; valid range: [0, inf]\n"
    assert cli.run(lambda argv: 0, []) == 0


def test_helpers():
    assert cli.comma_list("--x", "a, b,a,,") == ["a", "b"]
    with pytest.raises(UsageError, match="--x=' , ' is empty"):
        cli.comma_list("--x", " , ")
    with pytest.raises(UsageError, match=r"--n=0 is out of range; valid range: \[1, 4\]"):
        cli.check_at_least("--n", 0, 1, 4)
    with pytest.raises(UsageError, match=r"install the extra: pip install 'dus-env\[x\]'"):
        cli.require("no_such_module_here", "x", "this")


def test_a_failed_run_is_one_line_and_exit_1(capsys):
    def main(argv):
        raise cli.Failed(cli.write_failure("d", OSError(28, "No space left on device"),
                                           "its 2 finished checkpoint(s) are kept",
                                           "rerun with --resume d"))

    with pytest.raises(SystemExit) as exc:
        cli.run(main, [], prog="demo")
    assert exc.value.code == 1
    assert capsys.readouterr().err == (
        "demo: error: could not write the results in d ([Errno 28] No space left on device); "
        "its 2 finished checkpoint(s) are kept; free space and rerun with --resume d\n")
    assert cli.is_disk_error(OSError(28, "full")) and not cli.is_disk_error(BrokenPipeError())


def test_writable_checks_leave_nothing_behind(tmp_path):
    cli.check_writable_dir("--out-dir", tmp_path / "a" / "b")  # could be made: fine
    cli.check_output_file("--out", tmp_path / "c" / "o.json")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match=r"--out-dir='.*/f/x' cannot be written \(.*\); choose "
                                         r"another --out-dir"):
        cli.check_writable_dir("--out-dir", tmp_path / "f" / "x")
    with pytest.raises(UsageError, match="is a directory; give a file path"):
        cli.check_output_file("--out", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_set_pairs_are_checked_against_the_preset():
    assert cli.check_set(["trainer.lr=0.1"], "tiny") == {"trainer": {"lr": 0.1}}
    with pytest.raises(UsageError, match=r"^--set: trainer=5 has type int; expected a dict"):
        cli.check_set(["trainer=5"], "tiny")
