"""RuntimePackage: the ``runtime/`` Python package (frontend, router) shipped to pods in a ConfigMap.

The package is stdlib + aiohttp (both in the TRT-LLM release image), so the CPU tiers run the
release image unchanged with the package mounted at ``/opt/disagg/python/runtime`` and
``PYTHONPATH=/opt/disagg/python``. Its files are read at synth time from the installed package
directory (:func:`runtime_package_dir`); a changed file changes the ConfigMap and, through the
content-hash annotation, rolls the pods that mount it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, field_validator

from components.serving.labels import labels, metadata
from components.serving.pulumi_options import child_options, k8s_provider
from components.serving.repository_config_maps import CONFIG_MAP_MAX_BYTES, config_map_key, content_hash

TYPE_TOKEN = "disagg:serving:RuntimePackage"
PACKAGE = "runtime"
PYTHON_PATH = "/opt/disagg/python"
"""PYTHONPATH of the pods; the package is mounted at ``<PYTHON_PATH>/runtime``."""
MOUNT_PATH = f"{PYTHON_PATH}/{PACKAGE}"
VOLUME = "runtime-package"
HASH_ANNOTATION = "disagg.dev/runtime-hash"


def runtime_package_dir() -> Path:
    """Directory of the installed ``runtime`` package; ValueError naming the fix when absent."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "the 'runtime' package is not importable: install this project (pip install -e .) so the "
            "llmapi frontend and router can be shipped to the pods"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def runtime_package_files(directory: Path, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """``{relative path: text}`` of the package's pod files (sorted, no caches/tests).

    ``names``: the files to ship (``runtime.POD_FILES`` for the installed package, which leaves
    out the test-only stand-in); None: every ``*.py`` under ``directory``.
    """
    if names is None:
        found = sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)
        paths = [p for p in found if not p.name.startswith("test_")]
    else:
        missing = [n for n in names if not (directory / n).is_file()]
        if missing:
            raise ValueError(f"{directory} lacks {', '.join(missing)}: reinstall this project (pip install -e .)")
        paths = [directory / n for n in sorted(names)]
    files = {str(p.relative_to(directory)): p.read_text() for p in paths}
    if "__init__.py" not in files:
        raise ValueError(f"{directory} has no __init__.py: it is not the runtime package")
    return files


def installed_runtime_files() -> dict[str, str]:
    """The pod files of the installed ``runtime`` package (its ``POD_FILES``)."""
    import runtime

    return runtime_package_files(runtime_package_dir(), tuple(runtime.POD_FILES))


def runtime_config_map_data(files: dict[str, str]) -> dict[str, str]:
    """ConfigMap ``data`` (keys from :func:`config_map_key`); refuses more than a ConfigMap holds."""
    data = {config_map_key(path): text for path, text in sorted(files.items())}
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    if size > CONFIG_MAP_MAX_BYTES:
        raise ValueError(f"the runtime package has {size} bytes, more than a ConfigMap holds: shrink it")
    return data


def runtime_volume(config_map_name: str, files: dict[str, str]) -> dict:
    """The volume laying the ConfigMap out as the package (items put nested files at their paths)."""
    items = [{"key": config_map_key(p), "path": p} for p in sorted(files)]
    return {"name": VOLUME, "configMap": {"name": config_map_name, "defaultMode": 0o444, "items": items}}


def runtime_mount() -> dict:
    return {"name": VOLUME, "mountPath": MOUNT_PATH, "readOnly": True}


class RuntimePackageArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instance: str
    namespace: str
    files: dict[str, str]
    """``runtime_package_files(runtime_package_dir())``."""

    @field_validator("files")
    @classmethod
    def _fits(cls, files: dict[str, str]) -> dict[str, str]:
        runtime_config_map_data(files)
        return files


class RuntimePackage(pulumi.ComponentResource):
    """One ConfigMap ``<name>`` with the runtime package."""

    config_map: k8s.core.v1.ConfigMap
    config_map_name: str
    volume: dict
    content_hash: str

    def __init__(self, name: str, args: RuntimePackageArgs, opts: pulumi.ResourceOptions | None = None):
        provider = k8s_provider(opts, f"RuntimePackage '{name}'")
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.config_map_name = name
        self.content_hash = content_hash(args.files)
        self.volume = runtime_volume(name, args.files)
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-configmap",
            metadata=cast(Any, metadata(name, args.namespace, labels(args.instance, "runtime-package", app="llmapi"))),
            data=runtime_config_map_data(args.files),
            opts=child_options(self, provider, opts),
        )
        self.register_outputs({"config_map_name": name, "content_hash": self.content_hash})
