"""The machine a benchmark ran on (recorded with every benchmark's JSON output)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def machine_description() -> dict[str, Any]:
    """CPU model and count, Python, torch and platform versions, GPU presence."""
    import torch

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model, "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(), "torch": torch.__version__,
        "platform": platform.platform(), "gpu": bool(torch.cuda.is_available()),
        "torch_threads": torch.get_num_threads(),
    }
