"""Where the tiers answer: explicit URLs, or the Pulumi stack's outputs.

Stack outputs read (``pulumi stack output --json > outputs.json``), in this order:

* ``frontendEndpoint`` / ``orchestratorEndpoint``: one deployment's endpoints;
* ``frontendEndpoints`` / ``orchestratorEndpoints``: a map ``{deployment name: endpoint}``;
  ``--deployment NAME`` picks one (not needed when the map holds exactly one);
* ``fabric``: ``efa`` | ``infiniband`` | ``roce`` | ``none`` (the transport the fabric check expects).

An endpoint value is either a string or an object:

* ``"host:port"`` or ``"grpc://host:port"``: KServe v2 gRPC (Triton's 8001);
* ``"http://host:port"``: KServe v2 HTTP (Triton's 8000);
* ``{"grpc": "host:8001", "http": "host:8000"}``: both (either key may be absent).

The frontend needs a gRPC endpoint (streaming uses ``ModelStreamInfer``); HTTP is an extra
health check when present. The orchestrator may be given by either protocol.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

FRONTEND_ENDPOINT_KEY = "frontendEndpoint"
ORCHESTRATOR_ENDPOINT_KEY = "orchestratorEndpoint"
FRONTEND_ENDPOINTS_KEY = "frontendEndpoints"
ORCHESTRATOR_ENDPOINTS_KEY = "orchestratorEndpoints"
FABRIC_KEY = "fabric"
STACK_OUTPUT_KEYS = (
    FRONTEND_ENDPOINT_KEY,
    ORCHESTRATOR_ENDPOINT_KEY,
    FRONTEND_ENDPOINTS_KEY,
    ORCHESTRATOR_ENDPOINTS_KEY,
    FABRIC_KEY,
)
"""Every stack output key this package reads; the Pulumi program exports these names."""

Protocol = Literal["grpc", "http"]


class EndpointError(ValueError):
    """Endpoints could not be resolved; the message names the key or flag and the fix."""


@dataclass(frozen=True)
class Url:
    """One Triton endpoint: protocol and ``host:port`` (tritonclient takes no scheme)."""

    protocol: Protocol
    address: str

    def __str__(self) -> str:
        return f"{self.protocol}://{self.address}"


@dataclass(frozen=True)
class Endpoints:
    """The endpoints ``verify`` checks."""

    frontend_grpc: Url | None
    frontend_http: Url | None = None
    orchestrator: Url | None = None
    fabric: str | None = None
    source: str = "flags"
    """Where they came from (flags, or the stack outputs file), for messages."""


def parse_url(text: str, *, default: Protocol = "grpc", what: str = "endpoint") -> Url:
    """``host:port``, ``grpc://host:port`` or ``http://host:port`` as a :class:`Url`."""
    raw = text.strip()
    protocol: Protocol = default
    for scheme in ("grpc", "http"):
        if raw.startswith(f"{scheme}://"):
            protocol = scheme  # type: ignore[assignment]
            raw = raw[len(scheme) + 3 :]
            break
    else:
        if "://" in raw:
            raise EndpointError(
                f"{what} {text!r}: unsupported scheme {raw.split('://')[0]!r}; "
                "use host:port, grpc://host:port or http://host:port"
            )
    raw = raw.rstrip("/")
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in raw:
        raise EndpointError(f"{what} {text!r} is not host:port (e.g. frontend.ns.svc:8001)")
    return Url(protocol, raw)


def _endpoint_urls(value: object, what: str) -> dict[Protocol, Url]:
    """Both forms of an endpoint output value, keyed by protocol."""
    if isinstance(value, str):
        url = parse_url(value, what=what)
        return {url.protocol: url}
    if isinstance(value, dict):
        out: dict[Protocol, Url] = {}
        for proto in ("grpc", "http"):
            if value.get(proto):
                out[proto] = parse_url(str(value[proto]), default=proto, what=f"{what}.{proto}")  # type: ignore[arg-type]
        if not out:
            raise EndpointError(f"{what} has neither a 'grpc' nor an 'http' entry: {value!r}")
        return out
    raise EndpointError(f"{what} must be a string or an object with grpc/http, not {type(value).__name__}")


