"""DUS-v1: slots, suites, permutation, the paired reward and its reference cache, replay."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import dus_env
from dus_agents.heuristic import HeuristicPolicy, RandomPolicy
from dus_env import reference
from dus_env.config import SyntheticConfig, get_preset
from dus_env.env import DUSEnv
from dus_env.env_v1 import DUSEnvV1
from dus_env.slots import V1_MULTIPLIERS, SlotLayout
from dus_env.suites import get_suite, tiny_suite

V1 = dus_env.ENV_V1_ID


@pytest.mark.parametrize("kwargs", [{"preset": "tiny"}, {"preset": "default"},
                                    {"suite": "tiny"}, {"suite": "synthetic-mix"},
                                    {"suite": "mfeat-views"}, {"suite": "real"},
                                    {"suite": "mixed"},
                                    {"suite": "tiny", "config": {"reward": {"name": "paired"}}},
                                    {"suite": "tiny",
                                     "config": {"reward": {"name": "paired_best"}}}])
def test_both_checkers_as_gym_make_builds_it(kwargs):
    env = gym.make(V1, **kwargs)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
    assert [str(w.message) for w in records] == []


def test_grid_represents_a_ten_percent_change():
    steps = np.diff(np.log(V1_MULTIPLIERS))
    assert V1_MULTIPLIERS[8] == 1.0 and V1_MULTIPLIERS[0] == 0.5 and V1_MULTIPLIERS[-1] == 2.0
    assert np.all(np.exp(steps) < 1.1)  # DUS-H's 0.92x / 1.08x no longer round to 1.0
    nearest = [V1_MULTIPLIERS[int(np.argmin(np.abs(np.log(V1_MULTIPLIERS) - np.log(x))))]
               for x in (0.92, 1.08)]
    assert nearest[0] < 1.0 < nearest[1]


def test_observation_layout_by_slot():
    env = DUSEnvV1(suite="tiny")
    obs, info = env.reset(seed=0, options={"task": "tiny-3"})
    layout = env.unwrapped.layout
    assert isinstance(layout, SlotLayout) and obs.shape == (2 + 4 * (2 * 8 + 3),)
    parts = layout.decode(obs)
    present = parts["present"][:, 0]
    assert present.sum() == 3 and info["task"] == "tiny-3"
    assert sorted(info["slots"].values()) == sorted(np.flatnonzero(present).tolist())
    assert parts["modality_fraction"] == pytest.approx(0.75)
    absent = int(np.flatnonzero(present == 0)[0])
    assert not parts["rows"][absent].any()
    assert env.action_space.nvec.tolist() == [17] * 4


def test_determinism_including_task_and_permutation_draws():
    def roll(seed):
        env = DUSEnvV1(suite="tiny")
        out = []
        for episode in range(3):
            obs, info = env.reset(seed=seed if episode == 0 else None)
            out.append((info["task"], tuple(info["slots"].values()), info["episode_seed"],
                        obs.tolist()))
            obs, r, *_ = env.step(np.array([3, 12, 8, 0]))
            out.append((obs.tolist(), r))
        return out

    assert roll(5) == roll(5)
    draws = {tuple(x[:2]) for x in roll(5)[::2]} | {tuple(x[:2]) for x in roll(6)[::2]}
    assert len(draws) > 1  # tasks and slots really vary


def test_actions_of_absent_slots_change_nothing():
    def run(filler):
        env = DUSEnvV1(preset="tiny")  # 2 modalities in slots 0, 1
        env.reset(seed=1)
        infos = []
        for _ in range(3):
            obs, r, _, _, info = env.step(np.array([2, 14, filler, filler]))
            infos.append((obs.tolist(), r, info["batch_sizes"]))
        return infos, env.trainer.model.state_dict()

    a, state_a = run(0)
    b, state_b = run(16)
    assert a == b
    for k in state_a:
        assert torch.equal(state_a[k], state_b[k])


def test_permuted_slots_permute_rows_and_permuted_actions_train_the_same_model():
    plain = DUSEnvV1(suite="tiny", permute_modalities=False)
    shuffled = DUSEnvV1(suite="tiny", permute_modalities=True)
    opts = {"task": "tiny-3", "episode_seed": 7}
    obs_a, _ = plain.reset(seed=0, options=opts)
    for seed in range(20):  # a reset whose permutation is not the identity
        obs_b, info_b = shuffled.reset(seed=seed, options=opts)
        slots = list(info_b["slots"].values())
        if slots != [0, 1, 2]:
            break
    rows_a, rows_b = plain.layout.decode(obs_a)["rows"], shuffled.layout.decode(obs_b)["rows"]
    for i, slot in enumerate(slots):
        np.testing.assert_array_equal(rows_b[slot], rows_a[i])
    rng = np.random.default_rng(0)
    for _ in range(plain.config.steps_per_episode):
        per_modality = rng.integers(0, 17, size=3)
        act_a = np.array([*per_modality, 5])
        act_b = np.full(4, 9)
        act_b[slots] = per_modality
        obs_a, ra, *_ = plain.step(act_a)
        obs_b, rb, *_ = shuffled.step(act_b)
        assert ra == rb
        rows_a, rows_b = plain.layout.decode(obs_a)["rows"], shuffled.layout.decode(obs_b)["rows"]
        for i, slot in enumerate(slots):
            np.testing.assert_array_equal(rows_b[slot], rows_a[i])
    for k, v in plain.trainer.model.state_dict().items():
        assert torch.equal(v, shuffled.trainer.model.state_dict()[k])


def _episode(env, actions, seed):
    obs, info = env.reset(seed=seed)
    accs, rewards, terms = [info["validation"]["accuracy"]], [], []
    for a in actions:
        obs, r, done, _, info = env.step(np.asarray(a))
        rewards.append(r)
        accs.append(info["validation"]["accuracy"])
        terms.append(info["reward_terms"])
        if done:
            break
    return rewards, accs, terms


def test_paired_reward_equals_hand_computed_differences():
    plain = DUSEnv(preset="tiny")
    paired = DUSEnv(preset="tiny", config={"reward": {"name": "paired"}})
    skew = [[0, 4]] * 6
    _, uniform_acc, _ = _episode(plain, [[2, 2]] * 6, seed=3)
    _, skew_acc, _ = _episode(plain, skew, seed=3)
    _check_paired(paired, skew, skew_acc, skew_acc, uniform_acc, uniform_acc,
                  {"val_delta", "reference_delta"})
    assert sum(_episode(paired, skew, seed=3)[0]) == pytest.approx(
        100 * (skew_acc[-1] - uniform_acc[-1]))


def _check_paired(env, actions, run_acc, run_curve, ref_acc, ref_curve, term_names):
    """``env``'s paired rewards for ``actions`` (seed 3) are the step rises of ``run_curve``
    minus those of ``ref_curve``, its accuracies ``run_acc``; uniform earns exactly 0."""
    rewards, accs, terms = _episode(env, actions, seed=3)
    assert accs == run_acc
    hand = [100 * ((run_curve[t] - run_curve[t - 1]) - (ref_curve[t] - ref_curve[t - 1]))
            for t in range(1, 7)]
    np.testing.assert_allclose(rewards, hand, rtol=0, atol=1e-9)
    assert set(terms[0]) == term_names
    assert _episode(env, [[2, 2]] * 6, seed=3)[0] == [0.0] * 6


def test_paired_best_pays_the_best_validation_so_far_minus_the_references_best():
    """paired_best: each step pays the rise of the run's best validation accuracy so far
    (reset included) minus the rise of the reference's; the return is best minus reference
    best, so a drop after the peak costs nothing. Checked on a run whose accuracy falls."""
    plain = DUSEnv(preset="tiny")
    best = DUSEnv(preset="tiny", config={"reward": {"name": "paired_best"}})
    skew = [[0, 4]] * 6
    _, uniform_acc, _ = _episode(plain, [[2, 2]] * 6, seed=3)
    _, skew_acc, _ = _episode(plain, skew, seed=3)
    _check_paired(best, skew, skew_acc, np.maximum.accumulate(skew_acc), uniform_acc,
                  np.maximum.accumulate(uniform_acc), {"best_delta", "reference_best_delta"})
    assert sum(_episode(best, skew, seed=3)[0]) == pytest.approx(
        100 * (max(skew_acc) - max(uniform_acc)), abs=1e-9)
    # the test tells the two rewards apart: some run here falls below its best
    assert (np.diff(skew_acc) < 0).any() or (np.diff(uniform_acc) < 0).any()


def _heuristic_episode(env, seed):
    policy = HeuristicPolicy.for_env(env)
    obs, info = env.reset(seed=seed)
    rewards, accs, done = [], [info["validation"]["accuracy"]], False
    while not done:
        obs, r, done, _, info = env.step(policy.predict(obs, deterministic=True)[0])
        rewards.append(r)
        accs.append(info["validation"]["accuracy"])
    return rewards, accs


@pytest.mark.parametrize("kwargs", [{"preset": "tiny"}, {"suite": "tiny"}])
def test_a_dus_h_reference_pays_dus_h_exactly_zero_and_others_their_difference(kwargs):
    """reward.reference_policy="heuristic": the reference run is DUS-H as HeuristicPolicy
    plays it (in DUS-v0 and in DUS-v1's permuted slots), so DUS-H itself earns 0 at every
    step and uniform earns (uniform - DUS-H) validation accuracy."""
    cls = DUSEnvV1 if "suite" in kwargs else DUSEnv
    cfg = {"reward": {"name": "paired", "reference_policy": "heuristic"}}
    for name in ("paired", "paired_best"):
        env = cls(**kwargs, config={"reward": {**cfg["reward"], "name": name}})
        for seed in range(3):
            rewards, _ = _heuristic_episode(env, seed)
            assert rewards == [0.0] * len(rewards)
    plain = DUSEnv(preset="tiny")
    _, dush_acc = _heuristic_episode(plain, seed=3)
    ref = DUSEnv(preset="tiny", config=cfg)
    rewards, accs, _ = _episode(ref, [[2, 2]] * 6, seed=3)
    assert sum(rewards) == pytest.approx(100 * (accs[-1] - dush_acc[-1]), abs=1e-9)
    assert dush_acc != accs  # the two references differ, so the test tells them apart


def test_the_reference_policy_is_part_of_the_cache_key_and_checked():
    from dus_env.reference import reference_key

    base = get_preset("tiny")
    uniform = reference_key(base, 1, 2)
    assert "reference_policy" not in uniform["config"]["reward"]  # old cache entries still hit
    heur = reference_key(base.replace(reward=base.reward.__class__(
        name="paired", reference_policy="heuristic")), 1, 2)
    assert heur["config"]["reward"]["reference_policy"] == "heuristic"
    assert heur["config"]["sampler"]["multipliers"]  # DUS-H reads the grid
    with pytest.raises(ValueError, match=r"reward.reference_policy='dush' is not valid; valid "
                                         r"choices: \['uniform', 'heuristic'\]"):
        DUSEnv(preset="tiny", config={"reward": {"name": "paired", "reference_policy": "dush"}})


def test_each_cpu_kernel_path_has_its_own_cache_entries(monkeypatch):
    """AVX2 and AVX-512 kernels round differently (a retrained policy was seen to part after
    6,080 steps): a curve from one is never served to the other, it is a miss, not an error."""
    import torch

    from dus_env.reference import reference_key

    here = reference_key(get_preset("tiny"), 1, 2)
    assert here["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "OTHER")
    there = reference_key(get_preset("tiny"), 1, 2)
    assert there["torch_cpu_capability"] == "OTHER"
    assert reference._digest(here) != reference._digest(there)
    assert {k: v for k, v in here.items() if k != "torch_cpu_capability"} == \
        {k: v for k, v in there.items() if k != "torch_cpu_capability"}


def test_a_cache_hit_gives_the_rewards_recomputation_gives(tmp_path):
    cfg = {"reward": {"name": "paired", "reference_cache": str(tmp_path / "cache")}}
    skew = [[3, 13, 8, 8]] * 6
    reference.clear_memory()
    first = DUSEnvV1(preset="tiny", config=cfg)
    computed = _episode(first, skew, seed=4)[0]
    assert first.reference_source == "computed"
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2  # the manifest and one curve
    again = _episode(first, skew, seed=4)[0]
    assert first.reference_source == "memory" and again == computed
    reference.clear_memory()
    fresh = DUSEnvV1(preset="tiny", config=cfg)
    from_disk = _episode(fresh, skew, seed=4)[0]
    assert fresh.reference_source == "disk" and from_disk == computed


def test_a_full_disk_under_the_reference_cache_does_not_end_the_episode(tmp_path, monkeypatch):
    import errno

    from dus_env import files

    cache = tmp_path / "cache"
    cfg = {"reward": {"name": "paired", "reference_cache": str(cache)}}
    skew = [[3, 13, 8, 8]] * 6
    reference.clear_memory()
    expected = _episode(DUSEnvV1(preset="tiny", config={"reward": {"name": "paired"}}),
                        skew, seed=4)[0]
    reference.clear_memory()
    env = DUSEnvV1(preset="tiny", config=cfg)  # its cache.json is written

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.warns(reference.ReferenceCacheWarning,
                      match=r"reference cache entry '.*\.json' could not be written "
                            r"\(OSError: \[Errno 28\] No space left on device\)"):
        rewards = _episode(env, skew, seed=4)[0]
    assert env.reference_source == "computed" and rewards == expected
    assert sorted(p.name for p in cache.iterdir()) == ["cache.json"]  # no partial entry
    again = _episode(env, skew, seed=4)[0]  # this process still has it
    assert env.reference_source == "memory" and again == expected
    monkeypatch.undo()  # space again: another process computes it and caches it
    reference.clear_memory()
    fresh = DUSEnvV1(preset="tiny", config=cfg)
    assert _episode(fresh, skew, seed=4)[0] == expected and fresh.reference_source == "computed"
    assert len(list(cache.glob("*.json"))) == 2


def test_a_reference_cache_from_other_code_or_another_run_is_refused(tmp_path):
    folder = tmp_path / "cache"
    env = DUSEnv(preset="tiny", config={"reward": {"name": "paired",
                                                   "reference_cache": str(folder)}})
    reference.clear_memory()
    _episode(env, [[0, 4]], seed=0)
    manifest = json.loads((folder / "cache.json").read_text())
    (folder / "cache.json").write_text(json.dumps({**manifest, "env_version": 99}))
    with pytest.raises(ValueError, match=r"written by other code .*env_version: 99 \(cache\) vs "
                                         r"0 \(this env\)"):
        DUSEnv(preset="tiny", config={"reward": {"name": "paired",
                                                 "reference_cache": str(folder)}})
    (folder / "cache.json").write_text(json.dumps(manifest))
    # an entry copied in under another run's name (another config) is refused, naming fields
    other = DUSEnv(preset="tiny", config={"trainer": {"lr": 0.01}, "reward": {
        "name": "paired", "reference_cache": str(folder)}})
    entry = next(p for p in folder.glob("*.json") if p.name != "cache.json")
    from dus_env.reference import reference_key

    seeds = DUSEnv.episode_seeds(np.random.default_rng(0))
    target = other._reference_cache.path(reference_key(other.config, *seeds))
    target.write_text(entry.read_text())
    with pytest.raises(ValueError, match=r"computed for another run and is refused: "
                                         r"config.trainer.lr: 0.05 \(cache\) vs 0.01"):
        other._reference_cache.read(reference_key(other.config, *seeds))


@pytest.mark.parametrize("name", ["tiny-2", "tiny-3"])
def test_replay_equals_the_env_for_two_and_three_modalities(name):
    _replay_equals_env(tiny_suite().task(name).config, seed=2)


def test_replay_equals_the_env_for_four_modalities():
    cfg = get_preset("tiny").replace(data=SyntheticConfig(
        modalities=("a", "b", "c", "d"), n_classes=4, dim=8, clusters_per_class=(1, 2, 2, 1),
        separation=(3.0, 1.5, 1.2, 2.0), confused_pairs=(1, 0, 0, 1), n_train=512, n_val=128,
        n_test=128))
    _replay_equals_env(cfg, seed=5)


def _replay_equals_env(config, seed):
    from gymnasium.utils import seeding

    from dus_env.data import make_dataset
    from dus_env.replay import DUSBatchSampler, SamplingController
    from dus_env.sampler import Batch
    from dus_env.trainer import MMLTrainer

    env = DUSEnvV1(config=config, permute_modalities=False)
    policy = HeuristicPolicy.for_env(env, warmup=0.0)
    obs, _ = env.reset(seed=seed)
    observations, sizes, done = [], [], False
    while not done:
        observations.append(obs)
        action, _ = policy.predict(obs, deterministic=True)
        obs, _, done, _, info = env.step(action)
        sizes.append(info["batch_sizes"])
    cfg = env.config  # the task with the v1 grid
    dataset = make_dataset(cfg.data)
    model_seed, sampler_seed = DUSEnv.episode_seeds(seeding.np_random(seed)[0])
    trainer = MMLTrainer.build(cfg.trainer, cfg.model, dataset, cfg.sampler.base_batch_size,
                               model_seed)
    controller = SamplingController.from_config(cfg, HeuristicPolicy.for_env(env, warmup=0.0),
                                                n_classes=dataset.n_classes, max_modalities=4)
    train = dataset.split("train")
    windows = DUSBatchSampler(controller, len(train), np.random.default_rng(sampler_seed))
    for window in windows:
        idx = np.asarray(window)
        n, fusion = windows.batch_sizes, windows.fusion_size
        batch = Batch(inputs={m: train.get(m, idx[: max(n[m], fusion)]) for m in dataset.modalities},
                      labels=train.labels[torch.as_tensor(idx)], batch_sizes=n,
                      fusion_size=fusion, epoch=windows.window_epoch)
        controller.observe_scores(trainer.train_step(batch).batch_scores)
    assert len(controller.decisions) == len(sizes)
    for k, (decision, ob, size) in enumerate(zip(controller.decisions, observations, sizes)):
        np.testing.assert_array_equal(decision.observation, ob, err_msg=f"decision {k}")
        assert decision.batch_sizes == size
    assert any(len(set(s.values())) > 1 for s in sizes), "the heuristic never skewed"
    for key, value in env.trainer.model.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[key], value)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match=r"suite='synthetic-mx' is not valid.*Did you mean "
                                         r"'synthetic-mix'"):
        DUSEnvV1(suite="synthetic-mx")
    env = DUSEnvV1(suite="tiny")
    with pytest.raises(ValueError, match=r"task='tiny-4' is not valid.*Did you mean"):
        env.reset(seed=0, options={"task": "tiny-4"})
    with pytest.raises(ValueError, match="reset options \\['seed_pool'\\] are not valid"):
        env.reset(seed=0, options={"seed_pool": 1})
    with pytest.raises(ValueError, match=r"task 'tiny-3' has 3 modalities \['a', 'b', 'c'\], "
                                         r"more than max_modalities=2"):
        DUSEnvV1(suite="tiny", max_modalities=2)
    with pytest.raises(ValueError, match="split='test' is not valid"):
        DUSEnvV1(suite="tiny", split="test")
    with pytest.raises(ValueError, match=r"action has shape \(2,\); expected \(4,\): one index "
                                         r"per slot"):
        env.step(np.array([1, 1])) if env.reset(seed=0) else None
    suite = tiny_suite()
    odd = suite.train[1].config.replace(monitor=dataclasses_replace(
        suite.train[1].config.monitor, history_length=2))
    from dus_env.suites import Suite, Task

    broken = Suite("broken", train=(suite.train[0], Task("odd", odd)), heldout=())
    with pytest.raises(ValueError, match=r"task 'odd' does not fit the layout of task 'tiny-2': "
                                         r"its monitor is"):
        DUSEnvV1(suite=broken)


def test_loose_arguments_are_refused_with_their_name():
    with pytest.raises(TypeError, match=r"permute_modalities='False' must be True, False or None"):
        DUSEnvV1(suite="tiny", permute_modalities="False")
    with pytest.raises(TypeError, match=r"multipliers=5 must be a sequence of numbers"):
        DUSEnvV1(suite="tiny", multipliers=5)
    env = DUSEnvV1(suite="tiny", max_modalities=np.int64(4))  # numpy integers are integers
    assert env.max_modalities == 4 and type(env.max_modalities) is int
    for seed in (3.7, True, None, "abc", -1):
        with pytest.raises(ValueError, match=r"reset option episode_seed=.* is not valid; "
                                             r"valid: an integer >= 0"):
            env.reset(seed=0, options={"episode_seed": seed})
    assert env.reset(seed=0, options={"episode_seed": np.int64(3)})[1]["episode_seed"] == 3


def test_arguments_of_the_wrong_kind_are_refused_with_their_name_and_type():
    """Through gym.make, as users build the env (each failed with an AttributeError or a
    "dictionary update sequence" ValueError that named nothing, or was silently ignored)."""
    with pytest.raises(TypeError, match=r"suite=3 has type int; expected a suite name \(str\) "
                                        r"or a Suite"):
        gym.make("dus_env/DUS-v1", suite=3)
    with pytest.raises(TypeError, match=r"config='tiny' has type str; with suite=\.\.\. expected "
                                        r"a dict of overrides"):
        gym.make("dus_env/DUS-v1", suite="tiny", config="tiny")
    with pytest.raises(ValueError, match=r"split='heldout' needs suite=\.\.\.: an env of one "
                                         r"task \(preset=\.\.\. or config=\.\.\.\) has no splits"):
        gym.make("dus_env/DUS-v1", preset="tiny", split="heldout")
    env = gym.make("dus_env/DUS-v1", suite="tiny")
    with pytest.raises(TypeError, match=r"reset options='tiny-3' has type str; expected a dict "
                                        r"or None"):
        env.reset(seed=0, options="tiny-3")
    assert env.reset(seed=0, options={})[1]["task"] in {"tiny-2", "tiny-3"}
    env.close()


def test_a_task_that_fails_to_build_leaves_the_env_as_it_was():
    """A held-out task whose data is missing: every reset onto it raises, the env keeps the
    task it had (config, data, decision state agree), and the interrupted episode has ended."""
    from dus_env.suites import Suite, Task

    suite = tiny_suite()
    missing = Task("features-missing", get_preset("cremad_features"))  # no data.path here
    env = DUSEnvV1(suite=Suite("t", train=suite.train[:1], heldout=(missing,)),
                   multipliers=None)
    env.reset(seed=0)
    for _ in range(2):
        with pytest.raises(FileNotFoundError, match="no features file"):
            env.reset(seed=0, options={"task": "features-missing"})
        assert env.task.name == "tiny-2"
        assert env.modalities == env.dataset.modalities == env._decision.modalities == ("a", "b")
    with pytest.raises(ResetNeeded, match="the episode has ended"):
        env.step(env.uniform_action)
    _, info = env.reset(seed=0)
    assert info["task"] == "tiny-2"
    env.step(env.uniform_action)


def test_heuristic_action_is_heuristic_policys_in_v1_slots():
    """``env.heuristic_action()`` (the paired reward's DUS-H reference) is what
    HeuristicPolicy picks from the observation, absent slots included, warm-up or not."""
    env = DUSEnvV1(suite="tiny", permute_modalities=True)
    policy = HeuristicPolicy(env.layout, env.multipliers)
    obs, info = env.reset(seed=1, options={"task": "tiny-2"})
    assert len(info["slots"]) < env.max_modalities  # some slots are absent
    done, skewed = False, False
    while not done:
        action = env.heuristic_action()
        assert env.action_space.contains(action)
        assert np.array_equal(action, policy.predict(obs, deterministic=True)[0])
        skewed |= len(set(action.tolist())) > 1
        obs, _, done, _, _ = env.step(action)
    assert skewed  # past the warm-up it left uniform, so the comparison saw DUS-H's rule


def test_uniform_curves_of_grids_without_one_have_their_own_cache_keys():
    """Uniform sampling reads one grid value: 1.0, else the grid's middle. With
    ``budget="free"`` that value sets the batch size, so it is part of the key."""
    from dus_env.reference import reference_key

    def key(grid, budget="free"):
        cfg = get_preset("tiny")
        cfg = cfg.replace(sampler=dataclasses_replace(cfg.sampler, multipliers=grid,
                                                      budget=budget))
        return reference_key(cfg, 1, 2)

    assert key((0.5, 0.75, 2.0)) != key((0.5, 2.0))
    assert key((0.5, 0.75, 2.0))["config"]["sampler"]["uniform_multiplier"] == 0.75
    assert key((0.5, 1.0, 2.0)) == key((0.25, 1.0, 4.0))  # the grid itself is never read
    assert "uniform_multiplier" not in key((0.5, 1.0, 2.0))["config"]["sampler"]


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_suites_hold_out_parameter_values_training_never_uses():
    suite = get_suite("synthetic-mix")

    def values(tasks, pick):
        return {pick(t.config.data) for t in tasks}

    weak = lambda d: max(d.clusters_per_class)  # noqa: E731
    assert not values(suite.train, weak) & values(suite.heldout, weak)
    classes = lambda d: d.n_classes  # noqa: E731
    assert not values(suite.train, classes) & values(suite.heldout, classes)
    budgets = {t.config.total_iterations for t in suite.train}
    assert not budgets & {t.config.total_iterations for t in suite.heldout}
    assert {t.n_modalities for t in suite.train} == {2, 3, 4}
    assert {t.n_modalities for t in suite.heldout} == {2, 3, 4}
    assert all(t.seeds for t in suite.train) and not set(suite.validation_seeds) & {
        s for t in suite.train for s in t.seeds}


def test_the_mixed_suite_is_synthetic_mix_and_real_together_interleaved():
    mixed, synthetic, real = (get_suite(n) for n in ("mixed", "synthetic-mix", "real"))
    names = lambda tasks: [t.name for t in tasks]  # noqa: E731
    assert sorted(names(mixed.train)) == sorted(names(synthetic.train) + names(real.train))
    assert names(mixed.heldout) == names(synthetic.heldout) + names(real.heldout)
    # a validation slice over the first 2k training tasks holds k of each kind
    first = mixed.train[:16]
    assert sum(t.config.data.name == "synthetic" for t in first) == 8
    assert mixed.validation_seeds == synthetic.validation_seeds
    assert not set(mixed.validation_seeds) & {s for t in mixed.train for s in t.seeds}
    assert not set(names(mixed.train)) & set(names(mixed.heldout))
    assert mixed.max_modalities == 4


def test_a_reset_never_rebuilds_data_it_built_before(monkeypatch):
    from dus_env.data import synthetic

    env = DUSEnvV1(suite="tiny")
    for seed in range(6):
        env.reset(seed=seed)
    calls = []
    real = synthetic.make_synthetic
    monkeypatch.setattr(synthetic, "make_synthetic", lambda c: calls.append(c) or real(c))
    for seed in range(6, 12):
        env.reset(seed=seed)
    assert calls == []


def test_random_policy_runs_on_v1_and_heuristic_skips_absent_slots():
    env = DUSEnvV1(preset="tiny")
    obs, _ = env.reset(seed=0)
    policy = HeuristicPolicy.for_env(env, warmup=0.0)
    req = policy.requested_multipliers(obs[None])[0]
    assert req[2:].tolist() == [1.0, 1.0] and req[:2].sum() == pytest.approx(2.0)
    action, _ = RandomPolicy.for_env(env, seed=0).predict(obs)
    assert action.shape == (4,)


def _features_file(path, seed):
    from dus_env.data.features import save_features

    rng = np.random.default_rng(seed)
    arrays = {f"{s}/{m}": rng.normal(size=(24, 6)).astype(np.float16)
              for s in ("train", "val", "test") for m in ("audio", "visual")}
    arrays |= {f"{s}/labels": np.arange(24) % 6 for s in ("train", "val", "test")}
    save_features(path, arrays, {"dataset": "toy", "modalities": ["audio", "visual"],
                                 "class_names": list("abcdef")})
    return path


def test_a_features_file_rebuilt_at_the_same_path_gets_its_own_reference_curve(
        tmp_path, monkeypatch):
    # the key held only the config: a file rebuilt at one path (or found through
    # $DUS_FEATURES_PATH) was served the other data's uniform curve from the disk cache
    path = _features_file(tmp_path / "f.npz", seed=0)
    cfg = {"data": {"path": str(path)}, "total_iterations": 4, "iters_per_step": 2,
           "sampler": {"base_batch_size": 4, "min_batch_size": 2, "max_batch_size": 8},
           "reward": {"name": "paired", "val_subset_size": 0,
                      "reference_cache": str(tmp_path / "cache")}}
    reference.clear_memory()
    first = DUSEnv(preset="cremad_features", config=cfg)
    _episode(first, [first.uniform_action] * 2, seed=0)
    assert first.reference_source == "computed"
    reference.clear_memory()
    again = DUSEnv(preset="cremad_features", config=cfg)
    _episode(again, [again.uniform_action] * 2, seed=0)
    assert again.reference_source == "disk"  # the same file: the cached curve
    _features_file(path, seed=1)  # rebuilt in place
    reference.clear_memory()
    rebuilt = DUSEnv(preset="cremad_features", config=cfg)
    rewards = _episode(rebuilt, [rebuilt.uniform_action] * 2, seed=0)[0]
    assert rebuilt.reference_source == "computed" and rewards == [0.0, 0.0]
    monkeypatch.setenv("DUS_FEATURES_PATH", str(_features_file(tmp_path / "g.npz", seed=2)))
    reference.clear_memory()
    from_env = DUSEnv(preset="cremad_features", config={**cfg, "data": {"path": None}})
    _episode(from_env, [from_env.uniform_action] * 2, seed=0)
    assert from_env.reference_source == "computed"


def test_a_torch_thread_count_other_than_one_is_part_of_the_reference_key():
    # 1 and 2 threads sum in another order: a curve cached at one was served to the other,
    # and uniform sampling then earned -0.40 points instead of exactly 0
    from dus_env.reference import reference_key

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = reference_key(get_preset("tiny"), 1, 2)
        torch.set_num_threads(2)
        two = reference_key(get_preset("tiny"), 1, 2)
    finally:
        torch.set_num_threads(threads)
    assert "torch_threads" not in one  # the keys PPO's 1-thread env workers always had
    assert two == {**one, "torch_threads": 2}


@pytest.mark.parametrize("curve, match", [  # tiny: 6 steps, so 7 accuracies
    ([0.5] * 6, r"its curve is list of 6 values; expected a list of 7 accuracies"),
    ([0.5] * 8, r"its curve is list of 8 values"),
    (0.5, r"its curve is float of no values"),
    ([0.5, 7.0] + [0.5] * 5, r"its curve holds 7\.0; expected accuracies in \[0, 1\]"),
    ([0.5, "0.6"] + [0.5] * 5, r"its curve holds '0\.6'"),
    ([0.5, True] + [0.5] * 5, r"its curve holds True"),
])
def test_a_cache_entry_whose_curve_does_not_fit_the_task_is_refused(tmp_path, curve, match):
    folder = tmp_path / "cache"
    cfg = {"reward": {"name": "paired", "reference_cache": str(folder)}}
    reference.clear_memory()
    env = DUSEnv(preset="tiny", config=cfg)
    _episode(env, [[0, 4]], seed=0)
    (entry,) = [p for p in folder.glob("*.json") if p.name != "cache.json"]
    stored = json.loads(entry.read_text())
    assert len(stored["curve"]) == env.config.steps_per_episode + 1 == 7
    entry.write_text(json.dumps({**stored, "curve": curve}))
    reference.clear_memory()
    with pytest.raises(ValueError, match=f"reference cache entry .* is damaged \\({match}"):
        _episode(DUSEnv(preset="tiny", config=cfg), [[0, 4]], seed=0)
    entry.write_text(json.dumps({**stored, "curve": [None, *stored["curve"][1:]]}))
    reference.clear_memory()
    _episode(DUSEnv(preset="tiny", config=cfg), [[0, 4]], seed=0)  # None: a diverged value
