"""Process plumbing shared by the three servers: event loop, HTTP server, shutdown.

uvloop is used when importable (not required; ``RUNTIME_EVENT_LOOP`` overrides). Access logging
is off: a log line per request (let alone per streamed chunk) costs more than relaying it.

Handlers are cancelled when their client disconnects (aiohttp's ``handler_cancellation``): an
upstream request in flight is aborted at once, and a prefill-decode request whose client left
during the context phase never reaches a generation server.

Shutdown (SIGTERM) is readiness first, then drain: readiness (:attr:`Lifecycle.draining`) turns
503 while the listener still accepts for ``drain_delay`` seconds (endpoints and load balancers
stop sending), then the listener closes and requests in flight get ``shutdown_timeout`` seconds.

Slow clients: a connection that has not sent its first request's headers within
``header_timeout`` seconds is closed (later requests on a kept-alive connection are bounded by
aiohttp's keep-alive timeout) (body reads are bounded by the handlers, see ``runtime/limits.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

from aiohttp import web

from .upstream import Timeouts

LOOP_ENV = "RUNTIME_EVENT_LOOP"
"""``auto`` (default: uvloop when importable), ``asyncio`` or ``uvloop``."""
SHUTDOWN_TIMEOUT_S = 25.0
"""On SIGTERM, streams in flight get this long to finish (inside Kubernetes' default 30 s grace);
``--shutdown-timeout`` sets it (the pods pass the drain of their longest stream)."""
DRAIN_DELAY_S = 3.0
"""On SIGTERM, readiness is 503 this long before the listener closes (``--drain-delay``)."""
HEADER_TIMEOUT_S = 10.0
"""Seconds a new connection has to send its request headers (``--header-timeout``)."""
BODY_TIMEOUT_S = 30.0
"""Seconds a client has to send its request body (``--body-timeout``)."""


class Lifecycle:
    """Shared by a server's handlers: whether it is draining (readiness off)."""

    def __init__(self) -> None:
        self.draining = False


class _HeaderGuard(asyncio.Protocol):
    """Wraps aiohttp's request handler: closes the connection when the first request's headers
    do not arrive within ``timeout``; after them it only forwards (one call per read)."""

    def __init__(self, inner: Any, timeout: float, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.timeout = timeout
        self.loop = loop
        self.seen = b""
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.forward = self._watch

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.timer = self.loop.call_later(self.timeout, self._expire)
        self.inner.connection_made(transport)

    def _expire(self) -> None:
        self.timer = None
        if self.forward == self._watch and self.transport is not None:
            self.transport.close()

    def _watch(self, data: bytes) -> None:
        self.seen = (self.seen + data)[-(1 << 16):]
        if b"\r\n\r\n" in self.seen:
            self.forward = self.inner.data_received
            self.seen = b""
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        self.inner.data_received(data)

    def data_received(self, data: bytes) -> None:
        self.forward(data)

    def eof_received(self) -> bool | None:
        return bool(self.inner.eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


def install_loop() -> None:
    choice = os.environ.get(LOOP_ENV, "auto")
    if choice not in ("auto", "asyncio", "uvloop"):
        raise SystemExit(f"{LOOP_ENV}={choice[:40]!r}: expected auto, asyncio or uvloop")
    if choice != "asyncio":
        try:
            import uvloop  # type: ignore[import-not-found]

            uvloop.install()
        except ImportError:
            if choice == "uvloop":
                raise SystemExit(f"{LOOP_ENV}=uvloop but uvloop is not installed") from None


async def serve(app: web.Application, host: str, port: int, lifecycle: Lifecycle | None = None,
                shutdown_timeout: float = SHUTDOWN_TIMEOUT_S, drain_delay: float = DRAIN_DELAY_S,
                header_timeout: float = HEADER_TIMEOUT_S) -> None:
    loop = asyncio.get_running_loop()
    runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True,
                           shutdown_timeout=shutdown_timeout)
    await runner.setup()
    server = runner.server
    assert server is not None
    listener = await loop.create_server(lambda: _HeaderGuard(server(), header_timeout, loop), host, port,
                                        backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger("runtime").info("serving on %s:%d", host, port)
    await stop.wait()
    if lifecycle is not None:
        lifecycle.draining = True
        await asyncio.sleep(drain_delay)
    listener.close()
    await runner.cleanup()  # closes idle connections, waits up to shutdown_timeout for handlers


def run(app: web.Application, host: str, port: int, shutdown_timeout: float = SHUTDOWN_TIMEOUT_S,
        lifecycle: Lifecycle | None = None, drain_delay: float = DRAIN_DELAY_S,
        header_timeout: float = HEADER_TIMEOUT_S) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then readiness off, drain and stop (module docstring)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    install_loop()
    asyncio.run(serve(app, host, port, lifecycle, shutdown_timeout, drain_delay, header_timeout))


def add_serving_flags(p: argparse.ArgumentParser, max_inflight: int) -> None:
    """Timeouts, admission and shutdown flags shared by the router and the frontend."""
    d = Timeouts()
    p.add_argument("--connect-timeout", type=float, default=d.connect, help="seconds to connect upstream")
    p.add_argument("--first-byte-timeout", type=float, default=d.first_byte,
                   help="seconds from a streamed request to its first token (the SLO's TTFT bound)")
    p.add_argument("--idle-timeout", type=float, default=d.idle, help="seconds allowed between tokens of a stream")
    p.add_argument("--request-timeout", type=float, default=d.total, help="seconds per request, in total")
    p.add_argument("--max-inflight", type=int, default=max_inflight,
                   help="requests served at once; beyond them (and the queue) 429 with Retry-After")
    p.add_argument("--max-queue", type=int, default=0, help="requests that may wait for a slot")
    p.add_argument("--queue-timeout", type=float, default=1.0, help="seconds a queued request waits at most")
    p.add_argument("--header-timeout", type=float, default=HEADER_TIMEOUT_S,
                   help="seconds a client has to send its request headers")
    p.add_argument("--body-timeout", type=float, default=BODY_TIMEOUT_S, help="seconds a client has to send its request body")
    p.add_argument("--shutdown-timeout", type=float, default=SHUTDOWN_TIMEOUT_S,
                   help="on SIGTERM, after --drain-delay, give requests in flight this long to finish")
    p.add_argument("--drain-delay", type=float, default=DRAIN_DELAY_S,
                   help="on SIGTERM, seconds readiness reports 503 before the listener closes")


def check_serving_flags(prog: str, a: argparse.Namespace) -> Timeouts:
    """The timeouts, or SystemExit naming the flag whose value is out of range."""
    positive = ("connect_timeout", "first_byte_timeout", "idle_timeout", "request_timeout", "max_inflight",
                "queue_timeout", "header_timeout", "body_timeout", "shutdown_timeout")
    for name in positive:
        if getattr(a, name) <= 0:  # aiohttp reads a 0 shutdown timeout as "wait forever"
            raise SystemExit(f"{prog}: --{name.replace('_', '-')} {getattr(a, name)}: must be > 0")
    for name in ("max_queue", "drain_delay"):
        if getattr(a, name) < 0:
            raise SystemExit(f"{prog}: --{name.replace('_', '-')} {getattr(a, name)}: must be >= 0")
    return Timeouts(a.connect_timeout, a.first_byte_timeout, a.idle_timeout, a.request_timeout)
