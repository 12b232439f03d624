"""Run a real Triton Inference Server on this machine (CPU) for tests and local runs.

The ``tritonserver`` binary and its python backend come from the ``nvidia-pytriton`` wheel.
Usage::

    with LocalTriton(Path("repo")) as server:
        client = tritonclient.grpc.InferenceServerClient(server.grpc_url)
        ...

Stable API (used by disaggctl.verify* tests):

* ``LocalTriton(repository, *, startup_timeout_s=60, log_verbose=0, extra_args=(), workdir=None)``
  is a context manager; ``start()`` / ``stop()`` do the same by hand.
* ``http_url``, ``grpc_url``, ``metrics_url``: ``"127.0.0.1:<port>"`` (no scheme; what
  tritonclient expects). Metrics are at ``http://{metrics_url}/metrics``.
* ``log_path``: the server's log file; it stays on disk after ``stop()``.
* A server that exits or is not ready within ``startup_timeout_s`` (e.g. a model fails to
  load: tritonserver exits with "failed to load all models") raises :class:`TritonStartError`
  whose message lists the log's error lines (E...) and then its tail.

Python models: the backend's stub embeds the *system* libpython and ignores PYTHONPATH, so
model.py files could not import numpy/tritonclient from this virtualenv. Instead of touching
sys.path in model code, the server gets a private "stub environment": a directory with a
``pyvenv.cfg`` (home = the prefix of the stub's libpython) and a ``bin/python3`` symlink, put
first on the server's PATH. The embedded interpreter finds ``python3`` on PATH, sees the
``pyvenv.cfg`` next to it and adds that environment's site-packages, where one ``.pth`` file
points at the running interpreter's site-packages. Requires the stub's Python minor version
(``python_backend_stubs/<X.Y>``, matched to the running Python) to be the system's libpython.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LOG_TAIL_LINES = 40
# Error lines every CPU-only start logs; not worth showing.
_NOISE = ("CudaDriverHelper has not been initialized",)


class TritonStartError(RuntimeError):
    """tritonserver exited or was not ready in time; the message holds the log's errors and tail."""


@dataclass(frozen=True)
class TritonInstall:
    """Where the nvidia-pytriton wheel keeps Triton."""

    binary: Path
    libs: Path
    python_backend: Path
    stub: Path

    @classmethod
    def find(cls) -> TritonInstall:
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise TritonStartError(
                "package nvidia-pytriton is not installed: pip install nvidia-pytriton==0.7.0"
            )
        root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        install = cls(
            binary=root / "bin" / "tritonserver",
            libs=root.parent.parent / "nvidia_pytriton.libs",
            python_backend=root / "backends" / "python",
            stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
        )
        for path in (install.binary, install.python_backend, install.stub):
            if not path.exists():
                raise TritonStartError(
                    f"{path} is missing from nvidia-pytriton (Python {version}): reinstall "
                    f"nvidia-pytriton==0.7.0 for this Python"
                )
        return install


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_backend_dir(install: TritonInstall, dest: Path) -> Path:
    """A private ``--backend-directory`` holding the python backend and its stub."""
    python = dest / "python"
    python.mkdir(parents=True, exist_ok=True)
    for item in install.python_backend.iterdir():
        if item.is_file():
            shutil.copy2(item, python / item.name)
    shutil.copy2(install.stub, python / "triton_python_backend_stub")
    return dest


