"""Metrics: hand-computed accuracy, macro-F1 and MAP, and the linear probe."""

from __future__ import annotations

import numpy as np
import pytest

from dus_env import metrics


def test_accuracy_and_macro_f1_hand_computed():
    labels = np.array([0, 0, 1, 2])
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    assert metrics.accuracy(labels, probs) == 0.75
    # per class F1: class 0: P=1, R=0.5 -> 2/3; class 1: P=0.5, R=1 -> 2/3; class 2: 1
    assert metrics.macro_f1(labels, probs) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_mean_average_precision_hand_computed_and_binary():
    labels = np.array([0, 1, 1])
    probs = np.array([[0.8, 0.2], [0.4, 0.6], [0.6, 0.4]])
    # class 0 (positive: row 0): ranked first -> AP 1; class 1 (rows 1, 2): scores 0.6, 0.4
    # against 0.2 -> both ranked above the negative -> AP 1
    assert metrics.mean_average_precision(labels, probs) == pytest.approx(1.0)
    probs = np.array([[0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
    # class 0: positive row 0 has the lowest score of 3 -> precision at its rank 1/3
    # class 1: positives rows 1, 2 at ranks 2, 3 -> (1/2 + 2/3) / 2
    want = (1 / 3 + (1 / 2 + 2 / 3) / 2) / 2
    assert metrics.mean_average_precision(labels, probs) == pytest.approx(want)


def test_linear_probe_separates_separable_features_and_not_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    good = np.eye(3)[labels] * 5 + rng.normal(size=(300, 3))
    noise = rng.normal(size=(300, 3))
    assert metrics.linear_probe_accuracy(good[:200], labels[:200], good[200:], labels[200:]) > 0.95
    assert metrics.linear_probe_accuracy(noise[:200], labels[:200], noise[200:],
                                         labels[200:]) < 0.6
