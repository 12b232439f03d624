"""Streaming completions over the OpenAI API (``POST /v1/completions``, ``stream: true``, SSE).

Standard library only (``http.client``). Each SSE event ``data: {...}`` whose first choice carries
non-empty ``text`` counts as one output token and is timed on arrival; ``data: [DONE]`` ends the
stream. :class:`OpenAISession` has the ``generate``/``close`` shape the load test drives, so the
same bounded test and report serve the OpenAI frontend and the KServe v2 one.
"""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

from .generate import GenerationResult
from .health import Check


class OpenAIError(RuntimeError):
    """The server answered something that is not an OpenAI completion stream."""


def _split(base_url: str) -> tuple[str, str, int, str]:
    url = base_url if "://" in base_url else f"http://{base_url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OpenAIError(f"OpenAI base URL {base_url!r} is not http(s)://host:port")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


class OpenAISession:
    """One HTTP connection to an OpenAI-compatible server, for sequential streamed completions."""

    def __init__(
        self, base_url: str, model: str, *, connect_timeout_s: float = 10.0, headers: dict[str, str] | None = None
    ) -> None:
        self.scheme, self.host, self.port, self.prefix = _split(base_url)
        self.model = model
        self.headers = dict(headers or {})
        """Sent with every request (the API key of a public frontend)."""
        self.connect_timeout_s = connect_timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=min(timeout_s, self.connect_timeout_s))
        self._conn.timeout = timeout_s
        return self._conn

    def generate(self, prompt: str, max_tokens: int, *, timeout_s: float = 60.0, on_token=None) -> GenerationResult:
        body = json.dumps({"model": self.model, "prompt": prompt, "max_tokens": max_tokens, "stream": True})
        result = GenerationResult(ok=False)
        start = time.perf_counter()
        try:
            conn = self._connection(timeout_s)
            conn.request(
                "POST",
                f"{self.prefix}/v1/completions",
                body=body,
                headers={**self.headers, "Content-Type": "application/json", "Accept": "text/event-stream"},
            )
            response = conn.getresponse()
            if response.status != 200:
                text = response.read(500).decode(errors="replace").strip()
                raise OpenAIError(f"HTTP {response.status} from /v1/completions: {text}")
            done = False
            while not done:
                if time.perf_counter() - start > timeout_s:
                    raise TimeoutError(f"no complete stream within {timeout_s:g}s")
                raw = response.readline()
                if not raw:
                    break
                line = raw.decode(errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                event = json.loads(data)
                if "error" in event:
                    raise OpenAIError(f"server error in stream: {str(event['error'])[:200]}")
                choices = event.get("choices") or []
                text = (choices[0].get("text") or "") if choices else ""
                if text:
                    result.chunks.append(text)
                    result.token_times_s.append(time.perf_counter() - start)
                    if on_token is not None:
                        on_token(text)
            if not done:
                raise OpenAIError("the stream ended without 'data: [DONE]'")
            response.read()  # the end of the body, so the connection serves the next request
            result.ok = True
        except (OSError, http.client.HTTPException, ValueError, OpenAIError, TimeoutError) as err:
            result.error = f"{type(err).__name__}: {err}"
            self.close()
        result.latency_s = time.perf_counter() - start
        return result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def check_openai_health(
    base_url: str, model: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None
) -> list[Check]:
    """``GET /health`` answers 200 and ``GET /v1/models`` lists ``model`` (``headers``: the API key)."""
    try:
        scheme, host, port, prefix = _split(base_url)
    except OpenAIError as err:
        return [Check("frontend", base_url, "url", False, str(err))]
    endpoint = f"{host}:{port}"
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    checks: list[Check] = []
    for name, path in (("health", "/health"), ("model listed", "/v1/models")):
        conn = cls(host, port, timeout=timeout_s)
        try:
            conn.request("GET", prefix + path, headers=dict(headers or {}))
            response = conn.getresponse()
            body = response.read(65536)
            if response.status != 200:
                checks.append(Check("frontend", endpoint, name, False, f"HTTP {response.status}"))
                continue
            if path == "/v1/models":
                ids = [m.get("id") for m in json.loads(body).get("data", [])]
                ok = model in ids
                checks.append(Check("frontend", endpoint, name, ok, "" if ok else f"models: {', '.join(map(str, ids)) or 'none'}"))
            else:
                checks.append(Check("frontend", endpoint, name, True))
        except (OSError, http.client.HTTPException, ValueError) as err:
            checks.append(Check("frontend", endpoint, name, False, f"{type(err).__name__}: {err}"))
        finally:
            conn.close()
    return checks
