"""The observation layout: sizes, slices, bounds, encoding and decoding by name."""

from __future__ import annotations

import numpy as np
import pytest

from dus_env.config import MonitorConfig, SamplerConfig, get_preset
from dus_env.spaces import PARTS, ObservationLayout


def test_layout_sizes_slices_and_bounds():
    layout = ObservationLayout(n_modalities=3, history_length=4, discrepancy="gap", n_actions=5)
    assert layout.sizes() == dict(zip(PARTS, (12, 12, 3, 1, 3)))
    assert layout.size == 31
    slices = layout.slices()
    assert slices["history_scores"] == slice(0, 12) and slices["previous_action"] == slice(28, 31)
    low, high = layout.bounds()
    assert low[slices["history_discrepancy"]].tolist() == [-1.0] * 12
    assert high.max() == 1.0 and low[slices["history_scores"]].min() == 0.0
    ratio = ObservationLayout(3, 4, "ratio", 5)
    assert ratio.bounds()[1][slices["history_discrepancy"]].max() == 10.0
    assert layout.action_space().nvec.tolist() == [5, 5, 5]


def test_from_config_and_for_parts_read_each_field_from_its_setting():
    # tiny: 2 modalities, H=4 gap history, the 5-value grid 0.5 .. 2 as indices
    assert ObservationLayout.from_config(get_preset("tiny")) == ObservationLayout(
        n_modalities=2, history_length=4, discrepancy="gap", n_actions=5, action_mode="grid",
        multiplier_range=(0.5, 2.0))
    assert ObservationLayout.from_config(get_preset("tiny")).size == 2 * 4 * 2 + 2 + 1 + 2 == 21
    # none of the defaults: each field follows its own setting
    cfg = get_preset("tiny").replace(
        monitor=MonitorConfig(history_length=3, discrepancy="ratio"),
        sampler=SamplerConfig(multipliers=(0.25, 1.0, 4.0), action="multipliers"))
    assert ObservationLayout.from_config(cfg) == ObservationLayout(
        n_modalities=2, history_length=3, discrepancy="ratio", n_actions=3,
        action_mode="multipliers", multiplier_range=(0.25, 4.0))
    assert ObservationLayout.for_parts(4, MonitorConfig(history_length=2),
                                       SamplerConfig()).size == 2 * 2 * 4 + 2 * 4 + 1


def test_decode_splits_by_name_for_single_and_batched_observations():
    layout = ObservationLayout(n_modalities=2, history_length=3, discrepancy="gap", n_actions=5)
    obs = np.arange(layout.size, dtype=np.float32)
    parts = layout.decode(obs)
    assert parts["history_scores"].shape == (3, 2)
    assert parts["history_scores"][-1].tolist() == [4.0, 5.0]
    assert layout.cumulative_scores(obs).tolist() == [4.0, 5.0]
    assert parts["progress"].tolist() == [14.0]
    batch = np.stack([obs, obs + 1])
    assert layout.decode(batch)["history_discrepancy"].shape == (2, 3, 2)
    with pytest.raises(ValueError, match="needs 17"):
        layout.decode(np.zeros(16))


@pytest.mark.parametrize("kind", ["gap", "ratio"])
def test_observation_replaces_non_finite_values_and_clips_like_numpy(kind):
    from dus_env.config import get_preset
    from dus_env.monitor import MonitorState
    from dus_env.spaces import ObservationLayout

    cfg = get_preset("tiny")
    cfg = cfg.replace(monitor=MonitorConfig(history_length=2, discrepancy=kind))
    layout = ObservationLayout.from_config(cfg)
    nan, inf = float("nan"), float("inf")
    rows_s = ((nan, 1.5), (-0.2, 0.3))
    rows_d = ((inf, -inf), (12.0, -3.0))
    state = MonitorState(1, (0.1, 0.2), (0.1, 0.2), (0.0, 0.0), (1.0, 1.0), rows_s, rows_d)
    obs = layout.encode(state, [1.2, nan], 0.5, [0, layout.n_actions - 1])
    raw = np.array([*np.ravel(rows_s), *np.ravel(rows_d), 1.2, nan, 0.5, 0.0, 1.0])
    low, high = layout.bounds()
    want = np.clip(np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0), low, high)
    assert obs.dtype == np.float32 and np.array_equal(obs, want.astype(np.float32))
    assert layout.observation_space().contains(obs)
    with pytest.raises(ValueError, match="needs 13"):
        layout.encode(state, [0.1], 0.5, [0, 0])
