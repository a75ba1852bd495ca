"""benchmarks.paired_reward: its list flags are checked before any episode runs."""

from __future__ import annotations

import pytest

from benchmarks import common, paired_reward

SKEW_RANGE = "valid: integers in [0, 4] (indices into sampler.multipliers="


@pytest.fixture
def no_work(monkeypatch):
    """Any episode, reset or thread set-up fails the test: the checks must come first."""
    def started(*_, **__):
        raise AssertionError("work started before the flags were checked")

    for name in ("returns_and_cost", "reset_costs"):
        monkeypatch.setattr(paired_reward, name, started)
    monkeypatch.setattr(common, "setup", started)


@pytest.mark.parametrize("flags, message", [
    (["--suites", "bogus"], "--suites='bogus' is not valid; valid choices: ['synthetic-mix', "
                            "'mfeat-views', 'real', 'mixed', 'tiny']"),
    (["--suites", "tiny,bogus"], "--suites='bogus' is not valid; valid choices:"),
    (["--skew", "0,x"], f"--skew='0,x': 'x' is not an integer; {SKEW_RANGE}"),
    (["--skew", "0,99"], f"--skew='0,99': 99 is out of range; {SKEW_RANGE}"),
    (["--skew", "0,-1"], f"--skew='0,-1': -1 is out of range; {SKEW_RANGE}"),
    (["--skew", "0"], "--skew='0' needs one grid index per modality of preset 'tiny' "
                      "(2: ['strong', 'weak'])"),
    (["--val-subsets", "abc"], "--val-subsets='abc': 'abc' is not an integer; valid: a comma "
                               "list of integers >= 0"),
    (["--val-subsets", "500,-3"], "--val-subsets='500,-3': -3 is out of range; valid: a comma "
                                  "list of integers >= 0"),
])
def test_bad_list_flags_are_one_line_errors_before_any_episode(flags, message, no_work,
                                                               capsys, tmp_path):
    out = tmp_path / "pr.json"
    with pytest.raises(SystemExit) as exc:
        common.run(paired_reward.main, ["--preset", "tiny", "--seeds", "2", "--resets", "1",
                                        "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("python -m benchmarks.paired_reward: error: ") and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_the_checked_lists_keep_a_repeated_skew_index():
    args = common.parse(paired_reward.Args, ["--preset", "tiny", "--skew", "4,4",
                                             "--val-subsets", "500, 0", "--suites", "tiny"])
    assert paired_reward.check_lists(args) == ((4, 4), [500, 0], ["tiny"])
