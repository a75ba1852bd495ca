"""``python -m dus_agents.hyperparams ALGO``: print the path of ALGO's rl-zoo3 file."""

import sys

from dus_agents.hyperparams import ALGOS, path

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ALGOS:
        sys.stderr.write(f"usage: python -m dus_agents.hyperparams {{{','.join(ALGOS)}}}\n")
        sys.exit(2)
    sys.stdout.write(f"{path(sys.argv[1])}\n")
