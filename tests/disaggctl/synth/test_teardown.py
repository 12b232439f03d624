"""docs/teardown.md names everything the stacks retain on delete (disaggctl.synth.teardown)."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from components.cluster.aws import AwsGpuCluster
from components.config.cluster import EksConfig
from disaggctl.synth.fast_registration import install_fast_mocks
from disaggctl.synth.program import resource_document, run_program
from disaggctl.synth.teardown import Retained, missing_from, retained_on_delete

PROJECT_DIR = Path(__file__).resolve().parents[3]
DOC = (PROJECT_DIR / "docs" / "teardown.md").read_text(encoding="utf-8")


def _s3_cluster_documents() -> list[dict]:
    """An EKS cluster whose store is a Mountpoint for S3 bucket (static PV, bucket of the stack)."""
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    config = EksConfig.model_validate({
        "region": "us-east-2", "availabilityZones": ["us-east-2a", "us-east-2b"], "vpcCidr": "10.60.0.0/16",
        "publicAccessCidrs": ["100.20.0.0/16"], "storage": {"kind": "s3-mountpoint"},
    })
    monitor = install_fast_mocks("proj", "s3")

    def program() -> None:
        provider = aws.Provider("aws", region=config.region)
        AwsGpuCluster("llm-s3", config, pulumi.ResourceOptions(providers={"aws": provider}))

    _sync_await(run_pulumi_func(program))
    return [resource_document(r) for r in monitor.recorded.values()]


@pytest.fixture(scope="module")
def documents() -> dict[str, list[dict]]:
    stacks = {s: [resource_document(r) for r in run_program(PROJECT_DIR, s).resources] for s in ("dev", "prod")}
    return {**stacks, "s3": _s3_cluster_documents()}


@pytest.mark.parametrize("stack", ["dev", "prod", "s3"])
def test_everything_retained_on_delete_is_in_the_teardown_doc(documents: dict, stack: str) -> None:
    kept = retained_on_delete(documents[stack])
    assert kept, "every stack keeps at least its store and its log group"
    assert missing_from(DOC, kept) == []


def test_what_each_stack_retains(documents: dict) -> None:
    keys = {stack: sorted(item.doc_key for item in retained_on_delete(docs)) for stack, docs in documents.items()}
    assert keys["dev"] == keys["prod"] == ["/aws/eks/<cluster>/cluster", "StorageClass `fsx-lustre`"]
    assert keys["s3"] == ["/aws/eks/<cluster>/cluster", "PersistentVolume `s3-models`", "S3 bucket"]


def test_a_resource_option_to_retain_must_be_documented(documents: dict) -> None:
    """retainOnDelete and protect are found from the recorded options; a doc without them fails."""
    document = {"type": "aws:fsx/lustreFileSystem:LustreFileSystem", "name": "weights", "inputs": {},
                "options": {"retainOnDelete": True, "protect": True}}
    kept = retained_on_delete([document])
    assert [k.doc_key for k in kept] == ["retainOnDelete: `weights`", "protect: `weights`"]
    assert len(missing_from(DOC, kept)) == 2
    assert missing_from(DOC + "\nretainOnDelete: `weights` … protect: `weights`", kept) == []
    assert isinstance(kept[0], Retained)


def test_a_storage_class_that_deletes_retains_nothing(documents: dict) -> None:
    docs = [dict(d) for d in documents["dev"]]
    for d in docs:
        if d["type"] == "kubernetes:storage.k8s.io/v1:StorageClass":
            d["inputs"] = {**d["inputs"], "reclaimPolicy": "Delete"}
    assert [k.doc_key for k in retained_on_delete(docs)] == ["/aws/eks/<cluster>/cluster"]
