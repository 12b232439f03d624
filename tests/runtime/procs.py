"""Real runtime processes on 127.0.0.1 for the tests and the benchmark: free ports, bounded
waits, always killed."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, timeout: float = 10.0,
         raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of one request; HTTP errors are returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def metrics(url: str) -> dict[str, float]:
    from runtime.metrics import parse_text

    status, body = http("GET", url)
    assert status == 200, body
    return parse_text(body.decode())


class Proc:
    def __init__(self, module: str, args: list[str], port: int, log_dir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.module = module
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_dir / f"{module.rsplit('.', 1)[-1]}-{port}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **(env or {})}
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                                      stdout=self._log, stderr=subprocess.STDOUT)

    def wait_http(self, path: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.module} exited {self.popen.returncode}: {self.log()}")
            with contextlib.suppress(OSError):
                status, _ = http("GET", self.url + path, timeout=2)
                if status == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.module} not ready on {self.url}{path} after {timeout}s: {self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


class Cluster:
    """Starts stand-ins, routers and frontends; ``close`` stops every one of them."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env
        self._tmp = tempfile.TemporaryDirectory(prefix="runtime-test-")
        self.dir = Path(self._tmp.name)
        self.procs: list[Proc] = []

    def _start(self, module: str, args: list[str], ready_path: str | None,
               env: dict[str, str] | None = None) -> Proc:
        port = free_port()
        p = Proc(module, [*args, "--port", str(port)], port, self.dir, {**(self.env or {}), **(env or {})})
        self.procs.append(p)
        if ready_path is not None:
            p.wait_http(ready_path)
        return p

    def standin(self, role: str = "aggregated", model: str = "llama", tps: float = 0.0,
                extra: tuple[str, ...] = ()) -> Proc:
        return self._start("runtime.standin", ["--host", "127.0.0.1", "--role", role, "--model-name", model,
                                               "--tokens-per-second", str(tps), *extra], "/health")

    def router(self, *args: str, refresh: float = 0.3) -> Proc:
        return self._start("runtime.router", ["--host", "127.0.0.1", "--drain-delay", "0", *args,
                                              "--refresh-seconds", str(refresh)], "/live")

    def frontend(self, router_url: str, model: str = "llama", max_seq_len: int = 256,
                 default_max_tokens: int = 16, extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 ready: bool = True) -> Proc:
        return self._start("runtime.frontend", ["--host", "127.0.0.1", "--router", router_url,
                                                "--served-model-name", model, "--tokenizer", "bytes",
                                                "--max-seq-len", str(max_seq_len),
                                                "--default-max-tokens", str(default_max_tokens), "--drain-delay", "0",
                                                *extra],
                           "/health" if ready else None, env)

    def endpoints_file(self, name: str, procs: list[Proc]) -> Path:
        path = self.dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(p.url + "\n" for p in procs))
        tmp.replace(path)
        return path

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        self._tmp.cleanup()


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not met within {timeout}s")
