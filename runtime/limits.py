"""What a tier accepts before doing work: admission, body size and pace, JSON shape.

- :class:`Admission`: at most ``max_inflight`` requests in flight; up to ``max_queue`` more wait
  up to ``queue_timeout`` seconds for a slot; the rest get 429 with ``Retry-After`` (Envoy's
  circuit breaker ``max_requests`` / ``max_pending_requests``).
- :func:`read_body`: 413 beyond the route's byte limit (told by Content-Length or counted while
  reading), 408 when the body does not arrive within ``timeout`` seconds (a trickling client
  holds no slot for long).
- :func:`parse_json`: 400 on invalid or too deeply nested JSON (the C decoder raises
  RecursionError near depth 1000: caught, never a 500); bodies above ``OFFLOAD_BYTES`` are parsed
  in a worker thread so the event loop keeps relaying streams meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import deque
from typing import Any

from aiohttp import web

from . import protocol

OFFLOAD_BYTES = 256 << 10
RETRY_AFTER_S = 1


class RejectedError(Exception):
    """A request refused before any work: HTTP status, message, extra headers."""

    def __init__(self, status: int, message: str, err_type: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.err_type = err_type
        self.headers = headers or {}


class Admission:
    """Bounded in-flight requests with an optional short bounded queue (module docstring)."""

    def __init__(self, max_inflight: int, max_queue: int = 0, queue_timeout: float = 1.0) -> None:
        self.max_inflight = max_inflight
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.inflight = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.rejected = 0

    def _reject(self) -> RejectedError:
        self.rejected += 1
        return RejectedError(429, f"server busy: more than {self.max_inflight} requests in flight; retry after "
                        f"{RETRY_AFTER_S} s", "rate_limit_exceeded", {"Retry-After": str(RETRY_AFTER_S)})

    async def acquire(self) -> None:
        if self.inflight < self.max_inflight and not self.waiters:
            self.inflight += 1
            return
        if len(self.waiters) >= self.max_queue:
            raise self._reject()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await asyncio.wait_for(fut, self.queue_timeout)
        except asyncio.TimeoutError:
            raise self._reject() from None
        except BaseException:
            if fut.done() and not fut.cancelled():  # got a slot while being cancelled: pass it on
                self.release()
            raise
        finally:
            if fut in self.waiters:
                self.waiters.remove(fut)

    def release(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes to the waiter: inflight unchanged
                return
        self.inflight -= 1


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The request body, or RejectedError 413 (too large) / 408 (too slow)."""
    if request.content_length is not None and request.content_length > limit:
        raise RejectedError(413, f"request body of {request.content_length} bytes exceeds the {limit} byte limit "
                       f"of {request.path}", "invalid_request_error")
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        while True:
            chunk = await request.content.readany()
            if not chunk:
                return
            size += len(chunk)
            if size > limit:
                raise RejectedError(413, f"request body exceeds the {limit} byte limit of {request.path}",
                               "invalid_request_error")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), timeout)
    except asyncio.TimeoutError:
        raise RejectedError(408, f"request body not received within {timeout:g} s", "invalid_request_error",
                       {"Connection": "close"}) from None
    return b"".join(chunks)


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


async def parse_json(raw: bytes) -> dict[str, Any]:
    """A JSON object, or RejectedError 400 naming the problem (module docstring)."""
    try:
        if len(raw) > OFFLOAD_BYTES:
            body = await asyncio.get_running_loop().run_in_executor(None, _loads, raw)
        else:
            body = _loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RejectedError(400, f"Invalid JSON body: {str(exc)[:200]}", "invalid_request_error") from None
    if not isinstance(body, dict):
        raise RejectedError(400, "request body must be a JSON object", "invalid_request_error")
    return body


def request_id(request: web.Request) -> str:
    """The caller's ``X-Request-Id`` when it is short and printable, a fresh one otherwise."""
    given = request.headers.get("X-Request-Id", "")
    if 0 < len(given) <= 64 and given.isascii() and given.isprintable():
        return given
    return os.urandom(8).hex()


def openai_errors(log: logging.Logger) -> Any:
    """The middleware both CPU tiers end with: every error an OpenAI-shaped body (an HTTP error that
    already carries a JSON body goes out as it is); a client that left (ConnectionError) cancels
    the handler; anything unexpected is a 500 naming a request id, its traceback only in ``log``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.content_type == protocol.JSON_CONTENT_TYPE:
                raise
            return web.json_response(protocol.openai_error(exc.reason, code=exc.status), status=exc.status)
        except asyncio.CancelledError:
            raise
        except ConnectionError:  # the client left (reading its body, writing to it): no one to answer
            raise asyncio.CancelledError from None
        except Exception:  # a bug: the client gets a request id, the log the traceback
            rid = request_id(request)
            log.exception("request %s: unexpected error", rid)
            return web.json_response(protocol.openai_error(f"internal error (request id {rid})", "internal_error", 500),
                                     status=500)

    return middleware

