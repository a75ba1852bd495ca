"""Two-view Fashion-MNIST: do the trainer's loss weights open a weak-view gap the noise alone does not?

``benchmarks.fashion`` screens the noise level of view 2 and finds no setting where the noisy
view's linear probe under joint training (uniform sampling) is 3 points below the same view
trained alone. This screen asks whether the loss weights can make joint training starve the
weak view: for each ``--noises`` level and each ``--weights`` pair ``U:F``
(``trainer.unimodal_weight`` U, ``trainer.fusion_weight`` F), the gap alone - joint of the
noisy view's probe on the *validation* split, tuning seeds 100.. (never reported as results;
the test split is not read). The alone reference (host ``unimodal``, unimodal weight 1) is one
run per level and seed, shared by every weight pair.

    python -m benchmarks.fashion_weights --out results/fashion_weights.json   # ~5 min
    python -m benchmarks.fashion_weights --smoke
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from benchmarks import common
from benchmarks.fashion import _config, _env, _run, finish, smoke_setup
from dus_agents.heuristic import UniformPolicy
from dus_agents.cli.common import comma_list
from dus_env.errors import UsageError


@dataclasses.dataclass
class Args(common.BenchArgs):
    noises: str = "0.6,1.0"
    """Noise levels of view 2 (0.6: the preset's, chosen by benchmarks.fashion)."""
    weights: str = "1:4,0.25:1,0.1:1"
    """Comma list of UNIMODAL:FUSION loss weights for the joint host."""
    seeds: int = 3
    """Tuning seeds (100..) per cell, validation split only."""
    root: str = ""
    """Fashion-MNIST folder (empty: the reader's default search)."""
    probe_max_train: int = 2000
    """Training rows of the linear probes."""

    SMOKE: ClassVar[dict[str, Any]] = {"noises": "0.6", "weights": "0.1:1", "seeds": 2}


def _weights(text: str) -> list[tuple[float, float]]:
    out = []
    for item in comma_list("--weights", text):
        try:
            uw, fw = (float(v) for v in item.split(":"))
        except ValueError:
            raise UsageError(f"--weights: {item!r} is not UNIMODAL:FUSION (two numbers, e.g. "
                             "0.25:1)") from None
        if uw < 0 or fw < 0:
            raise UsageError(f"--weights: {item!r} has a negative weight; both must be >= 0")
        out.append((uw, fw))
    return out


def screen(args: Args) -> dict[str, Any]:
    pairs = _weights(args.weights)
    noises = [float(v) for v in comma_list("--noises", args.noises)]
    seeds = list(range(100, 100 + args.seeds))
    log = common.logger("fashion_weights")
    cells = []
    for noise in noises:
        alone = _env(_config(args, noise, "unimodal"))
        ref = {s: _run(alone, UniformPolicy.for_env(alone), s, args, "val")["probe_noisy"]
               for s in seeds}
        for uw, fw in pairs:
            joint = _env(_config(args, noise, "joint",
                                 trainer={"unimodal_weight": uw, "fusion_weight": fw}))
            runs = {s: _run(joint, UniformPolicy.for_env(joint), s, args, "val") for s in seeds}
            gaps = [100 * (ref[s] - runs[s]["probe_noisy"]) for s in seeds]
            cells.append({"noise": noise, "unimodal_weight": uw, "fusion_weight": fw,
                          "gap_points": common.mean_ci(gaps),
                          "val_accuracy": common.mean_ci([100 * r["accuracy"]
                                                          for r in runs.values()])})
            log.info("noise %s weights %s:%s: gap %+.2f", noise, uw, fw,
                     cells[-1]["gap_points"]["mean"])
    return {"seeds": seeds, "cells": cells,
            "target_met": any(c["gap_points"]["mean"] >= 3.0 for c in cells)}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Loss-weight screen (`{common.command_line(result['command'])}`; validation, "
             f"tuning seeds {result['seeds'][0]}-{result['seeds'][-1]}; gap: noisy view's probe "
             "alone minus under joint training with uniform sampling, points):", "",
             "| noise | unimodal weight | fusion weight | gap | fused val accuracy |",
             "|---|---|---|---|---|"]
    for c in result["cells"]:
        g = c["gap_points"]
        band = "" if g["ci_low"] is None else f" [{g['ci_low']:.2f}, {g['ci_high']:.2f}]"
        lines.append(f"| {c['noise']} | {c['unimodal_weight']:g} | {c['fusion_weight']:g} | "
                     f"{g['mean']:.2f}{band} | {c['val_accuracy']['mean']:.2f} |")
    lines += ["", "Target gap >= 3 points: " + ("met by at least one setting." if
                                                 result["target_met"] else
                                                 "missed by every setting."), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = smoke_setup(common.parse(Args, argv))
    common.setup(args)
    _weights(args.weights)  # bad input fails before any run
    result: dict[str, Any] = {"machine": common.machine_info(), "command": sys.argv,
                              **screen(args)}
    return finish(args, result, markdown)


if __name__ == "__main__":
    sys.exit(common.run(main))
