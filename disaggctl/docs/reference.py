"""The configuration reference (``docs/config-reference.md``) and the stack files' JSON Schema
(``schema/stack.schema.json``), both generated from the pydantic models of ``components.config``.

``python -m disaggctl docs`` writes them; ``--check`` fails when the committed files differ (CI runs
the same comparison in ``tests/disaggctl/docs/test_config_reference.py``). Descriptions are the attribute
docstrings of the models (read from their source, so no model pays for it at import), examples come
from the shipped stacks where they set a key, and which runtime, mode, provider or fabric a key
applies to comes from :data:`APPLIES_TO`, one table.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
import textwrap
import types
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.config.stack import NAMESPACE, StackConfig

REFERENCE_PATH = Path("docs/config-reference.md")
SCHEMA_PATH = Path("schema/stack.schema.json")
SCHEMA_LINE = f"# yaml-language-server: $schema={SCHEMA_PATH}"
"""First line of every shipped stack file: editors with the YAML language server validate and
complete the file against the schema (a path relative to the stack file)."""
EXAMPLE_STACKS = ("Pulumi.dev.yaml", "Pulumi.prod.yaml")
"""Stack files whose values are shown as examples (the first that sets a key wins)."""
PROVIDER_NAMESPACES = ("aws", "kubernetes", "pulumi", "random", "tls", "command")
"""Config namespaces of providers (``aws:region``), passed through unread by the loader."""

APPLIES_TO: dict[str, str] = {
    "cluster.eks": "provider: eks",
    "cluster.existing": "provider: existing",
    "platform.networkOperator": "fabric infiniband or roce (existing clusters)",
    "platform.efaDevicePlugin": "fabric efa (EKS pools with efa: true)",
    "platform.karpenter": "provider eks, pools with autoscaler: karpenter",
    "platform.loadBalancerController": "provider eks",
    "platform.security.tritonRestrictedApis": "runtime engine",
    "models": "runtime llmapi",
    "engines": "runtime engine",
    "deployments[].workers": "mode tensor-parallel",
    "deployments[].prefill": "mode prefill-decode",
    "deployments[].decode": "mode prefill-decode",
    "deployments[].workers.model": "runtime llmapi",
    "deployments[].workers.engine": "runtime engine",
    "deployments[].workers.llmApi": "runtime llmapi",
    "deployments[].prefill.model": "runtime llmapi",
    "deployments[].prefill.engine": "runtime engine",
    "deployments[].decode.engine": "runtime engine",
    "deployments[].prefill.llmApi": "runtime llmapi",
    "deployments[].decode.model": "runtime llmapi",
    "deployments[].decode.llmApi": "runtime llmapi",
    "deployments[].prefill.llmApi.cacheTransceiverConfig": "mode prefill-decode, runtime llmapi",
    "deployments[].decode.llmApi.cacheTransceiverConfig": "mode prefill-decode, runtime llmapi",
    "deployments[].orchestrator.replicas": "runtime llmapi (the router)",
    "deployments[].orchestrator.maxReplicas": "runtime llmapi (the router)",
    "deployments[].orchestrator.routingPolicy": "runtime llmapi (the router)",
    "deployments[].orchestrator.maxQueueDelayMicroseconds": "runtime engine (Triton)",
    "deployments[].orchestrator.kvCacheFreeGpuMemFraction": "runtime engine (Triton)",
    "deployments[].orchestrator.enableKvCacheReuse": "runtime engine (Triton)",
    "deployments[].orchestrator.batchingStrategy": "runtime engine (Triton)",
    "deployments[].orchestrator.maxBatchSize": "runtime engine (Triton)",
    "images.trtllm": "runtime llmapi",
    "images.trtllmVersion": "runtime llmapi",
    "images.tritonTrtllm": "runtime engine",
    "images.tritonTrtllmVersion": "runtime engine",
}
"""Key path (``[]`` for list items, map keys left out) -> what it applies to; a key inherits the
entry of its nearest listed parent; a key with none applies to every runtime and mode."""

EXAMPLES: dict[str, Any] = {
    "cluster.existing.kubeconfig": {"secure": "v1:…"},
    "cluster.existing.context": "gpu-cluster",
    "cluster.existing.storageClass": "weka-rwx",
    "cluster.existing.gpuPools[].name": "a100",
    "cluster.existing.gpuPools[].nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
    "cluster.existing.systemNodeSelector": {"node-role.example.com/system": "true"},
    "cluster.eks.storage.bucketName": "llm-dev-models",
    "cluster.eks.gpuNodePools[].labels": {"example.com/team": "inference"},
    "cluster.eks.addonVersions": {"vpc-cni": "v1.19.2-eksbuild.1"},
    "platform.security.publicFrontends": {
        "llama-8b": {"sourceRanges": ["198.51.100.0/24"], "auth": {"key": {"secretName": "llama-api-key"}}}
    },
    "pricing.onDemand": {"p5.48xlarge": 55.04},
    "pricing.capacityBlocks": {"cr-0a1b2c3d4e5f60718": 31.46},
    "pricing.reservations": {"cr-0f1e2d3c4b5a69788": 60.0},
    "deployments[].frontend.tokenizer": "meta-llama/Llama-3.1-8B-Instruct",
    "deployments[].frontend.servedModelName": "llama-3.1-8b",
    "deployments[].workers.engine": "llama-8b-tp2",
    "images.frontend": "ghcr.io/example/disagg-frontend:1.0.0",
    "images.trtllmVersion": "1.2.1",
    "images.tritonTrtllmVersion": "1.2.1",
    "cluster.existing.loadBalancerServices": True,
    "cluster.existing.gpuPools[].maxNodes": 4,
    "cluster.existing.gpuPools[].gpuArch": "ampere",
    "deployments[].workload.budget.maxDollarsPerHour": 400.0,
    "deployments[].workload.concurrency": 256,
    "ChartConfig.chart": "gpu-operator",
    "ChartConfig.repository": "https://helm.ngc.nvidia.com/nvidia",
    "ChartConfig.version": "v26.7.0",
    "LengthDistribution.mean": 4000,
    "LengthDistribution.max": 16000,
    "CudaGraphOptions.batchSizes": [1, 2, 4, 8, 16, 32, 64],
    "LlmApiOptions.moeExpertParallelSize": 8,
    "RdmaSharedDeviceConfig.ifNames": ["ibp1s0"],
    "RdmaSharedDeviceConfig.linkTypes": ["infiniband"],
    "NetworkOperatorConfig.componentVersion": "network-operator-v26.4.1",
    "GpuOperatorConfig.driver": False,
    "GpuOperatorConfig.toolkit": False,
    "GpuOperatorConfig.gpudirectRdma": True,
    "LoadBalancerControllerConfig.enabled": False,
    "SecretRefConfig.secretName": "llama-api-key",
    "PublicFrontendConfig.sourceRanges": ["198.51.100.0/24"],
    "OrchestratorConfig.maxReplicas": 4,
    "OrchestratorConfig.maxBatchSize": 64,
    "EngineSpec.checkpoint": "meta-llama/Llama-3.1-8B-Instruct",
    "StorageConfig.availabilityZone": "us-west-2b",
    "ExistingPoolConfig.gpusPerNode": 8,
    "ExistingPoolConfig.gpuMemoryGib": 80,
    "ImagesConfig.nixlPluginsDir": "/opt/nvidia/nvda_nixl/plugins",  # images/worker/Dockerfile
    "OrchestratorConfig.routingPolicy": "least-outstanding-requests",
    "RoutingConfig.maxLocalPrefillTokens": 256,
    "CacheTransceiverOptions.kvTransferTimeoutMs": 60000,
    "StackConfig.hfToken": {"secure": "v1:…"},
    "StackConfig.apiKeys": {"llama-70b": {"secure": "v1:…"}},
    "StackConfig.tritonAdminKey": {"secure": "v1:…"},
    "GpuOperatorConfig.serviceMonitor": True,
    "KedaConfig.prometheusUrl": "http://prometheus-operated.monitoring.svc:9090",
    "MetricsAdapterConfig.prometheusUrl": "http://prometheus-operated.monitoring.svc:9090",
    "AdmissionConfig.frontendMaxInflight": 512,
    "AdmissionConfig.routerMaxInflight": 1024,
    "TimeoutsConfig.connectSeconds": 5,
    "TimeoutsConfig.firstByteSeconds": 120,
    "TimeoutsConfig.idleSeconds": 60,
    "TimeoutsConfig.requestSeconds": 900,
    "TimeoutsConfig.headerSeconds": 10,
    "TimeoutsConfig.bodySeconds": 30,
}
"""Examples of keys no shipped stack sets and whose default is empty, by key path or ``Model.key``."""


# -- walking the models ------------------------------------------------------------------------------------


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _item_marker(annotation: Any) -> str:
    """``[]`` when the field's models sit in a list, ``.<key>`` in a map, else empty."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return next((m for a in typing.get_args(annotation) if (m := _item_marker(a))), "")
    if origin is list:
        return "[]"
    if origin is dict:
        return ".<key>"
    return ""


