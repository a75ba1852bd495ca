"""A picture of the env's state for ``render_mode="rgb_array"`` (numpy only, no display).

The frame (``HEIGHT`` x ``WIDTH`` x 3, uint8) shows, left to right, one group of three bars per
modality in its own colour: its batch size in the last step (as a share of
``sampler.max_batch_size``), its cumulative score S (0 to 1), and its gap to the other
modalities (up from the middle line when ahead, down when behind; full height = 1). The strip
at the top is training progress. ``gymnasium.wrappers.RecordVideo`` and the zoo's video tools
record these frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HEIGHT, WIDTH = 240, 320
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                    [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127]],
                   dtype=np.uint8)
BACKGROUND, AXIS, PROGRESS = 255, 80, np.array([90, 90, 90], dtype=np.uint8)


def draw_frame(batch_shares: Sequence[float], cumulative: Sequence[float],
               gaps: Sequence[float], progress: float) -> np.ndarray:
    """The frame for one state (values are clipped into their ranges; NaN draws nothing)."""
    frame = np.full((HEIGHT, WIDTH, 3), BACKGROUND, dtype=np.uint8)
    top, bottom = 24, HEIGHT - 8
    frame[4:16, 8: 8 + int(round(_unit(progress) * (WIDTH - 16)))] = PROGRESS
    frame[bottom, :] = AXIS
    m = max(len(batch_shares), 1)
    group = (WIDTH - 16) // m
    bar = max(group // 4, 2)
    middle = (top + bottom) // 2
    for j in range(len(batch_shares)):
        color = PALETTE[j % len(PALETTE)]
        x0 = 8 + j * group
        for k, value in enumerate((batch_shares[j], cumulative[j])):
            height = int(round(_unit(value) * (bottom - top)))
            x = x0 + k * bar
            frame[bottom - height:bottom, x:x + bar - 1] = color
        x = x0 + 2 * bar
        frame[middle, x:x + bar - 1] = AXIS
        gap = float(gaps[j]) if np.isfinite(gaps[j]) else 0.0
        half = int(round(min(abs(gap), 1.0) * (middle - top)))
        shade = (color // 2 + 64).astype(np.uint8)
        if gap >= 0:
            frame[middle - half:middle, x:x + bar - 1] = shade
        else:
            frame[middle + 1:middle + 1 + half, x:x + bar - 1] = shade
    return frame


def _unit(value: float) -> float:
    value = float(value)
    return min(max(value, 0.0), 1.0) if np.isfinite(value) else 0.0
