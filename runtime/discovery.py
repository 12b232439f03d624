"""Where the router finds workers: ``dns://``, ``file://`` and ``static://`` sources.

``dns://<headless service>:<port>`` is the production source: a Kubernetes headless Service
answers one A record per ready pod it selects (the components select group leaders only), so
re-resolving every ``--refresh-seconds`` with the event loop's ``getaddrinfo`` follows scaling
without a Kubernetes API client or RBAC. ``file://<path>`` (one URL or ``host:port`` per line,
``#`` comments, re-read on every refresh) and ``static://h:p,h:p`` serve tests and existing
clusters.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

SCHEMES = ("dns", "file", "static")


class SourceError(ValueError):
    pass


def endpoint_url(host: str, port: int) -> str:
    """``http://host:port`` with IPv6 literals bracketed."""
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"http://{host}:{port}"


def normalize(entry: str) -> str:
    """An endpoint from ``host:port`` or ``http://host:port[/]`` (path dropped)."""
    entry = entry.strip()
    if "://" not in entry:
        entry = "http://" + entry
    parts = urlsplit(entry)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
        raise SourceError(f"endpoint {entry!r}: expected host:port or http://host:port")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Source:
    """A parsed ``--workers``/``--context``/``--generation`` value."""

    scheme: str
    target: str
    port: int | None = None

    def __str__(self) -> str:
        return f"{self.scheme}://{self.target}" + (f":{self.port}" if self.scheme == "dns" else "")


def parse_source(flag: str, value: str) -> Source:
    """A Source, or SourceError naming the flag, the value and the fix."""
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in SCHEMES or not rest:
        raise SourceError(f"{flag} {value[:80]!r}: expected dns://host:port, file:///path or static://host:port[,host:port]")
    if scheme == "dns":
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise SourceError(f"{flag} {value[:80]!r}: dns:// needs host:port, e.g. dns://llama-8b-workers:8000")
        return Source("dns", host.strip("[]"), int(port))
    if scheme == "static":
        try:
            for entry in rest.split(","):
                normalize(entry)
        except SourceError as exc:
            raise SourceError(f"{flag} {value[:80]!r}: {exc}") from None
    return Source(scheme, rest)


def parse_lines(text: str) -> list[str]:
    """Endpoints of a ``file://`` source (blank lines and ``#`` comments skipped)."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(normalize(line))
    return out


async def resolve(source: Source) -> list[str]:
    """The source's current endpoints, sorted and de-duplicated."""
    if source.scheme == "static":
        found = [normalize(e) for e in source.target.split(",") if e.strip()]
    elif source.scheme == "file":
        path = Path(source.target)
        found = parse_lines(path.read_text()) if path.exists() else []  # a few lines: read inline
    else:
        assert source.port is not None
        infos = await asyncio.get_running_loop().getaddrinfo(
            source.target, source.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        found = [endpoint_url(str(info[4][0]), source.port) for info in infos
                 if info[0] in (socket.AF_INET, socket.AF_INET6)]
    return sorted(set(found))
