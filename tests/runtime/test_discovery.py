"""Worker discovery sources (runtime/discovery.py); dns:// resolves the real ``localhost``."""

from __future__ import annotations

import asyncio

import pytest

from runtime.discovery import Source, SourceError, endpoint_url, parse_lines, parse_source, resolve


def run(coro):
    """Run on a private loop: ``asyncio.run`` would leave the main thread without a current loop,
    which the Pulumi mocks of later tests rely on."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_parse_dns_source():
    assert parse_source("--workers", "dns://llama-8b-workers.ns.svc:8000") == Source("dns", "llama-8b-workers.ns.svc", 8000)


@pytest.mark.parametrize("value", ["llama:8000", "dns://llama", "http://x:1", "static://x", "file://"])
def test_bad_sources_name_the_flag_and_value(value):
    with pytest.raises(SourceError, match=r"^--context '"):
        parse_source("--context", value)


def test_file_lines_accept_urls_and_host_ports_and_skip_comments():
    assert parse_lines("# leaders\nhttp://10.0.0.1:8000/\n\n10.0.0.2:8000  # second\n") == [
        "http://10.0.0.1:8000", "http://10.0.0.2:8000"]


def test_ipv6_endpoints_are_bracketed():
    assert endpoint_url("fd00::1", 8000) == "http://[fd00::1]:8000"
    assert endpoint_url("10.0.0.1", 8000) == "http://10.0.0.1:8000"


def test_resolve_dns_localhost_gives_one_endpoint_per_address():
    found = run(resolve(parse_source("--workers", "dns://localhost:8123")))
    assert "http://127.0.0.1:8123" in found
    assert all(url.endswith(":8123") for url in found)
    assert found == sorted(set(found))


def test_resolve_dns_unknown_name_raises_oserror():
    with pytest.raises(OSError):
        run(resolve(parse_source("--workers", "dns://no-such-host.invalid:8000")))


def test_resolve_file_is_reread(tmp_path):
    path = tmp_path / "gen.txt"
    source = parse_source("--generation", f"file://{path}")
    assert run(resolve(source)) == []  # a missing file is an empty pool
    path.write_text("127.0.0.1:9001\n")
    assert run(resolve(source)) == ["http://127.0.0.1:9001"]
    path.write_text("127.0.0.1:9001\n127.0.0.1:9002\n127.0.0.1:9001\n")
    assert run(resolve(source)) == ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]


def test_resolve_static():
    source = parse_source("--workers", "static://127.0.0.1:2,127.0.0.1:1")
    assert run(resolve(source)) == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