def model_paths() -> dict[type[BaseModel], list[str]]:
    """Every model reachable from StackConfig -> the key paths it is found at (first is canonical)."""
    found: dict[type[BaseModel], list[str]] = {}

    def walk(model: type[BaseModel], path: str) -> None:
        found.setdefault(model, [])
        if path in found[model]:
            return
        found[model].append(path)
        for name, field in model.model_fields.items():
            key = field.alias or name
            for sub in _models_in(field.annotation):
                walk(sub, f"{path}.{key}{_item_marker(field.annotation)}".lstrip("."))

    walk(StackConfig, "")
    return found


@cache
def attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the docstring under it in the class body (its bases' too)."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def field_description(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    return attribute_docs(model).get(name) or field.description or ""


def applies_to(path: str) -> str:
    """The :data:`APPLIES_TO` entry of ``path`` or of its nearest listed parent ('' for none)."""
    key = path.replace(".<key>", "")
    while key:
        if key in APPLIES_TO:
            return APPLIES_TO[key]
        key = key.rpartition(".")[0]
    return ""


def _applies_text(where: list[str], key: str) -> str:
    """What a key applies to: its own table entry, else its section's (which the heading names)."""
    own = {APPLIES_TO.get(f"{w}.{key}".lstrip(".").replace(".<key>", "")) for w in where}
    if len(own) == 1 and None not in own:
        return f"applies to {own.pop()}"
    inherited = {applies_to(w) for w in where}
    if inherited == {""}:
        return "all runtimes and modes"
    if len(inherited) == 1:
        return f"applies to {inherited.pop()}"
    return "applies where its section does"


def type_text(annotation: Any, paths: dict[type[BaseModel], list[str]]) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_text(a, paths) for a in args)
    if origin in (list, tuple):
        return f"list of {type_text(args[0], paths)}"
    if origin is dict:
        return f"map of {type_text(args[0], paths)} to {type_text(args[1], paths)}"
    if origin is typing.Annotated:
        return type_text(args[0], paths)
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation in names:
        return names[annotation]
    return str(getattr(annotation, "__name__", annotation))


