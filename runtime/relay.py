"""Relaying an upstream HTTP response to the client with as little work per chunk as possible.

SSE bytes are passed through untouched: each socket read of the upstream response (up to
``serve.READ_BUFSIZE``, so several events at once under load) becomes one write downstream. No
JSON is decoded or re-encoded on this path.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import ClientResponse, web

from . import protocol

SSE_HEADERS = {"Content-Type": protocol.SSE_CONTENT_TYPE, "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no"}


async def relay(request: web.Request, up: ClientResponse,
                on_chunk: Callable[[bytes], None] | None = None) -> web.StreamResponse:
    """Stream ``up``'s body to the client as it arrives (status and content type kept)."""
    ctype = up.headers.get("Content-Type", protocol.JSON_CONTENT_TYPE)
    if not ctype.startswith(protocol.SSE_CONTENT_TYPE):
        body = await up.read()
        if on_chunk is not None:
            on_chunk(body)
        return web.Response(status=up.status, body=body, headers={"Content-Type": ctype})
    resp = web.StreamResponse(status=up.status, headers=SSE_HEADERS)
    await resp.prepare(request)
    write = resp.write
    if on_chunk is None:
        async for data in up.content.iter_any():
            await write(data)
    else:
        async for data in up.content.iter_any():
            on_chunk(data)
            await write(data)
    await resp.write_eof()
    return resp
