"""A Triton model repository as ConfigMaps and the projected volume that lays them out."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

CONFIG_MAP_MAX_BYTES = 1_000_000
"""Kubernetes refuses ConfigMaps above 1 MiB (data plus metadata); stay clearly below."""


@dataclass(frozen=True)
class RepositoryConfigMap:
    """One ConfigMap of a model repository: the files of one model."""

    name: str
    model: str
    data: dict[str, str]
    """ConfigMap key -> file text."""
    items: tuple[tuple[str, str], ...]
    """(key, path relative to the repository root), sorted: the projected volume's items."""


def config_map_key(path: str) -> str:
    """ConfigMap key of a repository file: ``preprocessing/1/model.py`` -> ``preprocessing__1__model.py``.

    Keys may only hold ``[-._a-zA-Z0-9]``; the projected volume's ``items`` put each key back
    at its path, which is how Triton gets its ``<model>/1/model.py`` layout.
    """
    key = path.replace("/", "__")
    if not re.fullmatch(r"[-._a-zA-Z0-9]+", key) or key.startswith(".."):
        raise ValueError(f"repository file {path!r} cannot be a ConfigMap key: rename the file")
    return key


def repository_config_maps(base_name: str, files: Mapping[str, str]) -> list[RepositoryConfigMap]:
    """One ConfigMap per model directory of ``files`` (``{relative path: text}``), sorted by model.

    Named ``<base_name>-<model>`` (``_`` becomes ``-``). Raises if a model's files exceed what a
    ConfigMap holds.
    """
    by_model: dict[str, dict[str, str]] = {}
    for path in sorted(files):
        model, sep, _ = path.partition("/")
        if not sep:
            raise ValueError(f"repository file {path!r} is not inside a model directory")
        by_model.setdefault(model, {})[path] = files[path]
    out = []
    for model, model_files in sorted(by_model.items()):
        data = {config_map_key(p): text for p, text in model_files.items()}
        size = sum(len(k) + len(v.encode()) for k, v in data.items())
        if size > CONFIG_MAP_MAX_BYTES:
            raise ValueError(
                f"model {model!r} has {size} bytes of repository files, more than a ConfigMap holds "
                f"({CONFIG_MAP_MAX_BYTES}): move large files to the shared storage"
            )
        name = f"{base_name}-{model.replace('_', '-').lower()}"
        items = tuple(sorted((config_map_key(p), p) for p in model_files))
        out.append(RepositoryConfigMap(name=name, model=model, data=data, items=items))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ValueError(f"model names map to the same ConfigMap name: {names}: rename the models")
    return out


def config_map_data(
    config_maps: pulumi.Output[list[RepositoryConfigMap]], name: str
) -> pulumi.Output[dict[str, str]]:
    """The ``data`` of the ConfigMap called ``name`` among ``config_maps`` (known once they are)."""
    return config_maps.apply(lambda maps: next(m.data for m in maps if m.name == name))


VERSION_MARKER = ".keep"
"""File the projected volume puts into the version directory of models that have no files there."""


def repository_volume(name: str, config_maps: Sequence[RepositoryConfigMap]) -> dict:
    """A projected volume assembling the repository from its ConfigMaps (items with paths).

    Triton needs a version directory ``<model>/1/`` for every model, also for those without
    files in it (ensembles, the tensorrtllm backend's model). ConfigMap items cannot create an
    empty directory, so a downwardAPI item writes ``<model>/1/.keep`` (the namespace's name) for
    each such model; Triton ignores the file.
    """
    sources: list[dict] = [
        {"configMap": {"name": c.name, "items": [{"key": key, "path": path} for key, path in c.items]}}
        for c in config_maps
    ]
    markers = [
        {"path": f"{c.model}/1/{VERSION_MARKER}", "fieldRef": {"fieldPath": "metadata.namespace"}}
        for c in config_maps
        if not any(path.startswith(f"{c.model}/1/") for _, path in c.items)
    ]
    if markers:
        sources.append({"downwardAPI": {"items": markers}})
    return {"name": name, "projected": {"defaultMode": 0o444, "sources": sources}}


def repository_files_from_config_maps(config_maps: Sequence[RepositoryConfigMap]) -> dict[str, str]:
    """``{path: text}`` as the projected volume lays the ConfigMaps out (what Triton reads)."""
    out: dict[str, str] = {}
    for c in config_maps:
        for key, path in c.items:
            out[path] = c.data[key]
    return out


def content_hash(files: Mapping[str, str]) -> str:
    """Short stable hash of ``{path: text}``."""
    canonical = json.dumps(dict(sorted(files.items())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]

