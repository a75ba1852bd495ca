import numpy as np
import pytest

from dus_env.config import MonitorConfig
from dus_env.monitor import DiscrepancyMonitor, discrepancy


def test_running_mean_matches_hand_computed_values():
    mon = DiscrepancyMonitor(MonitorConfig(history_length=3), n_modalities=2, prior=0.1)
    expected = [0.2, 0.3, 0.4]
    for s, want in zip([0.2, 0.4, 0.6], expected):
        cumulative = mon.update([s, 0.5])
        assert cumulative == pytest.approx([want, 0.5])
        assert mon.state.cumulative_scores == pytest.approx([want, 0.5])
        assert mon.state.batch_scores == pytest.approx([s, 0.5])


def test_ema_variant():
    mon = DiscrepancyMonitor(MonitorConfig(average="ema", ema_beta=0.5), 2, prior=0.1)
    mon.update([0.2, 0.2])
    assert mon.update([0.6, 0.2])[0] == pytest.approx(0.5 * 0.2 + 0.5 * 0.6)


def test_gap_and_ratio_for_three_modalities():
    gap, ratio = discrepancy(np.array([0.9, 0.6, 0.3]))
    assert gap == pytest.approx([0.9 - 0.45, 0.6 - 0.6, 0.3 - 0.75])
    assert ratio == pytest.approx([0.9 / 0.45, 1.0, 0.3 / 0.75])


def test_history_is_fixed_length_oldest_first_and_padded():
    mon = DiscrepancyMonitor(MonitorConfig(history_length=3), 2, prior=0.25)
    state = mon.reset()
    assert state.history_scores.shape == (3, 2)
    assert np.allclose(state.history_scores, 0.25)
    for s in (0.2, 0.4, 0.6, 0.8):
        mon.update([s, s])
        state = mon.record()
    # running means after each record: 0.2, 0.3, 0.4, 0.5 -> last three kept
    assert state.history_scores[:, 0] == pytest.approx([0.3, 0.4, 0.5])
    assert state.history_discrepancy.shape == (3, 2)


def test_update_rejects_wrong_shape_and_m_below_two():
    mon = DiscrepancyMonitor(MonitorConfig(), 2, prior=0.5)
    with pytest.raises(ValueError, match="expected \\(2,\\)"):
        mon.update([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="at least 2"):
        DiscrepancyMonitor(MonitorConfig(), 1, prior=0.5)


def test_state_arrays_are_read_only_views_of_the_values_and_snapshots():
    mon = DiscrepancyMonitor(MonitorConfig(history_length=2), 2, prior=0.5)
    mon.update([0.2, 0.6])
    state = mon.record()
    assert state.cumulative_scores.tolist() == list(state.cumulative_values) == [0.2, 0.6]
    assert state.gap.tolist() == pytest.approx([-0.4, 0.4])
    assert state.history_scores.tolist() == [[0.5, 0.5], [0.2, 0.6]]
    with pytest.raises(ValueError, match="read-only"):
        state.history_scores[0, 0] = 1.0
    mon.update([1.0, 1.0])
    mon.record()  # a later record leaves the earlier state as it was
    assert state.history_scores.tolist() == [[0.5, 0.5], [0.2, 0.6]]
    assert state.iteration == 1
