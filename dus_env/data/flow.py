"""Dense optical flow without OpenCV: Horn-Schunck (1981), numpy + scipy.

``horn_schunck(prev, nxt)`` returns the per-pixel displacement ``(H, W, 2)`` (x, y; pixels per
frame) that minimises brightness-constancy error plus ``alpha**2`` times the flow's squared
gradient, by the classic Jacobi iteration. It is a single-scale method: motions of more than a
few pixels per frame are underestimated, so compute it on frames resized to the model's input
size (``prepare nvgesture --size``). With the ``flow`` extra (opencv-python-headless, ~60 MB),
``prepare nvgesture --flow farneback`` uses OpenCV's Farneback method instead.
"""

from __future__ import annotations

import numpy as np

_AVERAGE = np.array([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]])


def horn_schunck(prev: np.ndarray, nxt: np.ndarray, alpha: float = 0.1,
                 iterations: int = 100) -> np.ndarray:
    """Flow from grayscale frame ``prev`` to ``nxt`` (float arrays in [0, 1]); ``(H, W, 2)``."""
    from scipy.ndimage import convolve

    a, b = prev.astype(np.float64), nxt.astype(np.float64)
    mean = 0.5 * (a + b)
    iy, ix = np.gradient(mean)
    it = b - a
    u = np.zeros_like(a)
    v = np.zeros_like(a)
    denom = alpha**2 + ix**2 + iy**2
    for _ in range(iterations):
        u_bar = convolve(u, _AVERAGE, mode="nearest")
        v_bar = convolve(v, _AVERAGE, mode="nearest")
        step = (ix * u_bar + iy * v_bar + it) / denom
        u = u_bar - ix * step
        v = v_bar - iy * step
    return np.stack([u, v], axis=-1).astype(np.float32)


def farneback(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """OpenCV's Farneback flow (needs opencv-python-headless: ``pip install 'dus-env[flow]'``)."""
    try:
        import cv2
    except ImportError:
        raise ImportError(
            "--flow farneback needs OpenCV: pip install 'dus-env[flow]' "
            "(or use the default --flow horn_schunck)"
        ) from None
    to8 = lambda x: np.clip(x * 255.0, 0, 255).astype(np.uint8)  # noqa: E731
    flow = cv2.calcOpticalFlowFarneback(to8(prev), to8(nxt), None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return flow.astype(np.float32)


FLOW_METHODS = {"horn_schunck": horn_schunck, "farneback": farneback}
