"""``plan --write``: change a deployment's layout and prediction in a stack file, nothing else.

A round-trip edit with ruamel.yaml (comments, key order, quoting and every setting the planner
does not own stay as they are): the planner owns ``mode``, each worker role's ``pool``,
``groups``, ``podsPerGroup``, ``gpusPerPod``, ``llmApi.{tensorParallelSize,
pipelineParallelSize, maxBatchSize, maxNumTokens}`` (and ``cudaGraphConfig.maxBatchSize``, which
must follow maxBatchSize) and ``workload.prediction``. ``minGroups``/``maxGroups`` keep their
ratio to ``groups`` (the autoscaling headroom plan checked against the pool). A role the new
mode adds starts as a copy of an existing role's settings.
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from engines.llm_api import GROUP_KEYS

NAMESPACE = "disagg"
ROLES = GROUP_KEYS
LAYOUT_KEYS = ("pool", "groups", "podsPerGroup", "gpusPerPod")
LLMAPI_LAYOUT_KEYS = ("tensorParallelSize", "pipelineParallelSize", "maxBatchSize", "maxNumTokens")


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)  # the shipped stack files' style
    y.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


def _set(mapping: CommentedMap, key: str, value: Any, after: str | None = None) -> None:
    """Set ``key`` in place, or insert it after ``after`` (else at the end) when new."""
    if key in mapping or after is None or after not in mapping:
        mapping[key] = value
        return
    mapping.insert(list(mapping).index(after) + 1, key, value)


def _scaled_bounds(group: CommentedMap, old_groups: int, groups: int) -> None:
    if "maxGroups" in group and group["maxGroups"] is not None:
        group["maxGroups"] = max(groups, math.ceil(int(group["maxGroups"]) * groups / max(1, old_groups) - 1e-9))
    if "minGroups" in group and group["minGroups"] is not None:
        group["minGroups"] = min(groups, math.floor(int(group["minGroups"]) * groups / max(1, old_groups) + 1e-9))


def write_layout(text: str, deployment: str, stanza: Mapping[str, Any]) -> str:
    """``text`` (a Pulumi.<stack>.yaml) with ``deployment``'s layout and prediction from
    ``stanza`` (:func:`disaggctl.plan.deployment_stanza`); every other byte kept where YAML allows."""
    y = _yaml()
    doc = y.load(text)
    deployments = doc["config"][f"{NAMESPACE}:deployments"]
    target = next(d for d in deployments if d.get("name") == deployment)
    base = next((target[r] for r in ROLES if isinstance(target.get(r), Mapping)), CommentedMap())
    target["mode"] = stanza["mode"]
    new_roles = [r for r in ROLES if r in stanza]
    for role in ROLES:
        if role in target and role not in new_roles:
            del target[role]
    previous = "mode"
    for role in new_roles:
        planned = stanza[role]
        if not isinstance(target.get(role), Mapping):
            _set(target, role, copy.deepcopy(base), after=previous)
        group = target[role]
        old_groups = int(group.get("groups", planned["groups"]))
        for key in LAYOUT_KEYS:
            _set(group, key, planned[key])
        _scaled_bounds(group, old_groups, int(planned["groups"]))
        if "llmApi" not in group or group["llmApi"] is None:
            group["llmApi"] = CommentedMap()
        options = group["llmApi"]
        for key in LLMAPI_LAYOUT_KEYS:
            _set(options, key, planned["llmApi"][key])
        graphs = options.get("cudaGraphConfig")
        if isinstance(graphs, CommentedMap) and "maxBatchSize" in graphs:
            graphs["maxBatchSize"] = planned["llmApi"]["maxBatchSize"]
        previous = role
    workload = target["workload"]
    workload["prediction"] = _plain(stanza["workload"]["prediction"])
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def _plain(value: Any) -> Any:
    """Plain mappings as block-style CommentedMaps (how the stack files write them)."""
    if isinstance(value, Mapping):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _plain(v)
        return out
    return value
