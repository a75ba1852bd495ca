"""Evaluation metrics (scikit-learn implementations) and the linear probe of a frozen encoder."""

from __future__ import annotations

import random
import warnings

import numpy as np

# Importing scikit-learn loads rich, whose import draws from Python's global random generator;
# the library leaves that generator as it found it.
_RANDOM_STATE = random.getstate()
try:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score
    from sklearn.preprocessing import StandardScaler, label_binarize
finally:
    random.setstate(_RANDOM_STATE)
    del _RANDOM_STATE


def accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Top-1 accuracy of class probabilities (or logits) ``probs`` of shape (N, C)."""
    return float(accuracy_score(labels, np.argmax(probs, axis=1)))


def macro_f1(labels: np.ndarray, probs: np.ndarray) -> float:
    """Macro-averaged F1 over the classes in ``range(C)``."""
    n_classes = probs.shape[1]
    return float(
        f1_score(labels, np.argmax(probs, axis=1), labels=np.arange(n_classes), average="macro",
                 zero_division=0)
    )


def mean_average_precision(labels: np.ndarray, probs: np.ndarray) -> float:
    """MAP: average precision per class (one-vs-rest), averaged over classes present in ``labels``."""
    n_classes = probs.shape[1]
    onehot = label_binarize(labels, classes=np.arange(n_classes))
    if n_classes == 2:
        onehot = np.hstack([1 - onehot, onehot])
    present = onehot.sum(axis=0) > 0
    return float(average_precision_score(onehot[:, present], probs[:, present], average="macro"))


def linear_probe_accuracy(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    eval_features: np.ndarray,
    eval_labels: np.ndarray,
    *,
    seed: int = 0,
) -> float:
    """Accuracy of a logistic-regression probe fit on frozen features of the training split.

    Features are standardised with training statistics; the probe is multinomial L2-regularised
    logistic regression (``C=1``, lbfgs, up to 500 iterations).
    """
    scaler = StandardScaler().fit(train_features)
    probe = LogisticRegression(max_iter=500, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(scaler.transform(train_features), train_labels)
    return float(probe.score(scaler.transform(eval_features), eval_labels))
