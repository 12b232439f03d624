"""The recording mocks as a consumer uses them (the usage in disaggctl/testing/mocks.py's docstring)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from disaggctl.testing.mocks import RecordingMonitor, install_mocks


def test_a_consumer_records_what_its_components_declare() -> None:
    monitor = install_mocks("llm-team", "test")
    assert type(monitor) is RecordingMonitor  # the SDK's own registration path

    @pulumi.runtime.test
    def declare():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        claim = k8s.core.v1.PersistentVolumeClaim(
            "models",
            metadata={"name": "models", "namespace": "llm"},
            spec={"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}},
            opts=pulumi.ResourceOptions(provider=provider),
        )
        return claim.id

    declare()
    (claim,) = [r for r in monitor.recorded.values() if r.type == "kubernetes:core/v1:PersistentVolumeClaim"]
    assert claim.name == "models"
    assert claim.inputs["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim.inputs["metadata"] == {"name": "models", "namespace": "llm"}
    assert claim.provider.startswith("urn:pulumi:test::llm-team::pulumi:pulumi:Stack$pulumi:providers:kubernetes::k8s::")
