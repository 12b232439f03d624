"""The upstream client's keep-alive pool and framing, against a real stand-in and a raw server."""

from __future__ import annotations

import asyncio
import json

from runtime.upstream import ConnectionPool, Timeouts, Upstream, UpstreamTimeoutError


def test_sequential_requests_reuse_one_connection(cluster) -> None:
    standin = cluster.standin()

    async def run() -> tuple[list[str], int, int]:
        pool = ConnectionPool()
        texts, conns = [], set()
        for i, stream in enumerate([True, False] * 5):
            body = json.dumps({"model": "llama", "prompt": f"p{i}", "max_tokens": 3, "stream": stream}).encode()
            up = await Upstream.open(pool, standin.url, "/v1/completions", body, Timeouts(), stream)
            conns.add(id(up._conn))
            raw = await up.read()
            texts.append(raw.decode().count('"text"') if stream else json.loads(raw)["choices"][0]["text"])
        exchanges = pool.idle[next(iter(pool.idle))][0].exchanges
        pool.close()
        return texts, len(conns), exchanges

    texts, conns, exchanges = asyncio.run(run())
    assert texts == [3, "p1p", 3, "p3p", 3, "p5p", 3, "p7p", 3, "p9p"]
    assert conns == 1 and exchanges == 10


def test_a_chunk_trailer_split_across_reads_does_not_corrupt_the_next_response() -> None:
    connections = []

    async def run() -> list[bytes]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(writer)
            for _ in range(2):
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)  # the body "{}"
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(b"\r\n")  # the last CRLF of the body arrives on its own
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        pool = ConnectionPool()
        out = []
        for _ in range(2):
            up = await Upstream.open(pool, url, "/", b"{}", Timeouts(), False)
            out.append(await up.read())
            await asyncio.sleep(0.1)
        pool.close()
        server.close()
        return out

    assert asyncio.run(run()) == [b"hello", b"hello"]
    assert len(connections) == 1  # the second request went over the first one's connection


def test_first_byte_timeout_of_a_stream_that_never_answers() -> None:
    async def run() -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(5)

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            await Upstream.open(ConnectionPool(), url, "/", b"{}", Timeouts(first_byte=0.2), True)
        except UpstreamTimeoutError as exc:
            return exc.kind
        finally:
            server.close()
        return "no timeout"

    assert asyncio.run(run()) == "first_byte"
