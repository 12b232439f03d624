"""What ``verify --stack`` and ``fabric-check --stack`` take from a stack, so the shipped stacks
need no other flag: the validated configuration (``Pulumi.<stack>.yaml`` through the loader) gives
each deployment's API (runtime llmapi → the OpenAI API, engine → KServe v2), its served model name
and the header of its API key, and each GPU pool's fabric, EFA interfaces, node selector
(``disagg.dev/pool``) and tolerations; the endpoints come from the stack's outputs (``pulumi stack
output --json``, or the file given).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.config import ConfigError, StackConfig, load_stack_config

from .endpoints import EndpointError

Api = Literal["openai", "kserve"]
API_OF_RUNTIME: dict[str, Api] = {"llmapi": "openai", "engine": "kserve"}
"""The client API each runtime's frontend serves (llmapi: runtime/frontend.py, OpenAI + KServe
HTTP; engine: Triton's KServe v2 gRPC/HTTP)."""
PULUMI_OUTPUT_TIMEOUT_S = 60


@dataclass(frozen=True)
class DeploymentTarget:
    """One deployment as verify sees it."""

    name: str
    api: Api
    model: str
    """The model name clients send (``frontend.servedModelName``, else the deployment's name; the
    engine runtime's frontend serves the ``ensemble``)."""
    api_key_header: str | None
    """Header of the client key when the frontend is public (platform.security.publicFrontends)."""


def read_stack(project_dir: Path, stack: str) -> StackConfig:
    """The validated configuration of ``Pulumi.<stack>.yaml`` (ConfigError: one line per problem)."""
    from components.config.stack_file import StackNotFoundError, read_stack_config

    try:
        _, raw, secret_keys = read_stack_config(project_dir, stack)
    except StackNotFoundError as err:
        raise ConfigError([str(err)]) from None
    return load_stack_config(raw, secret_keys)


def deployment_targets(config: StackConfig, only: str | None = None) -> list[DeploymentTarget]:
    """Every deployment of the stack (or ``only``), in stack order; ValueError for an unknown name."""
    names = [d.name for d in config.deployments]
    if only is not None and only not in names:
        raise ValueError(f"--deployment {only!r} is not a deployment of the stack (it has {', '.join(names) or 'none'})")
    targets = []
    for deployment in config.deployments:
        if only is not None and deployment.name != only:
            continue
        public = config.platform.security.public_frontends.get(deployment.name)
        exposed = public is not None and not deployment.frontend.internal_load_balancer
        api = API_OF_RUNTIME[deployment.runtime]
        model = deployment.frontend.served_model_name or deployment.name if api == "openai" else "ensemble"
        targets.append(DeploymentTarget(deployment.name, api, model, public.auth.header if exposed and public else None))
    return targets


def stack_outputs(stack: str, project_dir: Path, outputs_file: Path | None = None) -> dict:
    """The stack's outputs: ``outputs_file`` when given, else ``pulumi stack output --json``."""
    from .endpoints import load_stack_outputs

    if outputs_file is not None:
        return load_stack_outputs(outputs_file)
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise EndpointError(
            f"no pulumi CLI on PATH to read stack {stack!r}'s outputs: install it, or pass "
            "--stack-outputs FILE (pulumi stack output --json > FILE)"
        )
    try:
        done = subprocess.run(
            [pulumi, "stack", "output", "--json", "--stack", stack],
            cwd=project_dir, capture_output=True, text=True, timeout=PULUMI_OUTPUT_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise EndpointError(f"pulumi stack output --stack {stack} failed ({err}): pass --stack-outputs FILE") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1][:200]
        raise EndpointError(f"pulumi stack output --stack {stack} failed: {reason}: deploy it, or pass --stack-outputs FILE")
    try:
        outputs = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise EndpointError(f"pulumi stack output --stack {stack} printed no JSON: pass --stack-outputs FILE") from None
    if not isinstance(outputs, dict):
        raise EndpointError(f"pulumi stack output --stack {stack} printed no JSON object: pass --stack-outputs FILE")
    return outputs


def read_api_key(path: Path) -> str:
    """The key in ``path`` (first line, stripped); EndpointError naming the file otherwise."""
    try:
        key = path.read_text().strip().splitlines()
    except OSError as err:
        raise EndpointError(f"--api-key-file {path}: cannot read ({err.strerror}): fix the path") from None
    if not key or not key[0].strip():
        raise EndpointError(f"--api-key-file {path} is empty: write the frontend's key in it")
    return key[0].strip()


def fabric_pools(config: StackConfig, only: str | None = None) -> list[str]:
    """GPU pools of the stack a fabric check can run on (a fabric, two nodes possible), or ``only``."""
    pools = config.cluster.node_pools()
    if only is not None:
        if only not in pools:
            raise ValueError(f"--pool {only!r} is not a GPU pool of the stack (it has {', '.join(sorted(pools))})")
        return [only]
    return [name for name, pool in pools.items() if pool.fabric != "none"]
