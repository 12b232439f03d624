"""The streaming hot path: one upstream HTTP request relayed to the client at transport level.

Each relayed token costs, per tier, one socket read and one socket write and nothing else: the
upstream connection is an ``asyncio.Protocol`` whose ``data_received`` de-chunks the bytes and
writes them, re-framed as one HTTP chunk per read, straight to the client's transport. No task
wakes up per chunk, no JSON is touched. (aiohttp's client + ``StreamResponse.write`` costs
roughly three times as much CPU per chunk: a reader task wake-up, a write coroutine, a drain
check.) The upstream request is HTTP/1.1 with ``Connection: close``, so the end of the body is
the end of the connection whatever framing the server chose; one connect per request is cheap
next to the hundreds of chunks a generation streams.

Backpressure: when the client's transport buffers more than ``HIGH_WATER`` bytes the upstream
socket stops being read until it drains below ``LOW_WATER``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from aiohttp import web

from . import protocol

HIGH_WATER = 1 << 20
LOW_WATER = 1 << 16
MAX_HEADER_BYTES = 1 << 16


class UpstreamError(Exception):
    """The upstream server could not be reached or broke the HTTP exchange."""


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise ValueError(f"expected http://host:port, got {url!r}")
    return parts.hostname, parts.port


class _Conn(asyncio.Protocol):
    def __init__(self, request: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.headers_ready: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.pending: list[bytes] = []
        self.sink: Callable[[bytes], None] | None = None
        self.paused = False
        # body framing
        self.mode = "close"
        self.remaining = 0  # content-length mode: bytes left; chunked: bytes left in chunk (+2 for CRLF)
        self.size_line = b""
        self.in_data = False

    # --- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.headers_ready.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > MAX_HEADER_BYTES:
                    self._fail(UpstreamError("upstream response headers too large"))
                return
            data = self.head[end + 4:]
            self._parse_head(self.head[:end])
            self.head = b""
            self.headers_ready.set_result(None)
            if not data:
                return
        pieces = self._body(data)
        if not pieces:
            return
        chunk = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self.sink is not None:
            self.sink(chunk)
        else:
            self.pending.append(chunk)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.headers_ready.done():
            self.headers_ready.set_exception(UpstreamError(f"upstream closed before responding ({exc})"))
        if not self.done.done():
            if self.mode == "close" and exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(UpstreamError(f"upstream closed mid-response ({exc})"))

    # --- HTTP/1.1 response framing -------------------------------------------------------------
    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        try:
            self.status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            self._fail(UpstreamError(f"bad upstream status line {lines[0][:80]!r}"))
            return
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.mode = "chunked"
        elif "content-length" in self.headers:
            self.mode = "length"
            self.remaining = int(self.headers["content-length"])
            if self.remaining == 0:
                self._finish()

    def _body(self, data: bytes) -> list[bytes]:
        if self.mode == "close":
            return [data]
        if self.mode == "length":
            piece = data[: self.remaining]
            self.remaining -= len(piece)
            if self.remaining <= 0:
                self._finish()
            return [piece] if piece else []
        out = []
        pos, n = 0, len(data)
        while pos < n:
            if self.in_data:
                take = min(self.remaining, n - pos)
                out.append(data[pos:pos + take])
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self.in_data = False
                    self.remaining = -2  # the CRLF after the chunk data
                continue
            if self.remaining < 0:
                skip = min(-self.remaining, n - pos)
                pos += skip
                self.remaining += skip
                continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                self.size_line += data[pos:]
                break
            line = self.size_line + data[pos:eol]
            self.size_line = b""
            pos = eol + 2
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                self._finish()
                break
            self.remaining = size
            self.in_data = True
        return out

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if not self.headers_ready.done():
            self.headers_ready.set_exception(exc)
        if not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class Upstream:
    """One in-flight upstream request; ``open`` returns once the status line and headers arrived."""

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn
        self.status = conn.status
        self.content_type = conn.headers.get("content-type", protocol.JSON_CONTENT_TYPE)

    @classmethod
    async def open(cls, url: str, path: str, body: bytes, connect_timeout: float = 5.0) -> Upstream:
        """POST ``body`` to ``url + path``. OSError when the connection fails (the caller retries)."""
        host, port = host_port(url)
        loop = asyncio.get_running_loop()
        req = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Accept: */*\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        conn = _Conn(req, loop)
        await asyncio.wait_for(loop.create_connection(lambda: conn, host, port), connect_timeout)
        try:
            await conn.headers_ready
        except BaseException:
            conn.transport and conn.transport.abort()  # type: ignore[func-returns-value]
            raise
        return cls(conn)

    @property
    def is_sse(self) -> bool:
        return self.content_type.startswith(protocol.SSE_CONTENT_TYPE)

    async def read(self) -> bytes:
        """The whole body (error responses, small JSON)."""
        await self._conn.done
        return b"".join(self._conn.pending)

    def close(self) -> None:
        t = self._conn.transport
        if t is not None and not t.is_closing():
            t.abort()

    async def relay(self, request: web.Request, on_chunk: Callable[[bytes], None] | None = None) -> web.StreamResponse:
        """Stream the body to the client as it arrives; status and content type kept."""
        conn = self._conn
        headers = {"Content-Type": self.content_type}
        if self.is_sse:
            headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        resp = web.StreamResponse(status=self.status, headers=headers)
        chunked = request.version >= (1, 1)
        if chunked:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        down = request.transport
        try:
            # The first bytes go through aiohttp (they carry the buffered response headers) ...
            while not conn.pending and not conn.done.done():
                first: asyncio.Future[None] = conn.loop.create_future()
                conn.sink = _collect(conn.pending, first)
                await asyncio.wait({first, conn.done}, return_when=asyncio.FIRST_COMPLETED)
                conn.sink = None
            while conn.pending:
                data = b"".join(conn.pending)
                conn.pending.clear()
                if on_chunk is not None:
                    on_chunk(data)
                await resp.write(data)
            # ... then straight from the upstream socket's callback to the client's transport.
            if down is not None and not conn.done.done():
                up_t = conn.transport
                assert up_t is not None

                def sink(data: bytes) -> None:
                    if on_chunk is not None:
                        on_chunk(data)
                    if down.is_closing():
                        conn._fail(UpstreamError("client went away"))
                        return
                    down.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
                    if not conn.paused and down.get_write_buffer_size() > HIGH_WATER:
                        conn.paused = True
                        up_t.pause_reading()

                conn.sink = sink
                while not conn.done.done():
                    if conn.paused:
                        await asyncio.sleep(0.005)
                        if down.is_closing():
                            conn._fail(UpstreamError("client went away"))
                        elif down.get_write_buffer_size() < LOW_WATER:
                            conn.paused = False
                            up_t.resume_reading()
                        continue
                    await asyncio.wait({conn.done, _paused_waiter(conn)}, return_when=asyncio.FIRST_COMPLETED)
            await conn.done
        except UpstreamError:
            # Upstream died or the client left mid-stream: end the client's connection without a
            # terminating chunk, so a truncated stream cannot pass for a complete one.
            if down is not None:
                down.abort()
            return resp
        finally:
            conn.sink = None
            self.close()
        await resp.write_eof()
        return resp


def _collect(pending: list[bytes], arrived: asyncio.Future[None]) -> Callable[[bytes], None]:
    """A sink that keeps bytes for later and resolves ``arrived``."""

    def sink(data: bytes) -> None:
        pending.append(data)
        if not arrived.done():
            arrived.set_result(None)

    return sink


def _paused_waiter(conn: _Conn) -> asyncio.Future[None]:
    """A future the relay loop can wait on besides ``done``; resolved when reading pauses."""
    fut: asyncio.Future[None] = conn.loop.create_future()
    prev = conn.sink
    assert prev is not None

    def sink(data: bytes) -> None:
        prev(data)
        if conn.paused and not fut.done():
            conn.sink = prev
            fut.set_result(None)

    conn.sink = sink
    return fut
