"""The machine a benchmark runs on, as every benchmark records it (``machine`` in its JSON).

The description itself is :func:`benchmarks.common.machine_info`; this prints it.

    python -m benchmarks.machine                  # print the JSON
    python -m benchmarks.machine --out machine.json
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

from benchmarks import common


@dataclasses.dataclass
class Args(common.BenchArgs):
    """``python -m benchmarks.machine`` (``--smoke`` also checks the JSON parses)."""


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse(Args, argv)
    common.setup(args)
    info = common.machine_info()
    text = common.write_json(args.out, info, indent=2)
    print(text)
    if args.smoke:
        assert json.loads(text)["torch"]
        print("smoke ok")
    return info


if __name__ == "__main__":
    sys.exit(common.run(main))
