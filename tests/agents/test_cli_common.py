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
