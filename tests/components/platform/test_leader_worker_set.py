"""leader_worker_set_values: the controller on the system pool, upstream chart keys."""

from __future__ import annotations

from components.platform.leader_worker_set import leader_worker_set_values


def test_controller_runs_on_the_system_pool(clusters):
    assert leader_worker_set_values(clusters.system_pool) == {"nodeSelector": {"disagg.dev/pool": "system"}}


def test_no_system_selector_sets_nothing():
    assert leader_worker_set_values(None) == {}


def test_every_value_set_exists_in_the_upstream_chart(upstream, clusters):
    table = upstream.key_table("lws-0.10.0.values-keys.json")
    assert upstream.unknown_values(leader_worker_set_values(clusters.system_pool), table) == []
