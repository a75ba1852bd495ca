"""Registries by name: checking a name imports nothing; loading imports on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dus_env.registry import HOSTS, REWARDS, Registry
from tests.conftest import ROOT


def test_registry_check_load_and_register():
    reg = Registry("thing", "x.thing", {"json": "json:dumps"})
    reg.check("json")
    with pytest.raises(ValueError, match=r"x.thing='jsno' is not valid; valid choices: \['json'\]"
                                         r". Did you mean 'json'\?"):
        reg.check("jsno")
    import json

    assert reg.load("json") is json.dumps
    reg.register("mine", len)
    assert reg.load("mine") is len and list(reg) == ["json", "mine"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register("mine", len)
    with pytest.raises(ValueError, match="module:attribute"):
        reg.register("bad", "no_colon")


def test_hosts_and_rewards_load_their_classes():
    from dus_env.hosts import Host
    from dus_env.rewards import Reward

    assert all(issubclass(HOSTS.load(name), Host) for name in HOSTS)
    assert all(isinstance(REWARDS.load(name), Reward) for name in REWARDS)


def test_importing_the_config_imports_no_torch():
    code = ("import sys; import dus_env.config as c; c.get_preset('default'); "
            "c.ModelConfig(encoder='resnet18'); assert 'torch' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith('torch'))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