def _libpython_prefix(stub: Path, env: dict[str, str]) -> Path:
    """Install prefix of the libpython the stub links (where its standard library lives)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates: list[Path] = []
    try:
        out = subprocess.run(["ldd", str(stub)], capture_output=True, text=True, env=env, timeout=30).stdout
        m = re.search(r"libpython[\d.]+\.so[\d.]*\s*=>\s*(\S+)", out)
        if m:
            lib = Path(m.group(1)).resolve()
            candidates += list(lib.parents)
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += [Path("/usr"), Path("/usr/local"), Path(sys.base_prefix)]
    for prefix in candidates:
        if (prefix / "lib" / f"python{version}" / "os.py").exists():
            return prefix
    raise TritonStartError(
        f"no standard library for Python {version} found for the python backend stub "
        f"(looked in {[str(c) for c in candidates]}): install the system python{version}"
    )


def prepare_stub_environment(install: TritonInstall, dest: Path, env: dict[str, str]) -> Path:
    """Private environment that makes the stub's interpreter see this interpreter's packages.

    Returns its ``bin`` directory, to be put first on the server's PATH.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prefix = _libpython_prefix(install.stub, env)
    bin_dir = dest / "bin"
    site = dest / "lib" / f"python{version}" / "site-packages"
    bin_dir.mkdir(parents=True, exist_ok=True)
    site.mkdir(parents=True, exist_ok=True)
    exe = prefix / "bin" / f"python{version}"
    link = bin_dir / "python3"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(exe if exe.exists() else Path(sys.executable))
    (dest / "pyvenv.cfg").write_text(
        f"home = {prefix / 'bin'}\ninclude-system-site-packages = false\nversion = {version}\n"
    )
    paths = sysconfig.get_paths()
    dirs = dict.fromkeys([paths["purelib"], paths["platlib"]])
    (site / "local_triton_venv.pth").write_text("".join(f"{d}\n" for d in dirs))
    return bin_dir


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _log_summary(path: Path) -> str:
    """Error lines of the log (what failed to load, and why), then its tail."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    errors = [
        line
        for line in text
        if (re.match(r"^E\d{4} ", line) or "UNAVAILABLE" in line) and not any(n in line for n in _NOISE)
    ]
    head = "errors:\n" + "\n".join(errors[-20:]) + "\n" if errors else ""
    return f"{head}log tail:\n" + "\n".join(text[-LOG_TAIL_LINES:])


class LocalTriton:
    """A tritonserver on 127.0.0.1 serving ``repository``, on free ports."""

    def __init__(
        self,
        repository: Path,
        *,
        startup_timeout_s: float = 60.0,
        log_verbose: int = 0,
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
    ) -> None:
        self.repository = Path(repository).resolve()
        self.startup_timeout_s = startup_timeout_s
        self.log_verbose = log_verbose
        self.extra_args = tuple(extra_args)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="local-triton-"))
        self.log_path = self.workdir / "tritonserver.log"
        self.http_port = self.grpc_port = self.metrics_port = 0
        self.process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def __enter__(self) -> LocalTriton:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalTriton:
        """Start the server and wait until it is ready; raises :class:`TritonStartError`."""
        if not (self.repository / "").is_dir():
            raise TritonStartError(f"model repository {self.repository} is not a directory")
        install = TritonInstall.find()
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(install.libs), env.get("LD_LIBRARY_PATH", "")) if p
        )
        backends = prepare_backend_dir(install, self.workdir / "backends")
        stub_bin = prepare_stub_environment(install, self.workdir / "stubenv", env)
        env["PATH"] = os.pathsep.join([str(stub_bin), env.get("PATH", "")])
        for attempt in range(3):  # a port taken between free_port() and bind: retry
            self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
            try:
                self._launch(install, backends, env)
                return self
            except TritonStartError:
                in_use = "address already in use" in _log_tail(self.log_path).lower()
                self._kill()
                if not in_use or attempt == 2:
                    self.stop()
                    raise
        return self

    def _launch(self, install: TritonInstall, backends: Path, env: dict[str, str]) -> None:
        cmd = [
            str(install.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={backends}",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            "--allow-gpu-metrics=false",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--exit-timeout-secs=10",
            f"--log-verbose={self.log_verbose}",
            *self.extra_args,
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"http://{self.http_url}/v2/health/ready"
        while True:
            code = self.process.poll()
            if code is not None:
                raise TritonStartError(
                    f"tritonserver exited with code {code} while loading {self.repository}; "
                    f"log {self.log_path}:\n{_log_summary(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self._kill()
                raise TritonStartError(
                    f"tritonserver not ready within startup_timeout_s={self.startup_timeout_s} "
                    f"for {self.repository}; log {self.log_path}:\n{_log_summary(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL of its process group) and its stubs."""
        self._kill()
        if self._own_workdir:
            for sub in ("backends", "stubenv"):
                shutil.rmtree(self.workdir / sub, ignore_errors=True)

    def _kill(self) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=15)
            # python backend stubs live in the server's session: end any left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
