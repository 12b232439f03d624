"""Fixtures for platform tests: upstream key tables and schemas, cluster handles, a mock runner."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pulumi_kubernetes as k8s
import pytest
import yaml

from components.cluster.contract import ClusterHandle
from components.config.scheduling import Fabric, NodePool, Toleration
from disaggctl.synth.fast_registration import install_fast_mocks
from disaggctl.testing.mocks import RecordedResource

DATA = Path(__file__).parent / "data"
REFERENCE = next(
    (
        path
        for path in (
            Path(__file__).resolve().parents[3].parent / "shared" / "reference",
            Path("/work/shared/reference"),
        )
        if path.is_dir()
    ),
    Path("/work/shared/reference"),
)
"""Upstream CRDs and chart values: ``shared/reference`` beside the work tree (as in CI), else the
machine's ``/work/shared/reference``."""

GPU_TAINT = Toleration(key="nvidia.com/gpu")
SYSTEM_POOL = NodePool(
    name="system", gpus_per_node=0, gpu_memory_gib=0, node_selector={"disagg.dev/pool": "system"}
)


# --- upstream data -------------------------------------------------------------------------


def reference_file(name: str) -> Path:
    path = REFERENCE / name
    if not path.exists():
        raise AssertionError(
            f"{path} is missing: these tests need shared/reference beside the work tree or at /work/shared/reference"
        )
    return path


def value_kind(value: Any) -> str:
    """Kind of a default in a chart's values, as the key tables in data/ record it."""
    if isinstance(value, dict):
        return "freeform" if not value or any("." in k or "/" in k for k in value) else "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    raise TypeError(f"unexpected value {value!r}")


def key_paths(values: dict, prefix: str = "") -> dict[str, str]:
    """Every key path of a values mapping with its kind (the derivation the tables used)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        out[path] = value_kind(value)
        if out[path] == "map":
            out.update(key_paths(value, f"{path}."))
    return out


def key_table(name: str) -> dict[str, str]:
    """A derived key table from data/ (``<chart>-<version>.values-keys.json``)."""
    return json.loads((DATA / name).read_text())["paths"]


def gpu_operator_key_table() -> dict[str, str]:
    """gpu-operator v26.7.0 values (shared/reference) plus its node-feature-discovery subchart's."""
    values = yaml.safe_load(reference_file("gpu-operator-values.yaml").read_text())
    table = key_paths(values)
    subchart = key_table("node-feature-discovery-0.19.0.values-keys.json")
    table.update({f"node-feature-discovery.{path}": kind for path, kind in subchart.items()})
    table["node-feature-discovery"] = "map"
    return table


_COMPATIBLE = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "string": (str,),
    "list": (list,),
    "map": (dict,),
    "freeform": (dict,),
}


def unknown_values(values: dict, table: dict[str, str], prefix: str = "") -> list[str]:
    """Key paths set in ``values`` that upstream does not have (or with another kind of value)."""
    problems: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        kind = table.get(path)
        if kind is None:
            problems.append(f"{path}: not in the upstream values")
            continue
        if kind == "null":
            continue
        expected = _COMPATIBLE[kind]
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            problems.append(f"{path}: upstream default is a {kind}, set to {type(value).__name__}")
            continue
        if kind == "map":
            problems += unknown_values(value, table, f"{path}.")
    return problems


def strict(schema: Any) -> Any:
    """A CRD schema in which objects accept only their declared properties.

    The API server prunes unknown fields silently; a field we set that the CRD does not know
    would be lost, so the tests treat it as an error.
    """
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def crd_version_schema(crd: dict, version: str) -> dict:
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return entry["schema"]["openAPIV3Schema"]


# --- clusters ------------------------------------------------------------------------------


