"""rl-zoo3 hyperparameter files for DUS-v0, shipped inside the package.

``python -m dus_agents.hyperparams ALGO`` prints the file's path, for ``rl_zoo3.train
--conf-file``::

    python -m rl_zoo3.train --algo a2c --env dus_env/DUS-v0 --gym-packages dus_env \\
        --conf-file "$(python -m dus_agents.hyperparams a2c)" -f logs/ --device cpu

Files: ``ppo.yml`` (the settings of :class:`dus_agents.ppo.PPOConfig`), ``a2c.yml`` and
``ppo_lstm.yml`` (sb3-contrib's RecurrentPPO with ``MlpLstmPolicy``).
"""

from __future__ import annotations

from pathlib import Path

from dus_env.errors import check_choice

FOLDER = Path(__file__).resolve().parent
ALGOS: tuple[str, ...] = ("ppo", "a2c", "ppo_lstm")


def path(algo: str) -> Path:
    """The hyperparameter file of rl-zoo3 algorithm ``algo``."""
    check_choice("algo", algo, ALGOS)
    return FOLDER / f"{algo}.yml"