def constraints_text(field: FieldInfo) -> str:
    bounds = {Ge: ("≥", "ge"), Gt: (">", "gt"), Le: ("≤", "le"), Lt: ("<", "lt")}
    parts: list[str] = []
    for item in field.metadata:
        for kind, (symbol, attribute) in bounds.items():
            if isinstance(item, kind):
                parts.append(f"{symbol} {getattr(item, attribute)}")
        if isinstance(item, MinLen):
            parts.append(f"at least {item.min_length} items")
        if isinstance(item, MaxLen):
            parts.append(f"at most {item.max_length} items")
    return ", ".join(parts)


def _flow(value: Any) -> str:
    """A value as one line of YAML (flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default if field.default is not PydanticUndefined else field.default_factory()  # type: ignore[call-arg,misc]
    if isinstance(value, BaseModel):
        dumped = value.model_dump(by_alias=True, exclude_defaults=True)
        return f"`{_flow(dumped)}`" if dumped else "its defaults"
    return f"`{_flow(value)}`"


# -- examples from the shipped stacks ------------------------------------------------------------------------


def stack_examples(project_dir: Path) -> dict[str, Any]:
    """Key path -> the first value a shipped stack gives it (leaves and short lists)."""
    examples: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if path and path not in examples:
            examples[path] = value
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}".lstrip("."))
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")

    for name in EXAMPLE_STACKS:
        path = project_dir / name
        if not path.exists():
            continue
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        for key, value in config.items():
            namespace, _, section = key.partition(":")
            if namespace == NAMESPACE:
                walk(value, section)
    return examples


def example_of(model: type[BaseModel], key: str, where: list[str], examples: dict[str, Any], field: FieldInfo) -> Any:
    """An example of ``key`` of ``model`` (found at the paths ``where``)."""
    paths = [f"{w}.{key}".lstrip(".") for w in where]
    for path in paths:
        if path in EXAMPLES:
            return EXAMPLES[path]
    for path in paths:
        found = _stack_example(path, examples)
        if found is not None:
            return found
    if f"{model.__name__}.{key}" in EXAMPLES:
        return EXAMPLES[f"{model.__name__}.{key}"]
    if not field.is_required() and field.default not in (None, PydanticUndefined, {}, [], ()):
        default = field.default
        return default.model_dump(by_alias=True, exclude_defaults=True) if isinstance(default, BaseModel) else default
    return None


def _stack_example(path: str, examples: dict[str, Any]) -> Any:
    if "<key>" in path:
        head, _, tail = path.partition(".<key>")
        for known, value in examples.items():
            if known.startswith(head + ".") and known[len(head) + 1 :].partition(".")[2] == tail.lstrip(".") and (
                tail or known.count(".") == head.count(".") + 1
            ):
                return value
    return examples.get(path)


# -- the two files -------------------------------------------------------------------------------------------


def config_reference(project_dir: Path) -> str:
    """docs/config-reference.md."""
    paths = model_paths()
    examples = stack_examples(project_dir)
    out = [
        "# Configuration reference",
        "",
        "<!-- generated by `python -m disaggctl docs` from the models in components/config; do not edit -->",
        "",
        f"Every key of a stack file's `config:` section. Keys of this project read `{NAMESPACE}:<key>`;",
        f"provider keys ({', '.join(f'`{n}:…`' for n in PROVIDER_NAMESPACES)}) pass through (`aws:region` must",
        "equal `cluster.eks.region`). Keys are camelCase; unknown keys are refused with the closest known",
        "one. The same models give the JSON Schema editors validate against:",
        f"[`{SCHEMA_PATH}`](../{SCHEMA_PATH}) (the first line of each shipped stack points at it).",
        "",
        "Types and constraints below are checked when the file is read; the checks that involve several",
        "keys (pools against worker groups, GPU memory, capacity, security policy) run next, before",
        "anything is declared, and each problem is one line naming the key, the value and the fix.",
        "",
    ]
    for model, where in sorted(paths.items(), key=lambda item: (item[1][0].count("."), item[1][0])):
        out += _model_section(model, where, paths, examples)
    return "\n".join(out).rstrip() + "\n"


def _model_section(
    model: type[BaseModel], where: list[str], paths: dict[type[BaseModel], list[str]], examples: dict[str, Any]
) -> list[str]:
    doc = inspect.cleandoc(model.__doc__ or "")
    if model is StackConfig:
        located = f"`{NAMESPACE}:<section>`"
    else:
        located = ", ".join(f"`{NAMESPACE}:{w}`" + (f" ({a})" if (a := applies_to(w)) else "") for w in where)
    lines = [f"## {model.__name__}", "", located, ""]
    if doc:
        lines += [doc, ""]
    for name, field in model.model_fields.items():
        key = field.alias or name
        path = f"{where[0]}.{key}".lstrip(".")
        shown_key = f"{NAMESPACE}:{key}" if model is StackConfig else key
        facts = [type_text(field.annotation, paths), default_text(field)]
        constraints = constraints_text(field)
        if constraints:
            facts.append(constraints)
        facts.append(_applies_text(where, key))
        lines.append(f"- **`{shown_key}`** · " + " · ".join(facts))
        description = field_description(model, name, field)
        if description:
            lines.append("  " + " ".join(description.replace("``", "`").split()))
        nested = any(True for _ in _models_in(field.annotation))  # its keys have their own examples
        example = None if nested and path not in EXAMPLES else example_of(model, key, where, examples, field)
        if example is not None and example != {}:
            lines.append(f"  Example: `{key}: {_flow(example)}`")
        lines.append("")
    return lines


def stack_schema() -> dict[str, Any]:
    """schema/stack.schema.json: a stack file whose ``config:`` holds this project's sections."""
    model_schema = StackConfig.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Any] = model_schema.pop("$defs", {})
    classes = {model.__name__: model for model in model_paths()}
    for name, schema in [*defs.items(), ("StackConfig", model_schema)]:
        model = classes.get(name)
        if model is None:
            continue
        for field_name, field in model.model_fields.items():
            prop = schema.get("properties", {}).get(field.alias or field_name)
            description = field_description(model, field_name, field)
            if prop is not None and description:
                prop["description"] = " ".join(description.split())
    defs["PulumiSecret"] = {
        "type": "object",
        "description": "A value encrypted by `pulumi config set --secret`.",
        "properties": {"secure": {"type": "string"}},
        "required": ["secure"],
        "additionalProperties": False,
    }
    sections = {
        f"{NAMESPACE}:{key}": _with_secrets(prop) for key, prop in model_schema["properties"].items()
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/disagg-inference/schema/stack.schema.json",
        "title": "Pulumi.<stack>.yaml of this project",
        "description": "Generated by `python -m disaggctl docs` from components/config; see docs/config-reference.md.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": sections,
                "required": [f"{NAMESPACE}:{key}" for key in model_schema.get("required", [])],
                "patternProperties": {f"^({'|'.join(PROVIDER_NAMESPACES)}):": {}},
                "additionalProperties": False,
            },
        },
        "$defs": {name: _with_secrets(schema) for name, schema in sorted(defs.items())},
    }


