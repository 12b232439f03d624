"""Process plumbing shared by the three servers: event loop, HTTP server, upstream sessions.

uvloop is used when importable (not required; ``RUNTIME_EVENT_LOOP`` overrides). Access logging
is off: a log line per request (let alone per streamed chunk) costs more than relaying it.
"""

from __future__ import annotations

import asyncio
import logging
import os

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

LOOP_ENV = "RUNTIME_EVENT_LOOP"
"""``auto`` (default: uvloop when importable), ``asyncio`` or ``uvloop``."""
SHUTDOWN_TIMEOUT_S = 25.0
"""On SIGTERM, streams in flight get this long to finish (inside Kubernetes' default 30 s grace);
``--shutdown-timeout`` sets it (the pods pass the drain of their longest stream)."""
READ_BUFSIZE = 1 << 18
"""Bytes aiohttp reads per socket read on upstream responses (default 64 KiB)."""


def client_session(total_timeout: float | None = None) -> ClientSession:
    """A keep-alive session to upstream servers: no connection cap, large read buffer."""
    return ClientSession(
        connector=TCPConnector(limit=0, keepalive_timeout=30, enable_cleanup_closed=True),
        timeout=ClientTimeout(total=total_timeout, sock_connect=5),
        read_bufsize=READ_BUFSIZE,
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    )


def run(app: web.Application, host: str, port: int, shutdown_timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; then stop accepting and wait up to ``shutdown_timeout``
    seconds for the requests in flight."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
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
    web.run_app(app, host=host, port=port, access_log=None, print=None, handle_signals=True,
                shutdown_timeout=shutdown_timeout, backlog=1024, loop=asyncio.new_event_loop())
