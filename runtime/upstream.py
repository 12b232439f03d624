"""The streaming hot path: one upstream HTTP request relayed to the client at transport level.

Each relayed token costs, per tier, one socket read and one socket write and nothing else: the
upstream connection is an ``asyncio.Protocol`` whose ``data_received`` de-chunks the bytes and
writes them, re-framed as one HTTP chunk per read, straight to the client's transport. No task
wakes up per chunk, no JSON is touched. (aiohttp's client + ``StreamResponse.write`` costs
roughly three times as much CPU per chunk: a reader task wake-up, a write coroutine, a drain
check.)

Connections are kept alive and reused (:class:`ConnectionPool`): a fresh connection to an
aiohttp server costs 4-8 ms before its first response byte on this 2-core machine, once per tier
per request, which was most of the time to first token the tiers added (issue 21). An idle
connection is dropped after ``IDLE_S`` (below uvicorn's 5 s keep-alive, so ``trtllm-serve`` never
closes one we are about to use); a request on a reused connection that the server closed before
answering is sent once more on a fresh one (the server closed it idle: it never saw the request).

Timeouts (:class:`Timeouts`, Envoy's connect / per-try / idle / route timeouts): ``connect``;
``first_byte`` from the request to the first body byte of a stream (for a non-streamed exchange
only ``total`` applies: its body comes at the end); ``idle`` between body reads of a stream (not
while reading is paused for a slow client); ``total``. One timer per exchange, re-armed at most
once per ``idle`` period, never per chunk.

``trtllm-serve`` aborts a request whose client disconnected (``OpenAIServer.await_disconnected``
polls ``is_disconnected()`` each second and calls ``promise.abort()``; ``TIMEOUT_KEEP_ALIVE = 5``:
``tensorrt_llm/serve/openai_server.py`` @00057725d959), so closing the connection is the abort.

A stream that fails after its status line was relayed ends with one SSE error event, then the
end of the HTTP body, and no ``data: [DONE]`` (OpenAI clients raise on an ``error`` event)::

    data: {"error":{"message":"...","type":"timeout","param":null,"code":504}}

``type`` is ``timeout`` (code 504) or ``upstream_error`` (502). A client that goes away aborts
the upstream connection at once (the worker sees the disconnect and aborts the request).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from aiohttp import web

from . import protocol

HIGH_WATER = 1 << 20
LOW_WATER = 1 << 16
MAX_HEADER_BYTES = 1 << 16
IDLE_S = 2.0
"""Seconds an unused upstream connection is kept (uvicorn closes idle ones after 5 s)."""
MAX_IDLE_PER_HOST = 64


class UpstreamError(Exception):
    """The upstream server could not be reached or broke the HTTP exchange."""


class UpstreamTimeoutError(UpstreamError):
    def __init__(self, kind: str, seconds: float) -> None:
        super().__init__(f"upstream {kind.replace('_', ' ')} timeout ({seconds:g} s)")
        self.kind = kind


class ClientGoneError(UpstreamError):
    """The downstream client closed its connection."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds; see the module docstring for what each one bounds."""

    connect: float = 2.0
    first_byte: float = 300.0
    idle: float = 60.0
    total: float = 3600.0


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise ValueError(f"expected http://host:port, got {url!r}")
    return parts.hostname, parts.port


def sse_error(message: str, err_type: str, code: int) -> bytes:
    """The SSE error event a failed stream ends with (module docstring)."""
    return protocol.sse(protocol.openai_error(message, err_type, code))


