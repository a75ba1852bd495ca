"""Task suites: named sets of training tasks with a held-out part (DACBench's instance sets,
for multimodal learning).

A :class:`Task` is one full env config (dataset, model, host, budget) with a name, and
optionally a pinned pool of episode seeds. A :class:`Suite` splits its tasks into ``train``
(what a policy learns on) and ``heldout`` (what it is judged on, never trained on), and names
the seeds a training run may use for model selection (``validation_seeds``: never those of the
training pool, never held-out tasks). ``DUS-v1`` draws a task of the chosen split at every
reset (:class:`dus_env.env_v1.DUSEnvV1`).

Built-in suites (:data:`SUITES`, built on first use):

* ``synthetic-mix``: seeded synthetic tasks with 2, 3 or 4 modalities (in turn), a random one
  of them weak
  (learning-limited: many blobs per class, little separation, needed for the classes the
  others confuse), the others strong or medium. Held-out tasks use parameter values no
  training task uses: 6 or 12 classes (train: 8 or 10), a weak modality with 5 or 12 blobs per
  class (train: 6, 8 or 10) and separation in [0.50, 0.60) or (0.90, 1.00] (train:
  [0.60, 0.90]), and budgets of 260 or 500 iterations (train: 200, 300 or 400).
* ``mfeat-views``: two- and three-view sets of the real UCI digits; training on 8 view pairs,
  held out: the other 7 pairs and 4 three-view sets.
* ``real``: ``mfeat-views`` with two-view Fashion-MNIST (``fashion`` preset) held out too.
* ``mixed``: ``synthetic-mix`` and ``real`` together: both training parts (interleaved, a
  synthetic task then a real one while both last), both held-out parts (``real``'s with
  Fashion-MNIST), ``synthetic-mix``'s validation seeds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dus_env.config import (
    MFEAT_VIEWS,
    EnvConfig,
    MfeatConfig,
    ModelConfig,
    RewardConfig,
    SamplerConfig,
    SyntheticConfig,
    TrainerConfig,
)
from dus_env.errors import check_choice
from dus_env.registry import LazyValues

SPLITS: tuple[str, ...] = ("train", "heldout")


@dataclass(frozen=True)
class Task:
    """One training task: a name, its full env config and (optionally) its episode seeds."""

    name: str
    config: EnvConfig
    seeds: tuple[int, ...] | None = None
    """A pinned pool of episode seeds (None: any seed the env draws)."""
    description: str = ""

    @property
    def n_modalities(self) -> int:
        return len(self.config.modalities)


@dataclass(frozen=True)
class Suite:
    """Named tasks split into ``train`` and ``heldout``."""

    name: str
    train: tuple[Task, ...]
    heldout: tuple[Task, ...]
    validation_seeds: tuple[int, ...] = ()
    """Episode seeds for model selection on the training tasks (disjoint from their pools)."""
    description: str = ""
    rule: str = ""
    """How the held-out part differs from the training part."""

    def __post_init__(self) -> None:
        names = [t.name for t in (*self.train, *self.heldout)]
        if len(set(names)) != len(names):
            raise ValueError(f"suite {self.name!r} has duplicate task names")
        if not self.train:
            raise ValueError(f"suite {self.name!r} has no training tasks")
        pools = {s for t in self.train for s in (t.seeds or ())}
        if pools & set(self.validation_seeds):
            raise ValueError(f"suite {self.name!r}: validation seeds overlap the training pools")

    def split(self, name: str) -> tuple[Task, ...]:
        """The tasks of split ``name`` (``train`` or ``heldout``)."""
        check_choice("split", name, SPLITS)
        return self.train if name == "train" else self.heldout

    def task(self, name: str) -> Task:
        """The task called ``name`` (any split); unknown names fail with a "did you mean"."""
        tasks = {t.name: t for t in (*self.train, *self.heldout)}
        check_choice(f"task (suite {self.name!r})", name, tasks)
        return tasks[name]

    @property
    def tasks(self) -> tuple[Task, ...]:
        return (*self.train, *self.heldout)

    @property
    def max_modalities(self) -> int:
        return max(t.n_modalities for t in self.tasks)


SUITES = LazyValues("suite")
"""Every suite by name (built on first access)."""


def register_suite(name: str, builder: Callable[[], Suite], *, overwrite: bool = False) -> None:
    """Add a suite: ``builder()`` returns it."""
    SUITES.add(name, builder, overwrite=overwrite)


def get_suite(name: str) -> Suite:
    """The suite called ``name``; unknown names fail with the choices and a "did you mean"."""
    check_choice("suite", name, SUITES)
    return SUITES[name]


# --------------------------------------------------------------------------- synthetic-mix
@dataclass(frozen=True)
class _Ranges:
    n_classes: tuple[int, ...]
    weak_clusters: tuple[int, ...]
    weak_separation: tuple[tuple[float, float], ...]
    budgets: tuple[int, ...]


_TRAIN = _Ranges(n_classes=(8, 10), weak_clusters=(6, 8, 10),
                 weak_separation=((0.60, 0.90),), budgets=(200, 300, 400))
_HELDOUT = _Ranges(n_classes=(6, 12), weak_clusters=(5, 12),
                   weak_separation=((0.50, 0.60), (0.90, 1.00)), budgets=(260, 500))
SYNTHETIC_TRAIN_TASKS, SYNTHETIC_HELDOUT_TASKS = 24, 8
SEEDS_PER_TASK = 16


def synthetic_task(rng: np.random.Generator, ranges: _Ranges, name: str,
                   m: int | None = None) -> Task:
    """One task drawn from ``ranges``: ``m`` modalities (default: 2..4 at random), a random one
    of them weak."""
    m = int(rng.integers(2, 5)) if m is None else m
    n_classes = int(rng.choice(ranges.n_classes))
    weak = int(rng.integers(0, m))
    lo, hi = ranges.weak_separation[int(rng.integers(0, len(ranges.weak_separation)))]
    clusters, separation, confused, roles = [], [], [], []
    for j in range(m):
        if j == weak:
            clusters.append(int(rng.choice(ranges.weak_clusters)))
            separation.append(round(float(rng.uniform(lo, hi)), 3))
            confused.append(0)
            roles.append("weak")
        elif rng.random() < 0.7 or m == 2:  # strong: fast, but blind within class pairs
            clusters.append(1)
            separation.append(round(float(rng.uniform(2.5, 3.5)), 3))
            confused.append(n_classes // 2)
            roles.append("strong")
        else:  # medium
            clusters.append(int(rng.integers(2, 4)))
            separation.append(round(float(rng.uniform(1.2, 1.8)), 3))
            confused.append(n_classes // 4)
            roles.append("medium")
    budget = int(rng.choice(ranges.budgets))
    modalities = tuple(f"m{j}" for j in range(m))
    data = SyntheticConfig(
        modalities=modalities, n_classes=n_classes, dim=32, clusters_per_class=tuple(clusters),
        separation=tuple(separation), confused_pairs=tuple(confused), n_train=12000,
        n_val=1000, n_test=2000, seed=int(rng.integers(0, 2**31 - 1)),
    )
    config = EnvConfig(
        data=data, model=ModelConfig(feature_dim=8),
        trainer=TrainerConfig(fusion_weight=2.0),
        sampler=SamplerConfig(), reward=RewardConfig(val_subset_size=0),
        total_iterations=budget, iters_per_step=20,
    )
    description = (f"M={m}, {n_classes} classes, {budget} iterations; "
                   + ", ".join(f"{r} (blobs {c}, separation {s})"
                               for r, c, s in zip(roles, clusters, separation)))
    return Task(name=name, config=config, description=description)


def _synthetic_mix() -> Suite:
    rng = np.random.default_rng(20261201)
    train = []
    for i in range(SYNTHETIC_TRAIN_TASKS):
        task = synthetic_task(rng, _TRAIN, f"mix-train-{i:02d}", m=2 + i % 3)
        seeds = tuple(range(i * 1000, i * 1000 + SEEDS_PER_TASK))
        train.append(Task(task.name, task.config, seeds, task.description))
    heldout = [synthetic_task(rng, _HELDOUT, f"mix-heldout-{i:02d}", m=2 + i % 3)
               for i in range(SYNTHETIC_HELDOUT_TASKS)]
    return Suite(
        name="synthetic-mix", train=tuple(train), heldout=tuple(heldout),
        validation_seeds=tuple(range(900_000, 900_004)),
        description="seeded synthetic tasks, M in 2..4, a random modality weak",
        rule="held out: 6 or 12 classes (train 8, 10); weak blobs 5 or 12 (train 6, 8, 10); "
             "weak separation in [0.50, 0.60) or (0.90, 1.00] (train [0.60, 0.90]); budget "
             "260 or 500 iterations (train 200, 300, 400)",
    )


# --------------------------------------------------------------------------- mfeat-views
MFEAT_TRAIN_PAIRS: tuple[tuple[str, str], ...] = (
    ("fou", "fac"), ("fou", "pix"), ("fou", "zer"), ("fac", "kar"), ("fac", "mor"),
    ("kar", "pix"), ("kar", "mor"), ("zer", "mor"),
)
MFEAT_HELDOUT_TRIPLES: tuple[tuple[str, str, str], ...] = (
    ("fou", "kar", "mor"), ("fac", "pix", "zer"), ("fou", "fac", "zer"), ("kar", "pix", "mor"),
)


def mfeat_task(views: Sequence[str]) -> Task:
    config = EnvConfig(
        data=MfeatConfig(views=tuple(views)),
        sampler=SamplerConfig(base_batch_size=32, min_batch_size=16, max_batch_size=64),
        reward=RewardConfig(val_subset_size=0), total_iterations=300, iters_per_step=15,
    )
    return Task(name="mfeat-" + "+".join(views), config=config,
                description=f"UCI digits, views {' + '.join(views)}")


def _mfeat_views() -> Suite:
    pairs = [p for p in itertools.combinations(MFEAT_VIEWS, 2) if p not in MFEAT_TRAIN_PAIRS]
    train = [Task(t.name, t.config, tuple(range(i * 1000, i * 1000 + SEEDS_PER_TASK)),
                  t.description)
             for i, t in enumerate(mfeat_task(p) for p in MFEAT_TRAIN_PAIRS)]
    heldout = [mfeat_task(p) for p in pairs] + [mfeat_task(t) for t in MFEAT_HELDOUT_TRIPLES]
    return Suite(name="mfeat-views", train=tuple(train), heldout=tuple(heldout),
                 validation_seeds=tuple(range(900_000, 900_004)),
                 description="UCI Multiple Features: two- and three-view sets",
                 rule=f"held out: the {len(pairs)} view pairs not trained on and "
                      f"{len(MFEAT_HELDOUT_TRIPLES)} three-view sets")


def fashion_task(noise: float | None = None) -> Task:
    """Two-view Fashion-MNIST (the ``fashion`` preset; ``noise`` of view 2 if given)."""
    import dataclasses

    from dus_env.config import get_preset

    config = get_preset("fashion")
    name = "fashion"
    if noise is not None:
        config = config.replace(data=dataclasses.replace(config.data, noise=noise))
        name = f"fashion-noise{noise:g}"
    return Task(name=name, config=config,
                description="two-view Fashion-MNIST, small CNNs from scratch (needs the data: "
                            "dataset-fashion-mnist or data.root)")


def _real() -> Suite:
    views = _mfeat_views()
    return Suite(name="real", train=views.train, heldout=(*views.heldout, fashion_task()),
                 validation_seeds=views.validation_seeds,
                 description="the real-data tasks: mfeat-views, and two-view Fashion-MNIST "
                             "held out",
                 rule=f"{views.rule}; and two-view Fashion-MNIST (real pixels, CNNs)")


def _mixed() -> Suite:
    synthetic, real = _synthetic_mix(), _real()
    # interleaved, so that a validation slice over the first K training tasks holds both kinds
    train = [t for pair in itertools.zip_longest(synthetic.train, real.train) for t in pair
             if t is not None]
    return Suite(name="mixed", train=tuple(train), heldout=(*synthetic.heldout, *real.heldout),
                 validation_seeds=synthetic.validation_seeds,
                 description="synthetic-mix and the real-data tasks together",
                 rule=f"{synthetic.name}'s held-out tasks and {real.name}'s ({real.rule})")


register_suite("synthetic-mix", _synthetic_mix)
register_suite("mfeat-views", _mfeat_views)
register_suite("real", _real)
register_suite("mixed", _mixed)


def suite_table() -> str:
    """A Markdown table of every suite (docs)."""
    lines = ["| suite | train tasks | held-out tasks | held-out rule |", "|---|---|---|---|"]
    for name in SUITES:
        s = SUITES[name]
        lines.append(f"| `{name}` | {len(s.train)} | {len(s.heldout)} | {s.rule} |")
    return "\n".join(lines)


def tiny_suite() -> Suite:
    """A suite of two tiny tasks (2 and 3 modalities, 60 iterations) for tests and smoke runs."""
    base = dict(n_classes=4, dim=8, n_train=512, n_val=128, n_test=128)
    two = SyntheticConfig(modalities=("a", "b"), clusters_per_class=(1, 2), separation=(3.0, 1.5),
                          confused_pairs=(2, 0), **base)
    three = SyntheticConfig(modalities=("a", "b", "c"), clusters_per_class=(2, 1, 2),
                            separation=(1.5, 3.0, 1.5), confused_pairs=(0, 2, 1), **base)
    common: dict[str, Any] = dict(
        model=ModelConfig(hidden_dims=(32,), feature_dim=16),
        sampler=SamplerConfig(base_batch_size=16, min_batch_size=8, max_batch_size=32),
        reward=RewardConfig(val_subset_size=0), total_iterations=60, iters_per_step=10)
    train = (Task("tiny-2", EnvConfig(data=two, **common), seeds=(0, 1, 2, 3)),
             Task("tiny-3", EnvConfig(data=three, **common), seeds=(10, 11, 12, 13)))
    heldout = (Task("tiny-3b", EnvConfig(data=SyntheticConfig(
        modalities=("x", "y", "z"), clusters_per_class=(1, 2, 2), separation=(3.0, 1.2, 1.5),
        confused_pairs=(2, 0, 1), **base), **common)),)
    return Suite(name="tiny", train=train, heldout=heldout, validation_seeds=(100, 101),
                 description="two tiny synthetic tasks (tests)",
                 rule="held out: a third tiny task with other parameters")


register_suite("tiny", tiny_suite)


__all__ = ["SPLITS", "SUITES", "Suite", "Task", "get_suite", "register_suite", "suite_table",
           "synthetic_task"]
