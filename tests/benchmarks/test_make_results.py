"""benchmarks.make_results: what it refuses to render, before it writes anything."""

from __future__ import annotations

import json

import pytest

from benchmarks import common, make_results

PAGE = "previous page\n<!-- section:paired:start -->x<!-- section:paired:end -->\n"


def _exit(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        common.run(make_results.main, argv)
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize("update", [False, True])
@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_a_results_path_that_is_no_folder_is_refused_and_the_page_kept(update, kind, capsys,
                                                                       tmp_path):
    page = tmp_path / "docs" / "RESULTS.md"
    page.parent.mkdir()
    page.write_text(PAGE)
    results = tmp_path / "no_such_results"
    if kind == "a file":
        results.write_text("{}")
    code, err = _exit(["--results", str(results), "--out", str(page), "--notes", "",
                       *(["--update"] if update else [])], capsys)
    why = "does not exist" if kind == "missing" else "is not a directory"
    assert code == 2 and err.count("\n") == 1, err
    assert f"error: --results={str(results)!r} {why}" in err
    assert page.read_text() == PAGE
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["docs", "RESULTS.md", *(["no_such_results"] if kind == "a file" else [])])


def _partial_fit() -> dict:
    """What benchmarks.fit_heuristic leaves when stopped after two of its 24 trials."""
    from benchmarks.fit_heuristic import SPACE
    from dus_agents.evaluation.stats import t_interval
    from dus_env.sampler import HEURISTIC_DEFAULTS

    trials = [{"number": n, "settings": {**HEURISTIC_DEFAULTS, "gamma": 1.0 + n}, "value": v,
               "interval": t_interval([v, v + 1.0]).as_dict(), "returns": [v, v + 1.0]}
              for n, v in ((0, 0.0), (1, 0.5))]
    return {"command": ["/a/benchmarks/fit_heuristic.py", "--suite", "tiny"], "suite": "tiny",
            "reward": "paired_best", "tasks": ["t1"], "seeds_per_task": 2, "pairs": 2,
            "space": {k: list(v) for k, v in SPACE.items()}, "defaults": HEURISTIC_DEFAULTS,
            "complete": False, "trials_planned": 24, "trials": trials,
            "best": {k: trials[1][k] for k in ("number", "settings", "value", "interval")},
            "seconds": 12.0}


def test_update_refuses_an_interrupted_fit_and_writes_nothing(capsys, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "fit_heuristic_best.json").write_text(json.dumps(_partial_fit()))
    page = tmp_path / "RESULTS.md"
    page.write_text(PAGE)
    code, err = _exit(["--update", "--results", str(results), "--out", str(page)], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert (f"--results={str(results)!r}: fit_heuristic_best.json is the partial record of an "
            "interrupted benchmarks.fit_heuristic run (2 of 24 trials)") in err
    assert page.read_text() == PAGE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RESULTS.md", "results"]
    # the same search, finished, is rendered
    (results / "fit_heuristic_best.json").write_text(json.dumps({**_partial_fit(),
                                                                 "complete": True}))
    assert common.run(make_results.main, ["--update", "--results", str(results), "--out",
                                          str(page)]) == 0
    assert "2 trials on 2 pairs" in page.read_text()
