"""Container probes (HTTP on the port named ``http``, TCP)."""

from __future__ import annotations


def http_probe(path: str, *, period: int, failure_threshold: int, timeout: int = 5) -> dict:
    """An HTTP probe on the container port named ``http``."""
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failure_threshold,
    }


def tcp_probe(port: int | str, *, period: int, failure_threshold: int, timeout: int = 3) -> dict:
    return {
        "tcpSocket": {"port": port},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failure_threshold,
    }