class ConnectionPool:
    """Idle keep-alive upstream connections per ``host:port`` (one event loop)."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[_Conn]] = {}

    def take(self, key: tuple[str, int], now: float) -> _Conn | None:
        conns = self.idle.get(key)
        while conns:
            conn = conns.pop()
            t = conn.transport
            if t is not None and not t.is_closing() and now - conn.idle_since < IDLE_S:
                return conn
            if t is not None:
                t.abort()
        return None

    def put(self, conn: _Conn) -> None:
        conns = self.idle.setdefault(conn.key, [])
        t = conn.transport
        if len(conns) >= MAX_IDLE_PER_HOST or t is None or t.is_closing():
            if t is not None:
                t.abort()
            return
        conn.idle_since = conn.loop.time()
        conn.sink = None
        conns.append(conn)

    def close(self) -> None:
        for conns in self.idle.values():
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.abort()
        self.idle.clear()


class _Conn(asyncio.Protocol):
    def __init__(self, key: tuple[str, int], loop: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.exchanges = 0
        self._timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.head = b""
        self.headers_ready: asyncio.Future[None] = self.loop.create_future()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.pending: list[bytes] = []
        self.sink: Callable[[bytes], None] | None = None
        self.paused = False
        self.got_bytes = False
        self.got_body = False
        self.last_rx = 0.0
        self.reusable = False
        self.released = False
        # body framing
        self.mode = "close"
        self.remaining = 0  # content-length mode: bytes left; chunked: bytes left in chunk (+2 for CRLF)
        self.size_line = b""
        self.in_data = False

    def start(self, request: bytes, timeouts: Timeouts, stream: bool) -> None:
        """Send one request on this connection; the response state starts afresh."""
        if self.exchanges:
            self._reset()
        self.exchanges += 1
        now = self.loop.time()
        self.timeouts = timeouts
        self.stream = stream
        self.t_total = now + timeouts.total
        self.t_first = now + timeouts.first_byte if stream else self.t_total
        assert self.transport is not None
        self.transport.write(request)
        self._arm(min(self.t_first, self.t_total))

    # --- timeouts ------------------------------------------------------------------------------
    def _arm(self, when: float) -> None:
        self._timer = self.loop.call_at(when, self._check)

    def _check(self) -> None:
        self._timer = None
        if self.done.done():
            return
        now = self.loop.time()
        t = self.timeouts
        if now >= self.t_total:
            self._fail(UpstreamTimeoutError("total", t.total))
        elif not self.got_body:
            if now >= self.t_first:
                self._fail(UpstreamTimeoutError("first_byte", t.first_byte))
            else:
                self._arm(min(self.t_first, self.t_total))
        elif self.paused or now - self.last_rx < t.idle:
            self._arm(min(self.last_rx + t.idle if not self.paused else now + t.idle, self.t_total))
        else:
            self._fail(UpstreamTimeoutError("idle", t.idle))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if not self.headers_ready.done():
            self.head += data
            if self.head.startswith(b"\r\n"):  # the last CRLF of the previous chunked body
                self.head = self.head[2:]
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > MAX_HEADER_BYTES:
                    self._fail(UpstreamError("upstream response headers too large"))
                return
            data = self.head[end + 4:]
            self._parse_head(self.head[:end])
            self.head = b""
            if not self.headers_ready.done():
                self.headers_ready.set_result(None)
            if not data:
                return
        if self.done.done():
            return
        pieces = self._body(data)
        if not pieces:
            return
        if self.stream:
            self.last_rx = self.loop.time()
            if not self.got_body:  # from now on the idle timeout applies: re-arm for it
                self.got_body = True
                self._cancel_timer()
                self._arm(min(self.last_rx + self.timeouts.idle, self.t_total))
        chunk = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self.sink is not None:
            self.sink(chunk)
        else:
            self.pending.append(chunk)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.reusable = False
        if not self.headers_ready.done():
            self.headers_ready.set_exception(UpstreamError(f"upstream closed before responding ({exc})"))
        if not self.done.done():
            if self.mode == "close" and exc is None and self.headers_ready.exception() is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(UpstreamError(f"upstream closed mid-response ({exc})"))
        for fut in (self.headers_ready, self.done):  # nobody may be waiting any more
            if fut.done() and not fut.cancelled():
                fut.exception()

    # --- HTTP/1.1 response framing -------------------------------------------------------------
    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        try:
            version, status = lines[0].split(" ", 2)[:2]
            self.status = int(status)
        except (IndexError, ValueError):
            self._fail(UpstreamError("bad upstream status line"))
            return
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.reusable = version == "HTTP/1.1" and "close" not in self.headers.get("connection", "").lower()
        try:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                self.mode = "chunked"
            elif "content-length" in self.headers:
                self.mode = "length"
                self.remaining = int(self.headers["content-length"])
                if self.remaining == 0:
                    self._finish()
            else:
                self.reusable = False
        except ValueError:
            self._fail(UpstreamError("bad upstream content-length"))

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
            try:
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            except ValueError:
                self._fail(UpstreamError("bad upstream chunk size"))
                return out
            if size == 0:
                # The trailer's CRLF may still be in flight; a reused connection skips it.
                rest = data[pos:]
                self.reusable = self.reusable and rest in (b"", b"\r\n")
                self._finish()
                break
            self.remaining = size
            self.in_data = True
        return out

    def _finish(self) -> None:
        self._cancel_timer()
        if not self.done.done():
            self.done.set_result(None)
        if not self.reusable and self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        self._cancel_timer()
        self.reusable = False
        if not self.headers_ready.done():
            self.headers_ready.set_exception(exc)
        if not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class Upstream:
    """One in-flight upstream request; ``open`` returns once the status line and headers arrived."""

    def __init__(self, conn: _Conn, pool: ConnectionPool) -> None:
        self._conn = conn
        self._pool = pool
        self._exchange = conn.exchanges
        self.status = conn.status
        self.content_type = conn.headers.get("content-type", protocol.JSON_CONTENT_TYPE)
        self.retry_after = conn.headers.get("retry-after")

    @classmethod
    async def open(cls, pool: ConnectionPool, url: str, path: str, body: bytes, timeouts: Timeouts,
                   stream: bool, headers: dict[str, str] | None = None) -> Upstream:
        """POST ``body`` to ``url + path``. OSError/TimeoutError when no connection could be made,
        UpstreamError (or UpstreamTimeoutError) when the server did not answer with a status line."""
        host, port = key = host_port(url)
        loop = asyncio.get_running_loop()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        req = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Accept: */*\r\n{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body
        for attempt in (0, 1):
            conn = pool.take(key, loop.time()) if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                conn = _Conn(key, loop)
                await asyncio.wait_for(loop.create_connection(_factory(conn), host, port), timeouts.connect)
            conn.start(req, timeouts, stream)
            try:
                await conn.headers_ready
            except UpstreamError as exc:
                if reused and not conn.got_bytes and not isinstance(exc, UpstreamTimeoutError):
                    continue  # the server closed this idle connection: it never saw the request
                raise
            except BaseException:
                conn._fail(UpstreamError("cancelled"))
                raise
            return cls(conn, pool)
        raise AssertionError("unreachable")

    @property
    def is_sse(self) -> bool:
        return self.content_type.startswith(protocol.SSE_CONTENT_TYPE)

    async def read(self) -> bytes:
        """The whole body (error responses, small JSON); the connection is released after."""
        try:
            await self._conn.done
            return b"".join(self._conn.pending)
        finally:
            self.close()

    async def iter_body(self) -> AsyncIterator[bytes]:
        """The body as it arrives (re-framing tiers); UpstreamError when it breaks off."""
        conn = self._conn
        try:
            while True:
                if conn.pending:
                    data = b"".join(conn.pending)
                    conn.pending.clear()
                    yield data
                    continue
                if conn.done.done():
                    conn.done.result()
                    return
                arrived: asyncio.Future[None] = conn.loop.create_future()
                conn.sink = _collect(conn.pending, arrived)
                await asyncio.wait({arrived, conn.done}, return_when=asyncio.FIRST_COMPLETED)
                conn.sink = None
        finally:
            self.close()

    def close(self) -> None:
        """Back to the pool when the exchange ended cleanly, aborted otherwise (idempotent)."""
        conn = self._conn
        if conn.released or conn.exchanges != self._exchange:
            return
        conn.released = True
        done = conn.done
        if conn.transport is None or conn.transport.is_closing():
            return
        if done.done() and not done.cancelled() and done.exception() is None and conn.reusable:
            self._pool.put(conn)
        else:
            conn._fail(UpstreamError("released"))

    async def relay(self, request: web.Request, on_chunk: Callable[[bytes], None] | None = None,
                    on_error: Callable[[UpstreamError], None] | None = None) -> web.StreamResponse:
        """Stream the body to the client as it arrives; status and content type kept."""
        conn = self._conn
        headers = {"Content-Type": self.content_type}
        if self.is_sse:
            headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        resp = web.StreamResponse(status=self.status, headers=headers)
        # The headers go out with the first bytes (one send, not two, on the time-to-first-token
        # path): web.Response's default, StreamResponse's opt-in (aiohttp 3.14 web_response.py).
        resp._send_headers_immediately = False
        chunked = request.version >= (1, 1)
        if chunked:
            resp.enable_chunked_encoding()
        down = request.transport
        tail: list[bytes] = []  # the body's last bytes: they leave with its end, in one send

        def ended() -> bool:
            return conn.done.done() and conn.done.exception() is None

        try:
            await resp.prepare(request)
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
                if ended():
                    tail.append(data)
                else:
                    await resp.write(data)
            # ... then straight from the upstream socket's callback to the client's transport.
            if down is not None and not conn.done.done():
                up_t = conn.transport
                assert up_t is not None

                def sink(data: bytes) -> None:
                    if on_chunk is not None:
                        on_chunk(data)
                    if down.is_closing():
                        conn._fail(ClientGoneError("client went away"))
                        return
                    if ended():
                        tail.append(data)
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
                            conn._fail(ClientGoneError("client went away"))
                        elif down.get_write_buffer_size() < LOW_WATER:
                            conn.paused = False
                            up_t.resume_reading()
                        continue
                    await asyncio.wait({conn.done, _paused_waiter(conn)}, return_when=asyncio.FIRST_COMPLETED)
            await conn.done
        except (UpstreamError, ConnectionError) as exc:
            err = exc if isinstance(exc, UpstreamError) else ClientGoneError(str(exc))
            if on_error is not None:
                on_error(err)
            if isinstance(err, ClientGoneError) or down is None or down.is_closing() or not self.is_sse:
                # Nobody to tell, or not a stream: a truncated body must not pass for a whole one.
                if down is not None:
                    down.abort()
                return resp
            if isinstance(err, UpstreamTimeoutError):
                event = sse_error("the model server timed out", "timeout", 504)
            else:
                event = sse_error("the model server failed mid-stream", "upstream_error", 502)
            try:
                conn.sink = None
                await resp.write(event)
                await resp.write_eof()
            except (ConnectionError, RuntimeError):
                down.abort()
            return resp
        finally:
            if not conn.released:
                conn.sink = None
            self.close()
        await resp.write_eof(b"".join(tail))
        return resp


def _factory(conn: _Conn) -> Callable[[], _Conn]:
    return lambda: conn


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
