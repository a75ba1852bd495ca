"""DUS in an ordinary PyTorch training loop: no Gymnasium, no env, your own model.

A policy (the DUS heuristic by default, the pretrained generalist, or one trained with
``dus-train``) sets each modality's batch size every ``iters_per_step`` iterations through the
controller :func:`dus_agents.make_controller` builds;
:class:`dus_env.replay.DUSBatchSampler` hands a ``DataLoader`` one window of paired indices per
iteration, of which modality ``j`` trains on the first ``batch_sizes[j]`` rows and the fusion
head on the first ``fusion_size`` rows.

Usage::

    python examples/plain_loop.py                      # DUS-H on the default synthetic data
    python examples/plain_loop.py --policy uniform     # the plain baseline
    python examples/plain_loop.py --policy pretrained  # the generalist shipped with dus-env
    python examples/plain_loop.py --policy ppo:runs/NAME   # a dus-train run
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from dus_agents import make_controller
from dus_env.config import PRESETS, get_preset
from dus_env.data import make_dataset
from dus_env.replay import DUSBatchSampler


class Net(nn.Module):
    """One MLP encoder and one linear head per modality, and a concat-fusion head."""

    def __init__(self, in_dims: dict[str, int], n_classes: int, hidden: int = 128,
                 feature: int = 64) -> None:
        super().__init__()
        modalities = self.modalities = tuple(in_dims)
        self.encoders = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, feature), nn.ReLU())
            for m, d in in_dims.items()
        })
        self.heads = nn.ModuleDict({m: nn.Linear(feature, n_classes) for m in modalities})
        self.fusion = nn.Linear(feature * len(modalities), n_classes)

    def forward(self, inputs: dict[str, torch.Tensor]):
        features = {m: self.encoders[m](x) for m, x in inputs.items()}
        logits = {m: self.heads[m](f) for m, f in features.items()}
        return features, logits


@torch.no_grad()
def test_accuracy(model: Net, split, modalities) -> dict[str, float]:
    model.eval()
    inputs = {m: split.get(m, np.arange(len(split))) for m in modalities}
    features, logits = model(inputs)
    fused = model.fusion(torch.cat([features[m] for m in modalities], dim=1))
    out = {"fused": float((fused.argmax(1) == split.labels).float().mean())}
    out.update({m: float((logits[m].argmax(1) == split.labels).float().mean()) for m in modalities})
    model.train()
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="heuristic",
                        help="heuristic, heuristic-grid, uniform, random, pretrained, or "
                             "ppo:PATH / reinforce:PATH")
    parser.add_argument("--preset", default="default", choices=list(PRESETS),
                        help="dataset, batch-size grid and iteration budget")
    parser.add_argument("--seed", type=int, default=0, help="model and data-order seed")
    parser.add_argument("--print-every", type=int, default=50, help="iterations between prints")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    config = get_preset(args.preset)
    dataset = make_dataset(config.data)
    modalities = dataset.modalities
    train, test = dataset.split("train"), dataset.split("test")

    torch.manual_seed(args.seed)  # a script may seed globally; the library never does
    model = Net({m: dataset.input_shapes[m][0] for m in modalities}, dataset.n_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)

    try:  # the policy's grid and layout, this loop's modalities, classes and budget
        controller = make_controller(modalities, dataset.n_classes, config.total_iterations,
                                     args.policy, iters_per_step=config.iters_per_step,
                                     base_batch_size=config.sampler.base_batch_size,
                                     min_batch_size=config.sampler.min_batch_size,
                                     max_batch_size=config.sampler.max_batch_size,
                                     seed=args.seed)
    except (OSError, ValueError) as err:
        parser.error(f"--policy={args.policy!r}: {err}")
    sampler = DUSBatchSampler(controller, len(train), np.random.default_rng(args.seed))
    everything = np.arange(len(train))
    loader = DataLoader(
        TensorDataset(*(train.get(m, everything) for m in modalities), train.labels),
        batch_sampler=sampler,
    )

    for it, (*xs, y) in enumerate(loader, start=1):
        sizes, n_fusion = sampler.batch_sizes, sampler.fusion_size
        features, logits = model({m: x for m, x in zip(modalities, xs)})
        losses = {m: F.cross_entropy(logits[m][: sizes[m]], y[: sizes[m]]) for m in modalities}
        fused = model.fusion(torch.cat([features[m][:n_fusion] for m in modalities], dim=1))
        loss = sum(losses.values()) + F.cross_entropy(fused, y[:n_fusion])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        controller.observe({m: (logits[m][: sizes[m]].detach(), y[: sizes[m]])
                            for m in modalities})
        if it % args.print_every == 0 or it == 1:
            s = controller.monitor_state.cumulative_scores
            print(f"iter {it:5d}  loss {float(loss.detach()):.3f}  batch sizes "
                  + " ".join(f"{m}={sizes[m]}" for m in modalities)
                  + "  S " + " ".join(f"{m}={v:.3f}" for m, v in zip(modalities, s)))

    acc = test_accuracy(model, test, modalities)
    print(f"policy {args.policy}: samples consumed "
          + " ".join(f"{m}={n}" for m, n in sampler.samples_consumed.items()))
    print(f"test accuracy: fused {acc['fused']:.4f}  "
          + "  ".join(f"{m} {acc[m]:.4f}" for m in modalities))


if __name__ == "__main__":
    main()