def _with_secrets(schema: Any) -> Any:
    """``schema`` where every string may also be a Pulumi secret (``{secure: …}``)."""
    if isinstance(schema, list):
        return [_with_secrets(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _with_secrets(value) if key not in ("default", "enum", "const", "examples") else value for key, value in schema.items()}
    if out.get("type") == "string" and "enum" not in out and "const" not in out:
        described = {k: out.pop(k) for k in ("description", "default", "title") if k in out}
        return {**described, "anyOf": [out, {"$ref": "#/$defs/PulumiSecret"}]}
    return out


def generated_files(project_dir: Path) -> dict[Path, str]:
    """Relative path -> the text it must hold."""
    return {
        REFERENCE_PATH: config_reference(project_dir),
        SCHEMA_PATH: json.dumps(stack_schema(), indent=2, ensure_ascii=False) + "\n",
    }


def stale_files(project_dir: Path) -> list[Path]:
    """Generated files that are missing or differ from what the models give now."""
    return [
        path
        for path, text in generated_files(project_dir).items()
        if not (project_dir / path).exists() or (project_dir / path).read_text() != text
    ]


def _run_docs(args: argparse.Namespace) -> int:
    project_dir = Path(args.project).resolve()
    if args.check:
        stale = stale_files(project_dir)
        for path in stale:
            print(f"docs: {path} is not what the models generate: run `python -m disaggctl docs`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated_files(project_dir).items():
        (project_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (project_dir / path).write_text(text)
        print(f"wrote {path}")
    return 0


def add_docs_command(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser("docs", help="write docs/config-reference.md and schema/stack.schema.json from the config models")
    cmd.add_argument("--check", action="store_true", help="only compare: exit 1 if a file is stale")
    cmd.add_argument("--project", default=".", help="project directory (default .)")
    cmd.set_defaults(func=_run_docs)
