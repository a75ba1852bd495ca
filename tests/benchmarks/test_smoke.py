"""The evidence benchmarks' --smoke modes run in seconds and write outputs that parse.

CI never runs the full benchmarks (an hour on 2 cores); these check that each one runs end
to end on the tiny preset (``python -m benchmarks.NAME --smoke``), that its JSON has the
promised structure (benchmarks/README.md), and that ``benchmarks.make_results`` renders a
RESULTS page from those outputs. Nothing here asserts a wall-clock time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_module


def _run(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m benchmarks.<module> args...`` from the repository root; must exit 0."""
    return run_module(f"benchmarks.{module}", *args, timeout=timeout)


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory) -> Path:
    """One results/ tree from the smoke modes of quality, levers and cost."""
    results = tmp_path_factory.mktemp("results")
    assert "smoke ok" in _run("quality", "--smoke", "--out-dir",
                              str(results / "quality")).stdout
    assert "smoke ok" in _run("levers", "--smoke", "--out",
                              str(results / "levers" / "tiny_joint.json")).stdout
    assert "smoke ok" in _run("cost", "--smoke", "--out",
                              str(results / "cost" / "cost.json")).stdout
    return results


def test_quality_smoke_json(smoke_results: Path) -> None:
    q = json.loads((smoke_results / "quality" / "quality.json").read_text())
    assert q["smoke"] is True and q["machine"]["torch"]
    labels = [d["label"] for d in q["datasets"]]
    assert labels[0] == "synthetic-tiny" and labels[-1] == "synthetic-tiny-base_sum"
    assert any(lab.startswith("mfeat-") for lab in labels)
    assert any(lab.startswith("mfeat3-") for lab in labels)
    assert set(q["views"]["pairs"]) == {"strong_weak", "middling"}
    for d in q["datasets"]:
        mods = d["modalities"]
        assert d["weak"] in mods and d["alone"]["n"] == len(d["seeds"]) == 2
        policies = {c["policy"] for c in d["cells"]}
        if d["kind"] == "synthetic_variant":  # the base_sum lever: DUS-H against uniform only
            assert policies == {"uniform", "heuristic"}
            assert d["overrides"] == {"trainer": {"loss_reduction": "base_sum"}}
            continue
        assert {"uniform", "heuristic", "reinforce"} <= policies
        # the synthetic-trained PPO replays on its own preset and transfers to an mfeat pair
        # (same M and H in smoke mode); the three-view set has M = 3, so it cannot
        assert ("ppo" in policies) == (len(mods) == 2), (d["label"], policies)
        totals = set()
        for c in d["cells"]:
            m = c["metrics"]
            for key in ("accuracy", "macro_f1", "map", *[f"probe_{x}" for x in mods],
                        *[f"acc_{x}" for x in mods]):
                assert 0.0 <= m[key]["mean"] <= 1.0, (key, m[key])
            totals.add(round(sum(m[f"samples_{x}"]["mean"] for x in mods)))
            if c["policy"] != "uniform":
                assert c["vs_uniform"]["accuracy"]["n"] == 2
        assert len(totals) == 1, totals  # equal sample budget across policies
    three = next(d for d in q["datasets"] if d["label"].startswith("mfeat3-"))
    assert three["sweep"]["transfer"]["possible"] is False
    assert "n_modalities" in three["sweep"]["transfer"]["reason"]


def test_levers_and_cost_smoke_json(smoke_results: Path) -> None:
    lev = json.loads((smoke_results / "levers" / "tiny_joint.json").read_text())
    assert set(lev["summary"]) == {"mean/uniform", "mean/heuristic", "mean/alone"}
    assert "vs_uniform" in lev["summary"]["mean/heuristic"]
    cost = json.loads((smoke_results / "cost" / "cost.json").read_text())
    assert cost["ppo_time"]["checkpoints"], "no checkpoint was evaluated"
    for c in cost["ppo_time"]["checkpoints"]:
        assert c["elapsed_s"] >= 0 and isinstance(c["beats_uniform"], bool)
    assert cost["steps"]["ratio_2_over_1"]["median"] > 0
    assert cost["steps"]["steady_ratio_2_over_1"]["median"] > 0
    assert len(cost["memory"]["peak_mb"]) == cost["memory"]["episodes"] == 5
    assert cost["env_scaling"]["ratio_2_over_1"]["median"] > 0
    assert cost["memory"]["peak_mb_final"] >= cost["memory"]["peak_mb_after_first"] > 0


