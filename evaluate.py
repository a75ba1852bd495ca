"""Replay sampling policies inside ordinary training runs and compare them.

A thin wrapper of ``dus-evaluate`` (:mod:`dus_agents.cli.evaluate`, where the flags and outputs
are documented); ``python evaluate.py --help`` lists them.
"""

import sys

from dus_agents.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
