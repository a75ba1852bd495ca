"""The plain-loop controller (dus_env.replay) reproduces the env's decisions exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils import seeding
from torch.utils.data import DataLoader

from dus_agents.heuristic import HeuristicPolicy, RandomPolicy, UniformPolicy
from dus_env.config import get_preset
from dus_env.data import make_dataset
from dus_env.env import DUSEnv
from dus_env.replay import DUSBatchSampler, SamplingController, batch_score
from dus_env.sampler import Batch, ModalitySampler
from dus_env.spaces import ObservationLayout
from dus_env.trainer import MMLTrainer


def _policy(name: str, layout: ObservationLayout, multipliers, seed: int):
    if name == "heuristic":
        return HeuristicPolicy(layout, multipliers)
    if name == "random":
        return RandomPolicy(layout, multipliers, seed=seed)
    return UniformPolicy(layout, multipliers)


def _env_run(host: str, policy_name: str, seed: int):
    """Observations, batch sizes per step and the final model of one env episode."""
    env = DUSEnv(config={"trainer": {"host": host}}, preset="tiny")
    policy = _policy(policy_name, env.layout, env.config.sampler.multipliers, seed)
    obs, _ = env.reset(seed=seed)
    observations, sizes, done = [], [], False
    while not done:
        observations.append(obs)
        action, _ = policy.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        sizes.append(info["batch_sizes"])
        done = terminated or truncated
    return env, observations, sizes, info


def _plain_run(config, host: str, policy_name: str, seed: int, feed: str):
    """The same run rebuilt as an ordinary loop: trainer + DUSBatchSampler + controller."""
    dataset = make_dataset(config.data)
    model_seed, sampler_seed = DUSEnv.episode_seeds(seeding.np_random(seed)[0])
    trainer = MMLTrainer.build(config.trainer, config.model, dataset,
                               config.sampler.base_batch_size, model_seed, config.device)
    layout = ObservationLayout.from_config(config)
    controller = SamplingController.from_config(
        config, _policy(policy_name, layout, config.sampler.multipliers, seed))
    train = dataset.split("train")
    windows = DUSBatchSampler(controller, len(train), np.random.default_rng(sampler_seed),
                              fusion=host not in ("mla", "unimodal"))  # no paired loss there
    for window in windows:
        idx = np.asarray(window)
        sizes, fusion = windows.batch_sizes, windows.fusion_size
        batch = Batch(
            inputs={m: train.get(m, idx[: max(sizes[m], fusion)]) for m in dataset.modalities},
            labels=train.labels[torch.as_tensor(idx)],
            batch_sizes=sizes, fusion_size=fusion, epoch=windows.window_epoch,
        )
        if feed == "logits":
            trainer.model.train()
            out = trainer.host.step(trainer.model, trainer.optimizer, batch)
            controller.observe({m: (out.unimodal_logits[m], batch.labels[: sizes[m]])
                                for m in dataset.modalities})
        else:
            controller.observe_scores(trainer.train_step(batch).batch_scores)
    return trainer, controller, windows


@pytest.mark.parametrize("host,policy_name,feed", [
    ("joint", "heuristic", "logits"),
    ("joint", "heuristic", "scores"),
    ("mla", "heuristic", "logits"),
    ("ogm_ge", "random", "logits"),
])
def test_plain_loop_matches_env_decisions(host, policy_name, feed):
    seed = 3
    env, observations, env_sizes, last_info = _env_run(host, policy_name, seed)
    trainer, controller, windows = _plain_run(env.config, host, policy_name, seed, feed)

    assert len(controller.decisions) == env.config.steps_per_episode == len(env_sizes)
    for k, (decision, obs, sizes) in enumerate(zip(controller.decisions, observations, env_sizes)):
        assert decision.iteration == k * env.config.iters_per_step
        np.testing.assert_array_equal(decision.observation, obs, err_msg=f"decision {k}")
        assert decision.batch_sizes == sizes, f"decision {k}"
    assert windows.samples_consumed == last_info["samples_consumed"]
    assert windows.paired_consumed == last_info["paired_consumed"]
    assert controller.done
    # the two runs trained identically
    for name, value in env.trainer.model.state_dict().items():
        torch.testing.assert_close(trainer.model.state_dict()[name], value, rtol=0, atol=0)
    if policy_name == "heuristic" and host == "joint":
        assert any(len(set(d.batch_sizes.values())) > 1 for d in controller.decisions), \
            "the heuristic never skewed the sizes: the comparison is vacuous"


def test_uniform_controller_gives_base_sizes():
    config = get_preset("tiny")
    layout = ObservationLayout.from_config(config)
    controller = SamplingController.from_config(
        config, UniformPolicy(layout, config.sampler.multipliers))
    base = config.sampler.base_batch_size
    rng = np.random.default_rng(0)
    for _ in range(config.total_iterations + 5):  # past the budget: no more decisions
        assert controller.batch_sizes == dict.fromkeys(config.modalities, base)
        controller.observe_scores({m: float(rng.uniform()) for m in config.modalities})
    assert len(controller.decisions) == config.steps_per_episode
    assert [d.iteration for d in controller.decisions] == list(
        range(0, config.total_iterations, config.iters_per_step))


def test_decision_schedule_and_reset():
    config = get_preset("tiny")
    layout = ObservationLayout.from_config(config)
    controller = SamplingController(
        HeuristicPolicy(layout, config.sampler.multipliers), config.modalities, config.sampler,
        config.monitor, n_classes=4, total_iterations=25, iters_per_step=10,
    )
    made = [controller.observe_scores({"strong": 0.9, "weak": 0.3}) for _ in range(25)]
    assert [i + 1 for i, m in enumerate(made) if m] == [10, 20]
    assert controller.done and controller.steps_per_episode == 3
    # after warm-up the heuristic gives the weaker modality more samples
    assert controller.batch_sizes["weak"] > controller.batch_sizes["strong"]
    controller.reset()
    assert controller.iteration == 0 and len(controller.decisions) == 1


def test_batch_score_is_mean_true_class_probability():
    logits = torch.tensor([[0.0, 0.0], [np.log(3.0), 0.0]])
    labels = torch.tensor([0, 1])
    assert batch_score(logits, labels) == pytest.approx((0.5 + 0.25) / 2)


def test_batch_sampler_windows_equal_modality_sampler():
    config = get_preset("tiny")
    dataset = make_dataset(config.data)
    train = dataset.split("train")
    layout = ObservationLayout.from_config(config)
    controller = SamplingController.from_config(
        config, RandomPolicy(layout, config.sampler.multipliers, seed=1))
    windows = DUSBatchSampler(controller, len(train), 7)
    reference = ModalitySampler(config.sampler, config.modalities, train,
                                np.random.default_rng(7))
    loader = DataLoader(torch.utils.data.TensorDataset(train.labels), batch_sampler=windows)
    for i, (labels,) in enumerate(loader):
        ref = reference.next_batch(tuple(windows.batch_sizes[m] for m in config.modalities))
        torch.testing.assert_close(labels, ref.labels)
        assert windows.fusion_size == ref.fusion_size
        controller.observe_scores({"strong": 0.5, "weak": 0.5})
    assert i + 1 == len(windows) == config.total_iterations
    assert windows.samples_consumed == reference.samples_consumed
    assert windows.epoch == pytest.approx(reference.epoch)


def test_controller_leaves_global_rng_alone():
    config = get_preset("tiny")
    layout = ObservationLayout.from_config(config)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    controller = SamplingController.from_config(
        config, HeuristicPolicy(layout, config.sampler.multipliers))
    windows = DUSBatchSampler(controller, 100, 0)
    for _ in windows:
        controller.observe({m: (torch.zeros(3, 4), torch.tensor([0, 1, 2]))
                            for m in config.modalities})
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()


# ----------------------------------------------------------------------------- bad input
class _BadPolicy:
    def __init__(self, action):
        self.action = action

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.asarray(self.action), state


def _controller(policy=None, **changes):
    config = get_preset("tiny")
    layout = ObservationLayout.from_config(config)
    policy = policy or UniformPolicy(layout, config.sampler.multipliers)
    kwargs = dict(modalities=config.modalities, sampler=config.sampler, monitor=config.monitor,
                  n_classes=4, total_iterations=60, iters_per_step=10)
    kwargs.update(changes)
    return SamplingController(policy, **kwargs)


def test_policy_without_predict_is_rejected():
    with pytest.raises(TypeError, match="predict"):
        _controller(policy=object())


@pytest.mark.parametrize("action,match", [
    ([0, 9], r"out of range; valid range: integers in \[0, 4\]"),
    ([0, 1, 2], "expected 2 integer indices"),
    ([0.5, 1.0], "expected 2 integer indices"),
])
def test_bad_policy_actions_are_reported(action, match):
    with pytest.raises(ValueError, match=match):
        _controller(policy=_BadPolicy(action))


@pytest.mark.parametrize("changes,match", [
    ({"n_classes": 1}, "n_classes=1 is out of range"),
    ({"total_iterations": 0}, "total_iterations=0 is out of range"),
    ({"iters_per_step": 61}, "iters_per_step=61 is out of range"),
    ({"modalities": ("a",)}, "at least 2 distinct"),
])
def test_bad_constructor_arguments(changes, match):
    with pytest.raises(ValueError, match=match):
        _controller(**changes)


@pytest.mark.parametrize("changes,match", [
    ({"n_classes": 4.5}, r"n_classes=4.5 has type float; expected an integer"),
    ({"n_classes": "10"}, r"n_classes='10' has type str; expected an integer"),
    ({"total_iterations": 40.7}, r"total_iterations=40.7 has type float"),
    ({"iters_per_step": 2.5}, r"iters_per_step=2.5 has type float"),
    ({"modalities": "ab"}, r"modalities='ab' must be a sequence of names"),
    ({"modalities": ("a", 2)}, r"must hold strings; got 2 \(int\)"),
])
def test_arguments_of_the_wrong_type_are_named(changes, match):
    with pytest.raises(TypeError, match=match):
        _controller(**changes)
    assert _controller(n_classes=np.int64(4)).n_classes == 4  # numpy integers are integers


def test_scores_and_labels_out_of_range_are_reported():
    controller = _controller()
    with pytest.raises(ValueError, match=r"scores\['strong'\]=5.0 is out of range; valid: a "
                                         r"probability in \[0, 1\]"):
        controller.observe_scores({"strong": 5.0, "weak": 0.5})
    with pytest.raises(ValueError, match=r"outputs\['weak'\] has labels in \[0, 7\]; valid: "
                                         r"class indices in \[0, 3\]"):
        controller.observe({"strong": (torch.zeros(3, 4), torch.zeros(3, dtype=torch.long)),
                            "weak": (torch.zeros(3, 4), torch.tensor([0, 1, 7]))})
    assert controller.iteration == 0  # nothing half-fed
    controller.observe_scores({"strong": float("nan"), "weak": 0.5})  # a diverged iteration
    assert controller.iteration == 1


def test_bad_observations_are_reported():
    controller = _controller()
    with pytest.raises(ValueError, match=r"one entry per modality \['strong', 'weak'\]; got \['strong'\]"):
        controller.observe_scores({"strong": 0.5})
    with pytest.raises(ValueError, match="do not match"):
        controller.observe({"strong": (torch.zeros(3, 4), torch.zeros(2, dtype=torch.long)),
                            "weak": (torch.zeros(3, 4), torch.zeros(3, dtype=torch.long))})
    with pytest.raises(TypeError, match=r"outputs\['strong'\] must be a \(logits, labels\) pair"):
        controller.observe({"strong": torch.zeros(3, 4), "weak": torch.zeros(3, 4)})
    assert controller.iteration == 0


def test_from_config_needs_n_classes_for_mfeat():
    config = get_preset("mfeat")
    layout = ObservationLayout.from_config(config)
    policy = UniformPolicy(layout, config.sampler.multipliers)
    with pytest.raises(ValueError, match="pass n_classes"):
        SamplingController.from_config(config, policy)
    assert SamplingController.from_config(config, policy, n_classes=10).n_classes == 10


def test_batch_sampler_bad_generator():
    with pytest.raises(TypeError, match="numpy Generator or an int seed"):
        DUSBatchSampler(_controller(), 100, torch.Generator())


def test_batch_sampler_rejects_what_is_not_a_controller():
    with pytest.raises(TypeError, match=r"controller has type object; expected a "
                                        r"SamplingController"):
        DUSBatchSampler(object(), 100, 0)


def test_batch_sampler_needs_a_dataset_as_large_as_the_largest_batch():
    controller = _controller()  # tiny: max_batch_size=32
    with pytest.raises(ValueError, match=r"n_samples=10 is smaller than the largest batch "
                                         r"\(max_batch_size=32\).*valid: n_samples >= 32"):
        DUSBatchSampler(controller, 10, 0)
    windows = DUSBatchSampler(controller, 32, 0)  # exactly the largest batch fits
    for window in windows:
        assert len(set(window)) == len(window), "a window repeated rows"
        controller.observe_scores({"strong": 0.5, "weak": 0.5})


def _observe_window(controller, windows, y):
    sizes = windows.batch_sizes
    return controller.observe({m: (torch.zeros(sizes[m], 4), y[: sizes[m]]) for m in sizes})


def test_batch_sampler_refuses_a_dataloader_that_draws_ahead():
    """Workers prefetch windows before the controller has seen the iteration that decides
    their sizes; the sampler must refuse instead of handing out stale batch sizes."""
    controller = _controller(HeuristicPolicy(ObservationLayout.from_config(get_preset("tiny")),
                                             get_preset("tiny").sampler.multipliers))
    windows = DUSBatchSampler(controller, 200, 0)
    data = torch.utils.data.TensorDataset(torch.arange(200) % 4)
    with pytest.raises(RuntimeError, match=r"before the controller observed the previous one.*"
                                           r"num_workers=0"):
        for (y,) in DataLoader(data, batch_sampler=windows, num_workers=1):
            _observe_window(controller, windows, y)
    # drawing by hand without observing is refused the same way
    windows = DUSBatchSampler(controller, 200, 0)
    windows.next_window()
    with pytest.raises(RuntimeError, match="num_workers=0"):
        windows.next_window()


def test_batch_sampler_over_several_loader_epochs_and_past_the_budget():
    controller = _controller(RandomPolicy(ObservationLayout.from_config(get_preset("tiny")),
                                          get_preset("tiny").sampler.multipliers, seed=0))
    windows = DUSBatchSampler(controller, 200, 0, n_iterations=25)  # budget: 60 iterations
    loader = DataLoader(torch.utils.data.TensorDataset(torch.arange(200) % 4),
                        batch_sampler=windows)  # num_workers=0
    for _ in range(3):  # 75 iterations: the last 15 past the budget, still observed
        for (y,) in loader:
            assert len(y) == max(max(windows.batch_sizes.values()), windows.fusion_size)
            _observe_window(controller, windows, y)
    assert controller.iteration == 75 and controller.done
    assert len(controller.decisions) == controller.steps_per_episode
    last = controller.batch_sizes
    for (y,) in loader:  # the budget is spent: sizes are final, observing is optional
        assert windows.batch_sizes == last
    controller.reset()  # a new run on the same sampler
    for (y,) in loader:
        _observe_window(controller, windows, y)
    assert controller.iteration == 25
    controller.reset()
    windows.next_window()  # drawn at iteration 0, then that run is abandoned unobserved
    controller.reset()
    assert len(windows.next_window()) == max(max(controller.batch_sizes.values()), 16)


def test_observe_takes_numpy_outputs_like_tensors():
    rng = np.random.default_rng(0)
    logits = {m: rng.normal(size=(5, 4)).astype(np.float32) for m in ("strong", "weak")}
    labels = {m: rng.integers(0, 4, 5) for m in ("strong", "weak")}
    as_numpy, as_torch = _controller(), _controller()
    as_numpy.observe({m: (logits[m], labels[m]) for m in logits})
    as_torch.observe({m: (torch.as_tensor(logits[m]), torch.as_tensor(labels[m]))
                      for m in logits})
    assert as_numpy.iteration == 1
    assert as_numpy.monitor_state.batch_values == as_torch.monitor_state.batch_values
    np.testing.assert_array_equal(as_numpy.observation(), as_torch.observation())


def test_bad_logits_name_the_modality():
    controller = _controller()
    good = (torch.zeros(3, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"outputs\['weak'\]: logits has 0 rows"):
        controller.observe({"strong": good, "weak": (torch.zeros(0, 4), torch.zeros(0))})
    with pytest.raises(ValueError, match=r"outputs\['strong'\]: logits of shape \(4,\) and "
                                         r"labels of shape \(1,\) do not match"):
        controller.observe({"strong": (torch.zeros(4), torch.zeros(1)), "weak": good})
    with pytest.raises(TypeError, match=r"outputs\['weak'\] logits has type NoneType; expected "
                                        r"a torch.Tensor, a numpy array"):
        controller.observe({"strong": good, "weak": (None, torch.zeros(3))})
    with pytest.raises(TypeError, match=r"outputs\['weak'\] labels has type str"):
        controller.observe({"strong": good, "weak": (torch.zeros(3, 4), "abc")})
    with pytest.raises(TypeError, match=r"outputs\['strong'\] logits have dtype torch.int64; "
                                        r"expected floating-point"):
        controller.observe({"strong": (torch.zeros(3, 4, dtype=torch.long), good[1]),
                            "weak": good})
    assert controller.iteration == 0  # nothing half-fed