def test_make_results_renders_from_smoke_outputs(smoke_results: Path, tmp_path: Path) -> None:
    (smoke_results / "overhead.json").write_text(json.dumps(
        _run("overhead", "--smoke", "--out", str(tmp_path / "o.json")) and
        json.loads((tmp_path / "o.json").read_text())))
    out = tmp_path / "docs" / "RESULTS.md"
    _run("make_results", "--results", str(smoke_results), "--out", str(out),
         "--notes", str(tmp_path / "no_notes.md"))
    text = out.read_text()
    for heading in ("## Targets on the synthetic", "## Headline", "## All cells",
                    "## Why: validation-only lever screens", "## Cost", "PPO time to beat",
                    "Env steps per second", "**Memory**", "Env overhead"):
        assert heading in text, heading
    assert "| joint | heuristic |" in text
    pngs = list((tmp_path / "docs" / "results").glob("*.png"))
    assert pngs and all(f"]({'results/' + p.name})" in text for p in pngs)


# ----------------------------------------------------------------------------- DUS-v1 work
@pytest.fixture(scope="module")
def v1_results(tmp_path_factory) -> Path:
    """The smoke outputs of the DUS-v1 benchmarks, in one results/ tree."""
    results = tmp_path_factory.mktemp("v1_results")
    scratch = tmp_path_factory.mktemp("tmpdir")  # the benchmarks' temporary folders
    for module, name in (("paired_reward", "paired_reward.json"), ("oracle", "oracle.json"),
                         ("fashion", "fashion.json"), ("fashion_weights", "fashion_weights.json")):
        proc = run_module(f"benchmarks.{module}", "--smoke", "--out", str(results / name),
                          env={"TMPDIR": str(scratch)}, timeout=300)
        assert "smoke ok" in proc.stdout
        # none of the benchmark's own left behind (torch may keep its compile cache there)
        assert [p.name for p in scratch.glob("dus_*")] == [], module
    assert "smoke ok" in _run("generalization", "--smoke", "--oracle",
                              str(results / "oracle.json"), "--policies",
                              "uniform,heuristic,generalist,oracle", "--out",
                              str(results / "generalization.json")).stdout
    return results


def test_v1_smoke_jsons_have_their_documented_keys(v1_results: Path) -> None:
    paired = json.loads((v1_results / "paired_reward.json").read_text())
    entry = paired["rewards"]["returns"]["heuristic"]
    assert set(entry) >= {"val_delta", "paired", "std_ratio_val_delta_over_paired"}
    assert paired["rewards"]["returns"]["uniform"]["paired"]["mean"] == 0.0  # by construction
    assert set(paired["reset"]["tiny"]) >= {"cold", "warm", "speedup_cold_over_warm"}
    oracle = json.loads((v1_results / "oracle.json").read_text())
    task = oracle["tasks"]["tiny-3b"]
    assert len(task["schedule"]) == oracle["phases"] and len(task["trial_values"]) == 3
    assert task["validation_mean_paired_return"] >= task["trial_values"][0]  # never below uniform
    general = json.loads((v1_results / "generalization.json").read_text())
    assert set(general["tasks"]["tiny-3b"]["policies"]) == {"uniform", "heuristic", "generalist",
                                                            "oracle"}
    assert "oracle_share" in general["across_tasks"]
    assert (v1_results / "generalization.png").is_file()
    fashion = json.loads((v1_results / "fashion.json").read_text())
    assert set(fashion) >= {"noise", "imbalance", "lever", "policies", "cost", "markdown"}
    weights = json.loads((v1_results / "fashion_weights.json").read_text())
    (cell,) = weights["cells"]
    assert (cell["unimodal_weight"], cell["fusion_weight"]) == (0.1, 1.0)
    assert weights["seeds"] == [100, 101] and cell["gap_points"]["n"] == 2  # tuning seeds
    assert isinstance(weights["target_met"], bool)


def test_make_results_update_writes_the_v1_sections_and_keeps_the_rest(v1_results: Path,
                                                                      tmp_path: Path) -> None:
    page = tmp_path / "RESULTS.md"
    page.write_text("# Results\n\nkept by hand\n")
    _run("make_results", "--update", "--out", str(page), "--results", str(v1_results))
    text = page.read_text()
    assert "kept by hand" in text
    for name in ("paired", "fashion", "generalist"):
        assert f"<!-- section:{name}:start" in text and f"<!-- section:{name}:end -->" in text
    assert "Loss-weight screen (`python -m benchmarks.fashion_weights --smoke" in text
    assert "`python -m benchmarks.generalization --smoke" in text  # not the file's path
    _run("make_results", "--update", "--out", str(page), "--results", str(v1_results))
    assert page.read_text() == text  # idempotent: each section replaced in place


