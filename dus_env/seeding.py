"""Seeding without touching global random state, and what else repetition depends on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch


def spawn_seeds(rng: np.random.Generator, n: int) -> list[int]:
    """``n`` independent integer seeds drawn from ``rng``."""
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=n)]


@contextlib.contextmanager
def torch_rng(seed: int, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run a block with torch's global generator seeded to ``seed``, restoring it afterwards.

    Use it around code that draws from the global generator implicitly (``nn.Module``
    initialisation). The CUDA generator of ``device`` is forked too.
    """
    device = torch.device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A private torch generator seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def cpu_capability() -> str:
    """torch's CPU kernel path (AVX2, AVX512, ...). Kernels of different widths round
    differently and training compounds that, so a run repeats bit for bit only on the same
    path; ``ATEN_CPU_CAPABILITY`` chooses it on a CPU that has several."""
    return str(torch.backends.cpu.get_cpu_capability())
