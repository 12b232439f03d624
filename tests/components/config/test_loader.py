"""``load_from_pulumi``: the configuration as ``pulumi up`` passes it, secrecy read with the public SDK."""

from __future__ import annotations

import pytest
from pulumi.runtime import set_all_config

from components.config import ConfigError, load_from_pulumi
from tests.components.config.test_hardening_errors import existing_cluster, put

KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user: {token: plaintext-token-0123456789abcdef}\n"


@pytest.fixture
def engine_config(monkeypatch: pytest.MonkeyPatch):
    """``set_all_config`` as the engine calls it; emptied afterwards (it lives in a ContextVar)."""
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)
    yield set_all_config
    set_all_config({}, [])


def test_a_key_the_engine_holds_as_secret_is_secret(dev_config, engine_config) -> None:
    put(dev_config.raw, "cluster", existing_cluster(KUBECONFIG))
    engine_config(dict(dev_config.raw), ["disagg:cluster"])
    assert load_from_pulumi().cluster.existing is not None


def test_a_plain_key_is_not_secret(dev_config, engine_config) -> None:
    put(dev_config.raw, "cluster", existing_cluster(KUBECONFIG))
    engine_config(dict(dev_config.raw), [])
    with pytest.raises(ConfigError) as caught:
        load_from_pulumi()
    assert any("cluster.existing.kubeconfig: the kubeconfig is in the stack file in plain text" in p
               for p in caught.value.problems)
    assert "plaintext-token" not in str(caught.value)