def test_make_results_update_copies_only_the_figures_the_page_shows(v1_results: Path,
                                                                   tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(v1_results, results)
    (results / "stray.png").write_bytes((results / "generalization.png").read_bytes())
    page = tmp_path / "docs" / "RESULTS.md"
    page.parent.mkdir()
    _run("make_results", "--update", "--out", str(page), "--results", str(results))
    text, figures = page.read_text(), sorted(p.name for p in (page.parent / "results").glob("*"))
    assert "generalization.png" in figures and "stray.png" not in figures
    assert all(f"](results/{name})" in text for name in figures)


def test_generalization_resume_keeps_finished_tasks_and_refuses_other_settings(
        tmp_path: Path) -> None:
    out = tmp_path / "generalization.json"
    base = ("--tasks", "tiny:tiny-2,tiny:tiny-3b", "--synthetic-seeds", "2", "--policies",
            "uniform,heuristic", "--out", str(out))
    _run("generalization", *base)
    first = json.loads(out.read_text())
    names = list(first["tasks"])
    assert len(names) >= 2 and first["settings"]["policies"] == ["uniform", "heuristic"]
    # an interrupted run: the last task never finished; a kept task carries a marker
    cut = dict(first, tasks={n: first["tasks"][n] for n in names[:-1]})
    cut["tasks"][names[0]] = dict(cut["tasks"][names[0]], marker="kept")
    cut.pop("across_tasks")
    out.write_text(json.dumps(cut))
    proc = _run("generalization", *base, "--resume")
    resumed = json.loads(out.read_text())
    assert list(resumed["tasks"]) == names and resumed["resumed_tasks"] == sorted(names[:-1])
    assert resumed["tasks"][names[0]]["marker"] == "kept"  # not rerun
    assert resumed["tasks"][names[-1]] == first["tasks"][names[-1]]  # rerun, same seeds
    assert "kept from" in proc.stderr + proc.stdout
    # other settings: refused with both sets named, the file untouched
    before = out.read_text()
    bad = run_module("benchmarks.generalization", *base, "--resume", "--synthetic-seeds", "3",
                     check=False)
    assert bad.returncode == 2 and "--resume" in bad.stderr and "synthetic_seeds" in bad.stderr
    assert out.read_text() == before


def test_oracle_heuristic_family_tunes_dus_h_per_task_and_generalization_replays_it(
        tmp_path: Path) -> None:
    """--family heuristic: DUS-H's settings searched for one task against DUS-H from the same
    seeds (the defaults first, earning exactly 0), resumable, replayed as DUS-H with them."""
    from benchmarks.oracle import oracle_policy
    from dus_agents.heuristic import HeuristicPolicy
    from dus_env.env_v1 import DUSEnvV1
    from dus_env.sampler import HEURISTIC_DEFAULTS
    from dus_env.suites import get_suite

    out = tmp_path / "headroom.json"
    base = ("--tasks", "tiny:tiny-3b", "--family", "heuristic", "--reward", "paired_best",
            "--trials", "3", "--search-seeds", "500,501", "--out", str(out))
    proc = _run("oracle", *base)
    result = json.loads(out.read_text())
    assert (result["family"], result["reward"], result["search_seeds"]) == (
        "heuristic", "paired_best", [500, 501])
    task = result["tasks"]["tiny-3b"]
    first = task["trials"][0]
    assert first["settings"] == HEURISTIC_DEFAULTS and first["returns"] == [0.0, 0.0]
    assert len(task["trials"]) == 3 and task["trial_values"][0] == 0.0
    assert task["validation_mean_paired_return"] == max(task["trial_values"]) >= 0.0
    assert task["settings"] in [t["settings"] for t in task["trials"]]
    assert "vs DUS-H" in proc.stdout
    env = DUSEnvV1(config=get_suite("tiny").task("tiny-3b").config, permute_modalities=False)
    policy = oracle_policy(env, task)
    assert isinstance(policy, HeuristicPolicy)
    assert {k: getattr(policy, k) for k in task["settings"]} == task["settings"]
    # an interrupted run keeps what it found; other settings are refused, the file untouched
    kept = dict(result)
    kept["tasks"] = {"tiny-3b": dict(task, marker="kept")}
    out.write_text(json.dumps(kept))
    _run("oracle", *base, "--resume")
    assert json.loads(out.read_text())["tasks"]["tiny-3b"]["marker"] == "kept"
    before = out.read_text()
    bad = run_module("benchmarks.oracle", *base, "--resume", "--trials", "4", check=False)
    assert bad.returncode == 2 and "--resume" in bad.stderr and "'trials': 3" in bad.stderr
    assert out.read_text() == before
    family = run_module("benchmarks.oracle", "--family", "open", "--out",
                        str(tmp_path / "bad.json"), check=False)
    assert family.returncode == 2 and "--family='open' is not valid" in family.stderr
    assert "'heuristic'" in family.stderr and not (tmp_path / "bad.json").exists()


def test_headroom_section_reads_the_oracle_and_the_generalization_run_that_replayed_it(
        tmp_path: Path) -> None:
    from benchmarks.generalization import across_tasks
    from benchmarks.results_sections import HEADROOM_HEADING, sections

    def iv(mean, low, high):
        return {"mean": mean, "low": low, "high": high, "half_width": high - mean, "std": 1.0,
                "n": 10, "confidence": 0.95}

    settings = {"gamma": 2.0, "warmup": 0.2, "min_multiplier": 0.6, "max_multiplier": 1.5}
    oracle = {"command": ["/x/benchmarks/oracle.py", "--family", "heuristic"],
              "family": "heuristic", "reward": "paired_best", "trials": 24, "phases": 3,
              "search_seeds": [500, 501, 502, 503],
              "tasks": {t: {"settings": settings, "validation_interval": iv(0.5, 0.1, 0.9),
                            "validation_mean_paired_return": 0.5}
                        for t in ("s1", "s2", "r1", "r2")}}
    tasks = {t: {"kind": "synthetic" if t.startswith("s") else "mfeat", "seeds": [0, 1],
                 "policies": {"uniform": {"accuracy": iv(0.9, 0.8, 1.0)},
                              "heuristic": {"vs_uniform": iv(1.0, 0.5, 1.5)},
                              "oracle": {"vs_uniform": iv(1.2 + d, 0.6, 1.8),
                                         "vs_heuristic": iv(0.2 + d, -0.1, 0.5)}}}
             for t, d in (("s1", 0.0), ("s2", 0.2), ("r1", -0.1), ("r2", 0.1))}
    general = {"command": ["/x/benchmarks/generalization.py", "--oracle", "r/headroom.json"],
               "settings": {"oracle": "r/headroom.json"}, "policies": ["uniform", "oracle"],
               "tasks": tasks, "across_tasks": across_tasks(tasks)}
    (tmp_path / "headroom.json").write_text(json.dumps(oracle))
    (tmp_path / "ppobest_generalization.json").write_text(json.dumps(general))
    text = "\n".join(sections(tmp_path)["headroom"]())
    assert text.startswith(HEADROOM_HEADING)
    assert "`python -m benchmarks.oracle --family heuristic`" in text
    assert "validation seeds 500-503 by mean paired return (reward `paired_best`)" in text
    assert "| s2 | 2 | 0.2 | 0.6 | 1.5 | +0.50 [+0.10, +0.90] | +0.40 [-0.10, +0.50] |" in text
    assert "| all | 4 | +1.25" in text and "| synthetic | 2 |" in text
    assert "| real data | 2 |" in text
    assert "DUS-H tuned per task beats DUS-H on these tasks" in text and "+0.25 [+0.04" in text
    assert "half-width, 0.21 points" in text
    assert "shipped generalist against this bound" not in text
    # a run of the shipped generalist with this oracle adds it against the bound (the table
    # above stays the other run's: the oracle's runs are the same in both)
    shipped_tasks = {t: {**e, "policies": {**e["policies"], "generalist": {
        "vs_uniform": iv(0.6, 0.1, 1.1), "vs_heuristic": iv(-0.4, -0.9, 0.1)}}}
        for t, e in tasks.items()}
    (tmp_path / "shipped_generalization.json").write_text(json.dumps({
        "command": ["/x/benchmarks/generalization.py", "--generalist", "pretrained"],
        "settings": {"oracle": "r/headroom.json", "generalist": "pretrained"},
        "tasks": {t: {**e, "policies": {**e["policies"], "oracle": {
            "vs_uniform": iv(9.0, 8.0, 10.0), "vs_heuristic": iv(9.0, 8.0, 10.0)}}}
            for t, e in shipped_tasks.items()},
        "across_tasks": across_tasks(shipped_tasks)}))
    text = "\n".join(sections(tmp_path)["headroom"]())
    assert "| all | 4 | +1.25" in text  # still the first run's oracle
    shipped = text.split("**The shipped generalist against this bound** (`python -m "
                         "benchmarks.generalization --generalist pretrained`")[1]
    assert "| all | 4 | +0.60 [" in shipped and "-0.40 [" in shipped
    assert "Share of the oracle's gain over uniform the generalist reaches" in shipped
    assert "(target >= 70% on each: reached on 0 of 4)" in shipped  # 0.6 of 1.1 to 1.4
    (tmp_path / "shipped_generalization.json").unlink()
    # the wider search renders as its own section from its own pair of files
    from benchmarks.results_sections import HEADROOM_WIDE_HEADING

    (tmp_path / "bound16.json").write_text(json.dumps(oracle))
    (tmp_path / "bound16_generalization.json").write_text(json.dumps(
        {**general, "settings": {"oracle": "r/bound16.json"}}))
    wide = "\n".join(sections(tmp_path)["headroom_wide"]())
    assert wide.startswith(HEADROOM_WIDE_HEADING) and "| all | 4 | +1.25" in wide
    # before the test runs exist, the search alone
    (tmp_path / "ppobest_generalization.json").unlink()
    assert "Not yet replayed on test seeds." in "\n".join(sections(tmp_path)["headroom"]())
    # the generalist section of a run that replayed it names how the oracle was searched
    from benchmarks.results_sections import oracle_line

    assert "DUS-H's four settings tuned per task (24 candidates" in oracle_line(oracle)
    assert "3 phases of constant multipliers" in oracle_line(
        {**oracle, "family": "schedule", "reward": "paired"})


def test_generalization_jobs_spread_tasks_and_give_the_same_numbers(tmp_path: Path) -> None:
    base = ("--tasks", "tiny:tiny-2,tiny:tiny-3b", "--synthetic-seeds", "2", "--policies",
            "uniform,heuristic")
    _run("generalization", *base, "--out", str(tmp_path / "one.json"))
    _run("generalization", *base, "--jobs", "2", "--out", str(tmp_path / "two.json"))
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert list(two["tasks"]) == list(one["tasks"]) == ["tiny-2", "tiny-3b"]  # suite order
    assert two["tasks"] == one["tasks"] and two["across_tasks"] == one["across_tasks"]
    bad = run_module("benchmarks.generalization", *base, "--jobs", "0", "--out",
                     str(tmp_path / "bad.json"), check=False)
    assert bad.returncode == 2 and "--jobs" in bad.stderr
    assert not (tmp_path / "bad.json").exists()


def test_make_results_writes_the_pretrained_card_from_the_run_it_describes(
        v1_results: Path, tmp_path: Path) -> None:
    """docs/PRETRAINED.md quotes the training run's own recorded command and suite."""
    results = tmp_path / "results"
    results.mkdir()
    general = json.loads((v1_results / "generalization.json").read_text())
    # the smoke run has one task (no interval over tasks); give it one to judge
    general["across_tasks"]["generalist"]["mean_gain_vs_heuristic"] = {
        "mean": -0.1, "half_width": 0.2, "low": -0.3, "high": 0.1, "std": 0.4, "n": 20,
        "confidence": 0.95}
    (results / "generalization.json").write_text(json.dumps(general))
    run = results / "generalist"
    run.mkdir()
    argv = ["/some/python", "train_agent.py", "--suite", "tiny", "--total-timesteps", "40",
            "--run-name", "generalist"]
    (run / "config.json").write_text(json.dumps({"command": argv, "torch_cpu_capability": "AVX2",
                                                 "args": {"suite": "tiny", "eval_freq": 20}}))
    (run / "summary.json").write_text(json.dumps({
        "timesteps": 40, "episodes": 6, "wall_time_s": 12.0, "requested_timesteps": 40,
        "seed": 0, "validation_slice": [["tiny-2", 900000]], "ppo_config": {"n_epochs": 1},
        "selection": {"best": {"timesteps": 20, "mean_return": 0.5},
                      "curve": [[0, 0.0], [20, 0.5], [40, 0.1]]}}))
    interval = {"mean": 0.4, "half_width": 0.2, "low": 0.2, "high": 0.6, "std": 0.3, "n": 4,
                "confidence": 0.95}
    (results / "select_generalist.json").write_text(json.dumps({
        "command": ["/x/benchmarks/select_generalist.py", "--suite", "tiny"], "suite": "tiny",
        "seeds": [100, 101], "slice": [["tiny-2", 100], ["tiny-2", 101]], "chosen": "ppo:new",
        "candidates": {"ppo:old": {"mean_paired_return": {**interval, "mean": 0.1}},
                       "ppo:new": {"mean_paired_return": interval, "vs_ppo:old": interval}}}))
    page = tmp_path / "docs" / "RESULTS.md"
    page.parent.mkdir()
    _run("make_results", "--update", "--out", str(page), "--results", str(results))
    card = (tmp_path / "docs" / "PRETRAINED.md").read_text()
    assert "## Why this one" in card and "Chosen: `ppo:new`" in card
    assert "`python -m benchmarks.select_generalist --suite tiny`" in card
    assert "training tasks of the `tiny` suite" in card
    assert ("ATEN_CPU_CAPABILITY=avx2 python train_agent.py --suite tiny --total-timesteps 40 "
            "--run-name generalist") in card and "torch CPU kernels: AVX2" in card
    assert "/some/python" not in card and "suite `tiny`" in card
    assert "kept: 20 timesteps (+0.50 points)" in card
    assert "does **not** beat DUS-H on these tasks" in card and "-0.10 [-0.30, +0.10]" in card
    assert "Trained with `python train_agent.py --suite tiny" in page.read_text()


def test_select_generalist_scores_candidates_on_the_validation_slice_only(tmp_path: Path) -> None:
    out = tmp_path / "select.json"
    proc = _run("select_generalist", "--smoke", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["suite"] == "tiny" and "smoke ok" in proc.stdout
    # tiny's first two training tasks x its validation seeds; no held-out task, no pool seed
    assert result["slice"] == [["tiny-2", 100], ["tiny-2", 101], ["tiny-3", 100], ["tiny-3", 101]]
    uniform, heuristic = result["candidates"]["uniform"], result["candidates"]["heuristic"]
    assert uniform["returns"] == [0.0] * 4  # the paired reward of uniform is 0 by construction
    assert heuristic["vs_uniform"]["mean"] == pytest.approx(
        heuristic["mean_paired_return"]["mean"])
    assert result["seeds"] == [100, 101]
    gain = heuristic["vs_uniform"]
    assert result["chosen"] == ("heuristic" if gain["low"] is not None and gain["low"] > 0
                                else "uniform")  # the incumbent unless clearly beaten
    from benchmarks.results_sections import selection_lines

    text = "\n".join(selection_lines(result))
    assert "validation slice of `tiny` (4 pairs" in text and "| heuristic |" in text
    assert f"Chosen: `{result['chosen']}`" in text
    # a control runs on the same slice, is compared with every candidate, and is never chosen
    assert result["controls"] == ["random"] and result["chosen"] != "random"
    assert "vs_random" in heuristic and "| random (control) |" in text
    bad = run_module("benchmarks.select_generalist", "--candidates", "ppo:/nonexistent.zip",
                     "--suite", "tiny", check=False)
    assert bad.returncode == 2 and "/nonexistent.zip" in bad.stderr
    pool = run_module("benchmarks.select_generalist", "--suite", "tiny", "--seeds", "1-2",
                      "--candidates", "uniform", check=False)
    assert pool.returncode == 2 and "training seeds" in pool.stderr and "[1, 2]" in pool.stderr
    reward = run_module("benchmarks.select_generalist", "--suite", "tiny", "--reward", "final",
                        "--candidates", "uniform", check=False)
    assert reward.returncode == 2 and "--reward='final' is not valid" in reward.stderr
    assert "paired_best" in reward.stderr


def test_select_generalist_can_score_by_the_best_validation_so_far(tmp_path: Path) -> None:
    """--reward paired_best: the slice scored by best-so-far minus the uniform run's best;
    uniform still earns exactly 0, the record and the page say which reward it was."""
    out = tmp_path / "select.json"
    run_module("benchmarks.select_generalist", "--suite", "tiny", "--eval-tasks", "1",
               "--candidates", "uniform,heuristic", "--reward", "paired_best", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["reward"] == "paired_best"
    assert result["candidates"]["uniform"]["returns"] == [0.0, 0.0]
    from benchmarks.results_sections import selection_lines

    assert "(reward `paired_best`)" in "\n".join(selection_lines(result))


@pytest.mark.parametrize("module", ["oracle", "generalization"])
def test_a_bad_task_item_is_one_line_naming_the_valid_choices(module: str) -> None:
    for item, valid in (("nope:heldout", "'synthetic-mix'"), ("tiny:nope", "'tiny-3b'")):
        proc = run_module(f"benchmarks.{module}", "--tasks", item, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert item in proc.stderr and valid in proc.stderr


def test_select_generalist_keeps_the_incumbent_unless_the_paired_interval_clears_zero() -> None:
    from benchmarks.select_generalist import choose

    def cand(mean, low="absent"):
        entry = {"mean_paired_return": {"mean": mean}}
        if low != "absent":
            entry["vs_old"] = {"mean": mean, "low": low}
        return entry

    names = ["old", "a", "b"]
    assert choose({"old": cand(0.0), "a": cand(0.5, -0.1), "b": cand(0.4, -0.2)}, names) == "old"
    assert choose({"old": cand(0.0), "a": cand(0.5, -0.1), "b": cand(0.4, 0.1)}, names) == "b"
    assert choose({"old": cand(0.0), "a": cand(0.6, 0.2), "b": cand(0.4, 0.1)}, names) == "a"
    assert choose({"old": cand(0.0), "a": cand(0.6, None)}, ["old", "a"]) == "old"  # n < 2: no CI


def test_a_tried_generalist_is_summarised_over_all_tasks_and_by_kind() -> None:
    from benchmarks.results_sections import candidate_lines

    def task(kind, gain, vs_h):
        iv = lambda m: {"mean": m, "low": m - 0.5, "high": m + 0.5}  # noqa: E731
        return {"kind": kind, "seeds": [0, 1], "policies": {
            "uniform": {"accuracy": iv(0.9)},
            "heuristic": {"accuracy": iv(0.9), "vs_uniform": iv(0.3)},
            "generalist": {"accuracy": iv(0.9), "vs_uniform": iv(gain),
                           "vs_heuristic": iv(vs_h)}}}

    g = {"generalist": "runs/x/policy.zip",
         "command": ["/a/benchmarks/generalization.py", "--generalist", "runs/x/policy.zip"],
         "tasks": {"s1": task("synthetic", 1.0, 0.6), "s2": task("synthetic", 2.0, 1.0),
                   "r1": task("mfeat", 0.0, -1.0), "r2": task("mfeat", 0.2, -0.2)}}
    text = "\n".join(candidate_lines("mixed", g))
    assert "Tried, not shipped: `mixed` (`runs/x/policy.zip`)" in text
    assert "`python -m benchmarks.generalization --generalist runs/x/policy.zip`" in text
    assert "| all | 4 | +0.80" in text and "| synthetic | 2 | +1.50" in text
    assert "| real data | 2 | +0.10" in text and "0/1/1 |" in text  # r1 a loss, r2 a tie


def test_the_anchored_generalist_gets_its_own_section_and_leaves_the_others(tmp_path) -> None:
    from benchmarks.generalization import across_tasks
    from benchmarks.results_sections import ANCHORED_HEADING, update

    def task(kind, gain, vs_h):
        iv = lambda m: {"mean": m, "low": m - 0.5, "high": m + 0.5, "half_width": 0.5}  # noqa: E731
        return {"kind": kind, "seeds": [0, 1], "modalities": ["a", "b"], "policies": {
            "uniform": {"accuracy": iv(0.9)},
            "heuristic": {"accuracy": iv(0.9), "vs_uniform": iv(0.3)},
            "generalist": {"accuracy": iv(0.9), "vs_uniform": iv(gain),
                           "vs_heuristic": iv(vs_h)}}}

    same = task("mfeat", 0.3, 0.0)
    same["policies"]["generalist"]["vs_heuristic"]["std"] = 0.0
    tasks = {"s1": task("synthetic", 1.0, 0.6), "r1": task("mfeat", 0.0, 0.2), "r2": same}
    g = {"command": ["/a/benchmarks/generalization.py", "--policies",
                     "uniform,heuristic,generalist"],
         "policies": ["uniform", "heuristic", "generalist"], "generalist": "x.zip",
         "tasks": tasks, "across_tasks": across_tasks(tasks)}
    (tmp_path / "anchored_generalization.json").write_text(json.dumps(g))
    run = tmp_path / "generalist-anchored"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({
        "timesteps": 40, "episodes": 4, "wall_time_s": 60,
        "selection": {"best": {"timesteps": 0, "mean_return": 0.0}}}))
    (run / "config.json").write_text(json.dumps({"command": [
        "train_agent.py", "--suite", "tiny", "--anchor", "heuristic"]}))
    before = ("# page\n\n<!-- section:generalist:start -->\nold words\n"
              "<!-- section:generalist:end -->\n")
    page, done = update(before, tmp_path)
    assert done == ["anchored"]
    assert page.startswith(before.rstrip())  # the other section is left as it was
    assert ANCHORED_HEADING in page and "python train_agent.py --suite tiny --anchor " \
        "heuristic" in page
    assert "| s1 | 2 | 90.00 |" in page and "oracle" not in page.split(ANCHORED_HEADING)[1]
    assert "![anchored_generalization](results/anchored_generalization.png)" in page
    assert "On 1 of 3 tasks the generalist's runs are DUS-H's" in page and ": r2." in page


def test_ppo_reward_section_lists_every_reward_run_it_finds(tmp_path: Path) -> None:
    """The steps-to-beat-uniform section: one row per `cost_ppo-NAME.json` present (paired,
    paired_best, val_delta), the count in its first sentence."""
    from benchmarks.results_sections import sections

    def run(first_steps):
        check = {"checkpoint": "rl_model_320_steps.zip", "timesteps": 320, "elapsed_s": 10.0,
                 "mean_val_acc": 0.85, "beats_uniform": first_steps is not None,
                 "diff_to_uniform": {"mean": 0.5, "low": 0.1, "high": 0.9, "n": 20}}
        first = dict(check) if first_steps is not None else None
        return {"ppo_time": {"preset": "default", "n_envs": 2, "total_timesteps": 4800,
                             "training_wall_time_s": 300.0, "val_episode_seeds": [1, 2],
                             "criterion": "CI above 0", "checkpoints": [check],
                             "first_beating_checkpoint": first,
                             "first_checkpoint_with_positive_mean": check}}

    for name, first in (("ppo-paired", None), ("ppo-pairedbest", 320)):
        (tmp_path / f"cost_{name}.json").write_text(json.dumps(run(first)))
    text = "\n".join(sections(tmp_path)["ppo_reward"]())
    assert "Two `dus-train --agent ppo --preset default` runs" in text
    assert "| `paired` | 4800 | 300 | none | 320 | 0 / 1 | **missed** |" in text
    assert "| `paired_best` | 4800 | 300 | 320 | 320 | 1 / 1 | met |" in text
    assert "### `paired_best`" in text and "| `val_delta` |" not in text
    (tmp_path / "cost_ppo-valdelta.json").write_text(json.dumps(run(None)))
    assert "Three `dus-train" in "\n".join(sections(tmp_path)["ppo_reward"]())


def test_ppo_settings_section_groups_runs_by_their_ppo_flags_and_seeds(tmp_path: Path) -> None:
    """The PPO-settings section: paired_best runs grouped by `--ppo` settings (read from each
    run's config.json), one row per run, the median first beating checkpoint and the count of
    runs within 1,600 steps per setting, with seed 0 (the one that chose) counted apart."""
    from benchmarks.results_sections import sections

    def write(name, seed, ppo, first_steps, reward="paired_best"):
        run_dir = tmp_path / "runs" / name
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps({"args": {
            "seed": seed, "ppo": ppo, "set": [f"reward.name={reward}"]}}))
        checks = [{"checkpoint": f"rl_model_{t}_steps.zip", "timesteps": t, "elapsed_s": t / 30,
                   "mean_val_acc": 0.86, "beats_uniform": first_steps is not None
                   and t >= first_steps,
                   "diff_to_uniform": {"mean": 0.01 * t / 1600, "low": 0.001, "high": 0.02,
                                       "n": 20}} for t in (320, 1600, 4800)]
        first = next((c for c in checks if c["beats_uniform"]), None)
        (tmp_path / f"cost_{name}.json").write_text(json.dumps({"ppo_time": {
            "run_dir": str(tmp_path / "elsewhere" / name), "checkpoints": checks,
            "first_beating_checkpoint": first, "first_checkpoint_with_positive_mean": checks[0],
            "total_timesteps": 4800, "training_wall_time_s": 100.0}}))

    write("ppo-pairedbest", 0, [], 4800)
    write("ppo-paired", 0, [], None, reward="paired")  # another reward: not in this section
    write("ppo-pb-lr-s0", 0, ["learning_rate=1e-3"], 320)
    assert "ppo_settings" not in sections(tmp_path)  # one seed per setting: nothing to show yet
    write("ppo-pb-base-s1", 1, [], None)
    write("ppo-pb-base-s2", 2, [], 1600)
    write("ppo-pb-lr-s1", 1, ["learning_rate=1e-3"], 1600)
    write("ppo-pb-lr-s2", 2, ["learning_rate=1e-3"], 4800)
    text = "\n".join(sections(tmp_path)["ppo_settings"]())
    assert "| defaults | 1 | none | 320 | 0 / 3 | +1.00 [+0.10, +2.00] | **missed** |" in text
    assert "| `--ppo learning_rate=1e-3` | 0 | 320 | 320 | 3 / 3 |" in text
    assert "| defaults | 0, 1, 2 | 4,800 | 1 of 3 | 1 of 2 |" in text
    assert "| `--ppo learning_rate=1e-3` | 0, 1, 2 | 1,600 | 2 of 3 | 1 of 2 |" in text
    assert "reward.name=paired`" not in text and "| `paired` |" not in text
    assert ("defaults: median 4,800 steps, missed in the median, 2 of 3 runs missing it; "
            "`--ppo learning_rate=1e-3`: median 1,600 steps, met in the median, 1 of 3") in text
    assert ("`--ppo learning_rate=1e-3` against the defaults (3 and 3 runs): two-sided "
            "Mann-Whitney U p = 0.37, no difference") in text  # ranks 1, 2.5, 4.5 against 2.5, 4.5, 6
