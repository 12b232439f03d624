"""RuntimePackage: the runtime/ package read from a directory and laid out by a ConfigMap volume."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.serving.runtime_package import (
    RuntimePackage,
    RuntimePackageArgs,
    runtime_config_map_data,
    runtime_package_files,
    runtime_volume,
)


def package(tmp_path: Path) -> Path:
    root = tmp_path / "runtime"
    (root / "sub").mkdir(parents=True)
    (root / "__pycache__").mkdir()
    (root / "__init__.py").write_text("")
    (root / "router.py").write_text("ROUTER = 1\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "dns.py").write_text("DNS = 1\n")
    (root / "__pycache__" / "router.cpython-311.pyc.py").write_text("x")
    (root / "test_router.py").write_text("def test(): pass\n")
    (root / "README.md").write_text("not shipped")
    return root


def test_reads_the_python_files_of_the_package(tmp_path):
    files = runtime_package_files(package(tmp_path))
    assert sorted(files) == ["__init__.py", "router.py", "sub/__init__.py", "sub/dns.py"]
    assert files["sub/dns.py"] == "DNS = 1\n"


def test_refuses_a_directory_without_init(tmp_path):
    (tmp_path / "x.py").write_text("")
    with pytest.raises(ValueError, match="has no __init__.py"):
        runtime_package_files(tmp_path)


def test_volume_items_restore_nested_paths(tmp_path):
    files = runtime_package_files(package(tmp_path))
    data = runtime_config_map_data(files)
    assert sorted(data) == ["__init__.py", "router.py", "sub____init__.py", "sub__dns.py"]
    volume = runtime_volume("llama-runtime", files)
    assert {"key": "sub__dns.py", "path": "sub/dns.py"} in volume["configMap"]["items"]
    assert volume["configMap"]["name"] == "llama-runtime"


def test_refuses_a_package_larger_than_a_config_map():
    with pytest.raises(ValueError, match="more than a ConfigMap holds"):
        runtime_config_map_data({"__init__.py": "x" * 1_100_000})


@pulumi.runtime.test
def test_component_creates_one_config_map(mocks, tmp_path):
    files = runtime_package_files(package(tmp_path))
    provider = k8s.Provider("k8s", kubeconfig="{}")
    runtime = RuntimePackage(
        "llama-runtime", RuntimePackageArgs(instance="llama", namespace="llm", files=files),
        pulumi.ResourceOptions(provider=provider),
    )  # fmt: skip

    def check(_):
        (cm,) = [r for r in mocks.recorded.values() if r.parent_name == "llama-runtime"]
        assert cm.name == "llama-runtime-configmap" and cm.inputs["metadata"]["name"] == "llama-runtime"
        assert cm.inputs["data"]["sub__dns.py"] == "DNS = 1\n"

    return runtime.config_map.urn.apply(check)