def _pick(outputs: dict, single_key: str, map_key: str, deployment: str | None) -> tuple[object, str] | None:
    """The endpoint value for one tier: the single key, else the deployment's entry of the map."""
    if single_key in outputs and deployment is None:
        return outputs[single_key], single_key
    if map_key in outputs:
        entries = outputs[map_key]
        if not isinstance(entries, dict):
            raise EndpointError(f"stack output {map_key} must map deployment names to endpoints")
        if deployment is None:
            if len(entries) != 1:
                raise EndpointError(
                    f"stack output {map_key} has {len(entries)} deployments {sorted(entries)}: "
                    "pass --deployment NAME"
                )
            deployment = next(iter(entries))
        if deployment not in entries:
            raise EndpointError(
                f"deployment {deployment!r} is not in stack output {map_key} (has {sorted(entries)}): "
                "fix --deployment"
            )
        return entries[deployment], f"{map_key}[{deployment}]"
    if single_key in outputs:
        return outputs[single_key], single_key
    return None


def endpoints_from_outputs(outputs: dict, *, deployment: str | None = None, source: str = "stack outputs") -> Endpoints:
    """:class:`Endpoints` from a parsed ``pulumi stack output --json`` object."""
    if not isinstance(outputs, dict):
        raise EndpointError(f"{source}: expected a JSON object of stack outputs")
    frontend = _pick(outputs, FRONTEND_ENDPOINT_KEY, FRONTEND_ENDPOINTS_KEY, deployment)
    if frontend is None:
        raise EndpointError(
            f"{source} has no {FRONTEND_ENDPOINT_KEY} or {FRONTEND_ENDPOINTS_KEY} "
            f"(keys: {sorted(outputs)}): export one from the Pulumi program, or pass --frontend-url"
        )
    f_urls = _endpoint_urls(frontend[0], f"stack output {frontend[1]}")
    orch = _pick(outputs, ORCHESTRATOR_ENDPOINT_KEY, ORCHESTRATOR_ENDPOINTS_KEY, deployment)
    o_url = None
    if orch is not None:
        o_urls = _endpoint_urls(orch[0], f"stack output {orch[1]}")
        o_url = o_urls.get("grpc") or o_urls.get("http")
    fabric = outputs.get(FABRIC_KEY)
    return Endpoints(
        frontend_grpc=f_urls.get("grpc"),
        frontend_http=f_urls.get("http"),
        orchestrator=o_url,
        fabric=str(fabric) if fabric is not None else None,
        source=source,
    )


def load_stack_outputs(path: Path) -> dict:
    """The JSON object of a ``pulumi stack output --json`` file; :class:`EndpointError` if unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise EndpointError(f"--stack-outputs {path}: cannot read ({err.strerror}); "
                            "write it with: pulumi stack output --json > FILE") from err
    except json.JSONDecodeError as err:
        raise EndpointError(f"--stack-outputs {path}: not JSON ({err}); "
                            "write it with: pulumi stack output --json > FILE") from err
    if not isinstance(data, dict):
        raise EndpointError(f"--stack-outputs {path}: expected a JSON object of stack outputs")
    return data


def resolve_endpoints(
    *,
    stack_outputs: Path | None = None,
    deployment: str | None = None,
    frontend_url: str | None = None,
    frontend_http_url: str | None = None,
    orchestrator_url: str | None = None,
) -> Endpoints:
    """Explicit URLs override what the stack outputs file says, tier by tier."""
    base = Endpoints(frontend_grpc=None)
    if stack_outputs is not None:
        base = endpoints_from_outputs(
            load_stack_outputs(stack_outputs), deployment=deployment, source=str(stack_outputs)
        )
    elif deployment is not None:
        raise EndpointError("--deployment only applies with --stack-outputs FILE")
    f_grpc, f_http = base.frontend_grpc, base.frontend_http
    if frontend_url:
        url = parse_url(frontend_url, what="--frontend-url")
        if url.protocol == "http":
            f_http = url
        else:
            f_grpc = url
    if frontend_http_url:
        f_http = parse_url(frontend_http_url, default="http", what="--frontend-http-url")
    orch = parse_url(orchestrator_url, what="--orchestrator-url") if orchestrator_url else base.orchestrator
    if f_grpc is None:
        raise EndpointError(
            "no gRPC endpoint for the frontend: pass --frontend-url host:8001, or --stack-outputs "
            f"FILE whose {FRONTEND_ENDPOINT_KEY} has a gRPC address (streaming needs gRPC)"
        )
    return Endpoints(
        frontend_grpc=f_grpc,
        frontend_http=f_http,
        orchestrator=orch,
        fabric=base.fabric,
        source="flags" if stack_outputs is None else base.source,
    )
