"""Train a DUS sampling agent on DUS-v0 and save it as one policy artefact.

A thin wrapper of ``dus-train`` (:mod:`dus_agents.cli.train`, where the flags and the run
directory are documented); ``python train_agent.py --help`` lists them.
"""

import sys

from dus_agents.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
