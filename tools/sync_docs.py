"""Rewrite the generated parts of README.md from the code (the preset table).

    python tools/sync_docs.py           # rewrite README.md in place
    python tools/sync_docs.py --check   # exit 1 if README.md is out of date (CI's test does this)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- presets:start[^>]*-->\n)(.*?)(<!-- presets:end -->)", re.S)


def generated(text: str) -> str:
    from dus_env.config import preset_table

    if not BLOCK.search(text):
        raise SystemExit(f"{README}: no <!-- presets:start --> ... <!-- presets:end --> block")
    return BLOCK.sub(lambda m: m.group(1) + preset_table() + "\n" + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = generated(text)
    if args.check:
        if new != text:
            print("README.md is out of date: run python tools/sync_docs.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
