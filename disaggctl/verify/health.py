"""Liveness and readiness of every tier: server live, server ready, model ready."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from .endpoints import Endpoints, Url

FRONTEND_MODEL = "ensemble"
ORCHESTRATOR_MODEL = "tensorrt_llm"


@dataclass(frozen=True)
class Check:
    """One health check's outcome."""

    tier: str
    endpoint: str
    name: str
    ok: bool
    detail: str = ""


def _error_text(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    msg = text[0] if text else type(err).__name__
    return msg if len(msg) <= 160 else msg[:157] + "..."


def _client(url: Url, timeout_s: float):
    if url.protocol == "http":
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(
            url.address, connection_timeout=timeout_s, network_timeout=timeout_s
        )
    import tritonclient.grpc as grpcclient

    return grpcclient.InferenceServerClient(url.address)


def _model_state(client, url: Url, model: str, timeout_s: float) -> str:
    """State and reason of ``model`` in the server's repository index, best effort."""
    try:
        if url.protocol == "http":
            index = client.get_model_repository_index()
        else:
            index = client.get_model_repository_index(as_json=True, client_timeout=timeout_s).get("models", [])
    except Exception as err:  # the index is only for a better message
        return f"repository index unavailable: {_error_text(err)}"
    for entry in index:
        if entry.get("name") == model:
            state = entry.get("state") or "UNKNOWN"
            reason = entry.get("reason") or ""
            return f"state {state}" + (f": {reason}" if reason else "")
    names = sorted({str(e.get("name")) for e in index})
    return f"not in the model repository (models: {', '.join(names) or 'none'})"


def check_endpoint(url: Url, *, tier: str, model: str, timeout_s: float = 5.0) -> list[Check]:
    """Server live, server ready and ``model`` ready on one endpoint."""
    endpoint = str(url)
    kw = {} if url.protocol == "http" else {"client_timeout": timeout_s}
    try:
        client = _client(url, timeout_s)
    except Exception as err:
        return [Check(tier, endpoint, "server live", False, f"cannot create client: {_error_text(err)}")]
    checks: list[Check] = []
    try:
        try:
            live = bool(client.is_server_live(**kw))
        except Exception as err:
            checks.append(Check(tier, endpoint, "server live", False, f"unreachable: {_error_text(err)}"))
            checks.append(Check(tier, endpoint, "server ready", False, "skipped: server not reachable"))
            checks.append(Check(tier, endpoint, f"model {model} ready", False, "skipped: server not reachable"))
            return checks
        checks.append(Check(tier, endpoint, "server live", live, "" if live else "server reports not live"))
        try:
            ready = bool(client.is_server_ready(**kw))
            detail = "" if ready else "server reports not ready (a model failed to load, or still loading)"
        except Exception as err:
            ready, detail = False, _error_text(err)
        checks.append(Check(tier, endpoint, "server ready", ready, detail))
        try:
            model_ready = bool(client.is_model_ready(model, **kw))
            detail = "" if model_ready else _model_state(client, url, model, timeout_s)
        except Exception as err:
            model_ready, detail = False, _error_text(err)
        checks.append(Check(tier, endpoint, f"model {model} ready", model_ready, detail))
        return checks
    finally:
        with contextlib.suppress(Exception):
            client.close()


def check_health(
    endpoints: Endpoints,
    *,
    frontend_model: str = FRONTEND_MODEL,
    orchestrator_model: str = ORCHESTRATOR_MODEL,
    timeout_s: float = 5.0,
) -> list[Check]:
    """Every tier's checks: frontend gRPC (and HTTP when known), then the orchestrator."""
    checks: list[Check] = []
    if endpoints.frontend_grpc is not None:
        checks += check_endpoint(endpoints.frontend_grpc, tier="frontend", model=frontend_model, timeout_s=timeout_s)
    if endpoints.frontend_http is not None:
        checks += check_endpoint(endpoints.frontend_http, tier="frontend", model=frontend_model, timeout_s=timeout_s)
    if endpoints.orchestrator is not None:
        checks += check_endpoint(
            endpoints.orchestrator, tier="orchestrator", model=orchestrator_model, timeout_s=timeout_s
        )
    else:
        checks.append(
            Check("orchestrator", "-", "endpoint known", False,
                  "no orchestrator endpoint: pass --orchestrator-url or export orchestratorEndpoint")
        )
    return checks


def render_table(checks: Sequence[Check]) -> str:
    """Fixed-width PASS/FAIL table, one row per check, details after the status."""
    headers = ("TIER", "ENDPOINT", "CHECK", "RESULT")
    rows = [(c.tier, c.endpoint, c.name, "PASS" if c.ok else "FAIL") for c in checks]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row, check in zip(rows, checks, strict=True):
        line = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        if check.detail:
            line += f"  {check.detail}"
        lines.append(line)
    return "\n".join(lines) + "\n"