def gpu_pool(name: str, fabric: Fabric, **overrides: Any) -> NodePool:
    fields: dict[str, Any] = {
        "name": name,
        "gpus_per_node": 8,
        "gpu_memory_gib": 80,
        "gpu_arch": "hopper",
        "node_selector": {"disagg.dev/pool": name},
        "tolerations": (GPU_TAINT,),
        "fabric": fabric,
    }
    if fabric == "efa":
        fields.update(efa_interfaces=32, instance_type="p5.48xlarge")
    if fabric in ("infiniband", "roce"):
        fields["rdma_resource"] = "rdma/rdma_shared_device_a"
    fields.update(overrides)
    return NodePool(**fields)


def make_handle(
    fabric: Fabric,
    platform: str | None = None,
    provider: k8s.Provider | None = None,
    pools: Iterable[NodePool] | None = None,
) -> ClusterHandle:
    """A ClusterHandle as AwsGpuCluster (efa/none) or ExistingCluster (infiniband/roce) gives it."""
    if platform is None:
        platform = "eks" if fabric in ("efa", "none") else "existing"
    pools = list(pools) if pools is not None else [gpu_pool("h100", fabric)]
    return ClusterHandle(
        name="test-cluster",
        provider=provider,  # type: ignore[arg-type]  # pure tests need no provider
        kubeconfig=None,  # type: ignore[arg-type]
        fabric=fabric,
        system_pool=SYSTEM_POOL,
        gpu_pools={pool.name: pool for pool in pools},
        platform=platform,  # type: ignore[arg-type]
    )


# --- Pulumi mocks --------------------------------------------------------------------------


class Synthesized:
    """Resources one program registered under the recording mocks."""

    def __init__(self, resources: list[RecordedResource], result: Any):
        self.resources = resources
        self.result = result

    def of_type(self, typ: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> RecordedResource:
        (found,) = [r for r in self.resources if r.name == name]
        return found

    def releases(self) -> dict[str, RecordedResource]:
        """Helm releases by release name."""
        return {r.inputs["name"]: r for r in self.of_type("kubernetes:helm.sh/v3:Release")}


def synthesize(program: Callable[[], Any]) -> Synthesized:
    """Run ``program`` under fresh recording mocks and return what it registered."""
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    monitor = install_fast_mocks("disagg", "test")
    box: list[Any] = []
    _sync_await(run_pulumi_func(lambda: box.append(program())))
    return Synthesized(sorted(monitor.recorded.values(), key=lambda r: r.urn), box[0] if box else None)


def provider() -> k8s.Provider:
    return k8s.Provider("k8s", kubeconfig="{}")


# --- fixtures ------------------------------------------------------------------------------


class Upstream:
    """Upstream charts' values and CRD schemas, as the tests check against them."""

    key_table = staticmethod(key_table)
    unknown_values = staticmethod(unknown_values)
    strict = staticmethod(strict)
    gpu_operator_key_table = staticmethod(gpu_operator_key_table)

    @staticmethod
    def cluster_policy_spec_schema() -> dict:
        crd = yaml.safe_load(reference_file("gpu-operator-clusterpolicies.crd.yaml").read_text())
        return crd_version_schema(crd, "v1")["properties"]["spec"]

    @staticmethod
    def nic_cluster_policy_schema() -> dict:
        return json.loads((DATA / "nicclusterpolicy-26.4.1.schema.json").read_text())["openAPIV3Schema"]

    @staticmethod
    def rdma_config_schema() -> dict:
        return json.loads((DATA / "rdma-shared-device-plugin-config-26.4.1.schema.json").read_text())[
            "schema"
        ]


class Clusters:
    """Builds GPU pools and cluster handles."""

    pool = staticmethod(gpu_pool)
    handle = staticmethod(make_handle)
    system_pool = SYSTEM_POOL


class Mocks:
    """Runs Pulumi programs under the recording mocks."""

    run = staticmethod(synthesize)
    provider = staticmethod(provider)


@pytest.fixture
def upstream() -> type[Upstream]:
    return Upstream


@pytest.fixture
def clusters() -> type[Clusters]:
    return Clusters


@pytest.fixture
def mocks() -> type[Mocks]:
    return Mocks
