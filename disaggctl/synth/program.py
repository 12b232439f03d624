"""Offline synth: run the real Pulumi program under SDK mocks and write what it declares.

Output (deterministic: sorted, no timestamps, made-up ids derived from names):
  tree.txt                      the resource tree (type and name, children indented)
  summary.txt                   resources counted by type
  outputs.json                  stack outputs (secrets masked)
  resources/<type>/<name>.json  every resource: type, name, parent, provider, dependencies, inputs,
                                and the resource options set (customTimeouts, protect, retainOnDelete, …)
  manifests/<ns>/<kind>-<name>.yaml  every Kubernetes object (and Helm release) as YAML
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import runpy
import shutil
import signal
import sys
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not on Windows: the pipe keeps its default size
    fcntl = None  # type: ignore[assignment]

from components.config import stack_file
from components.config.base import OFFLINE_SECRET
from components.config.loader import OFFLINE_RENDER_KEY
from disaggctl.plan.cost import CostRow
from disaggctl.plan.forecast import Forecast, render_forecasts, stack_forecasts, stack_pool_costs
from disaggctl.synth.fast_registration import install_fast_mocks
from disaggctl.synth.render import to_json, to_manifest_yaml
from disaggctl.testing.mocks import RecordedResource, RecordingMonitor

SECRET_PLACEHOLDER = OFFLINE_SECRET


class SynthError(RuntimeError):
    """The program could not be synthesized; the message says why."""


@dataclass
class SynthResult:
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    forecasts: list[Forecast] = field(default_factory=list)
    """What each deployment should deliver (disaggctl.plan.forecast), from its workload and prediction."""
    warnings: list[str] = field(default_factory=list)
    """``pulumi.log.warn`` messages of the program (capacity warnings), printed by the CLI."""
    pool_costs: list[CostRow] = field(default_factory=list)
    """Each GPU pool's whole nodes and $/hour, expected and at its ceiling (disaggctl.plan.cost)."""

    def counts(self) -> Counter[str]:
        return Counter(r.type for r in self.resources)


def read_stack_config(project_dir: Path, stack: str) -> tuple[str, dict[str, str], list[str]]:
    """Project name, flat config (``ns:key`` → string, as Pulumi passes it) and secret keys
    (:func:`components.config.stack_file.read_stack_config`; a missing file is a SynthError)."""
    try:
        project, raw, secret_keys = stack_file.read_stack_config(project_dir, stack)
    except stack_file.StackNotFoundError as err:
        raise SynthError(str(err)) from None
    if OFFLINE_RENDER_KEY in raw:
        raise SynthError(f"Pulumi.{stack}.yaml: {OFFLINE_RENDER_KEY} is set by disaggctl synth only: remove it")
    return project, raw, secret_keys


def run_program(
    project_dir: Path,
    stack: str,
    *,
    fast_registration: bool = True,
    on_record: Callable[[RecordedResource], None] | None = None,
    mask_secrets: bool = True,
) -> SynthResult:
    """Run ``__main__.py`` of ``project_dir`` under mocks with the stack's config
    (``fast_registration``: see ``disaggctl.synth.fast_registration``; False takes the SDK's path;
    ``on_record`` sees each resource as it is recorded, secrets not yet masked; ``mask_secrets``
    False leaves them unmasked in the result too: for a caller that masks what it writes)."""
    import pulumi
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    project, raw, secret_keys = read_stack_config(project_dir, stack)
    validate_stack_config(raw, secret_keys)  # before the forecast: nothing runs on unvalidated config
    forecasts = check_forecasts(raw, stack)
    raw[OFFLINE_RENDER_KEY] = "true"  # placeholders render with a warning (load_from_pulumi)
    monitor: RecordingMonitor = install_fast_mocks(project, stack, fast_registration=fast_registration)
    monitor.on_record = on_record
    runtime_config.set_all_config(raw, secret_keys)
    sys.path.insert(0, str(project_dir))
    with _collection_paused():
        try:
            _sync_await(
                run_pulumi_func(lambda: runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__"))  # type: ignore[arg-type,return-value]
            )
            root = settings.get_root_resource()
            outputs = {}
            for name, value in sorted((root.outputs if root else {}).items()):  # type: ignore[attr-defined]
                output = pulumi.Output.from_input(value)
                resolved = _sync_await(output.future())
                outputs[name] = SECRET_PLACEHOLDER if _sync_await(output.is_secret()) else resolved
        finally:
            sys.path.remove(str(project_dir))
        resources = list(monitor.recorded.values())
        if mask_secrets:
            resources = [replace(r, inputs=mask_secret_inputs(r.inputs)) for r in resources]
    return SynthResult(sorted(resources, key=lambda r: r.urn), outputs, forecasts, list(monitor.warnings),
                       stack_pool_costs(raw, forecasts))


def mask_secret_inputs(value: Any) -> Any:
    """``value`` with every Pulumi secret (e.g. a kubeconfig read from a file) replaced by the
    placeholder: the synth output is uploaded by CI and must hold no secret."""
    from pulumi.runtime.rpc import is_rpc_secret

    def mask(item: Any) -> Any:
        kind = type(item)
        if kind is str or kind is int or kind is float or kind is bool or item is None:
            return item
        if is_rpc_secret(item):
            return SECRET_PLACEHOLDER
        if isinstance(item, dict):
            return {k: mask(v) for k, v in item.items()}
        if isinstance(item, list):
            return [mask(v) for v in item]
        return item

    return mask(value)


def validate_stack_config(raw: dict[str, str], secret_keys: list[str]) -> None:
    """The loader's checks (ConfigError, one line per problem), run before anything reads ``raw``:
    for a stack of this project (keys ``disagg:…``); another project (a consumer composing the
    components under its own namespace) validates in its own program."""
    from components.config import NAMESPACE, load_stack_config

    if any(key.startswith(f"{NAMESPACE}:") for key in raw):
        load_stack_config(raw, secret_keys)


def check_forecasts(raw: dict[str, str], stack: str | None = None) -> list[Forecast]:
    """Each deployment's forecast; raises ConfigError for invalid workloads and for deployments
    that miss their SLO with ``onBreach: refuse``, before the program runs."""
    from components.config import ConfigError

    forecasts, problems = stack_forecasts(raw, stack=stack)
    problems += [p for f in forecasts if f.refuse for p in f.problems]
    if problems:
        raise ConfigError(problems)
    return forecasts



WRITER_THREADS = 4
"""Threads creating the synth's files while the main thread renders the next ones: creating a
file costs about a millisecond of kernel time on the CI machines, as much as rendering it."""
WRITER_PROCESSES = min(2, os.cpu_count() or 1) if hasattr(os, "fork") else 1
"""Processes rendering and writing the resources' files (each takes every n-th resource): the
rendering is CPU-bound Python, so a second core halves it. Small stacks stay in one process."""
FORK_FROM_RESOURCES = 150


def _write_file(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_synth(result: SynthResult, out_dir: Path) -> None:
    """Write the synth files into ``out_dir`` (replacing what was there)."""
    _empty_tree(out_dir)
    processes = WRITER_PROCESSES if len(result.resources) >= FORK_FROM_RESOURCES else 1
    with _collection_paused():
        if processes == 1:
            _write_share(result, out_dir, 0, 1)
            return
        pid = _fork()
        if pid == 0:  # the helper: its share, then leave without running the parent's cleanup
            code = 1
            try:
                _write_share(result, out_dir, 1, processes)
                code = 0
            except BaseException:  # noqa: BLE001 - reported, then the exit code tells the parent
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        try:
            _write_share(result, out_dir, 0, processes)
        finally:
            _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SynthError(f"writing the synth files into {out_dir} failed in the helper process (its error is above)")


def _empty_tree(out_dir: Path) -> None:
    """``out_dir`` emptied (removed if there), with the synth's two subdirectories."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "resources").mkdir(parents=True)
    (out_dir / "manifests").mkdir()


def _fork() -> int:
    """``os.fork`` with the standard streams flushed first (else the child repeats their buffers)."""
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():  # 3.12+: fork of a process with (idle) executor threads
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _write_share(result: SynthResult, out_dir: Path, share: int, shares: int) -> None:
    """Render and write every ``shares``-th resource from ``share`` on (share 0 also writes the
    tree, summary and outputs)."""
    with _FileWriter() as files:
        if share == 0:
            _write_summary_files(result, out_dir, files)
        for resource in result.resources[share::shares]:
            _write_resource_files(resource, out_dir, files)


class _FileWriter:
    """Files written by :data:`WRITER_THREADS` threads; leaving the block waits for them and
    raises the first OSError."""

    def __enter__(self) -> _FileWriter:
        self._made: set[Path] = set()
        self._pool = ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="synth-write")
        self._pending: list[Any] = []
        return self

    def write(self, path: Path, text: str) -> None:
        if path.parent not in self._made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(path.parent)
        self._pending.append(self._pool.submit(_write_file, path, text))

    def __exit__(self, *exc: object) -> None:
        try:
            for future in self._pending:
                future.result()  # an OSError of any file stops the synth
        finally:
            self._pool.shutdown()


def _write_summary_files(result: SynthResult, out_dir: Path, files: _FileWriter) -> None:
    files.write(out_dir / "tree.txt", render_tree(result.resources))
    files.write(out_dir / "summary.txt", render_result_summary(result))
    outputs = dict(result.outputs)
    if result.forecasts:
        outputs[FORECASTS_KEY] = {f.deployment: f.as_json() for f in result.forecasts}
    if result.pool_costs:
        outputs[POOL_COSTS_KEY] = {r.pool: r.as_json() for r in result.pool_costs}
    files.write(out_dir / "outputs.json", _json(outputs))


def _write_resource_files(resource: RecordedResource, out_dir: Path, files: _FileWriter) -> None:
    files.write(out_dir / "resources" / _safe(resource.type) / f"{_safe(resource.name)}.json",
                _json(resource_document(resource)))
    manifest = kubernetes_manifest(resource)
    if manifest is not None:
        namespace = (manifest.get("metadata") or {}).get("namespace") or "_cluster"
        kind = manifest.get("kind", "Object")
        files.write(out_dir / "manifests" / _safe(namespace) / f"{kind.lower()}-{_safe(resource.name)}.yaml",
                    manifest_yaml(manifest))


def synthesize(project_dir: Path, stack: str, out_dir: Path) -> SynthResult:
    """:func:`run_program`, then :func:`write_synth` into ``out_dir``, with the resources' files
    rendered and written by a second process while the program still runs (where ``fork`` exists
    and there is a second core): each recorded resource is pickled to it through a pipe. The files
    go to a sibling directory that replaces ``out_dir`` only when everything succeeded, so a failed
    synth leaves the previous output alone. Secrets are masked in the files; the returned result's
    resource inputs are not (the CLI only counts and prints them)."""
    target = out_dir.resolve()
    project = project_dir.resolve()
    if target == project or target in project.parents or target == Path.cwd().resolve():
        raise SynthError(
            f"--out {out_dir} would replace the project or working directory: give the synth a "
            f"directory of its own, e.g. build/synth/{stack}"
        )
    if WRITER_PROCESSES < 2:
        result = run_program(project_dir, stack)
        write_synth(result, out_dir)
        return result
    staging = out_dir.parent / f".{out_dir.name}.synth-{os.getpid()}"
    _empty_tree(staging)
    writer = _StreamingWriter(staging)
    try:
        # the writer masks each resource's secrets; the result's inputs are only written below when
        # the stream broke, and are masked there
        result = run_program(project_dir, stack, on_record=writer.send, mask_secrets=False)
        streamed = writer.finish()
        if not streamed:  # a resource could not be pickled: write everything here instead
            masked = [replace(r, inputs=mask_secret_inputs(r.inputs)) for r in result.resources]
            result = replace(result, resources=masked)
            write_synth(result, staging)
        else:
            with _FileWriter() as files:
                _write_summary_files(result, staging, files)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        writer.abort()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


class _StreamingWriter:
    """A forked process that renders and writes each resource it is sent (see :func:`synthesize`)."""

    def __init__(self, out_dir: Path) -> None:
        read_fd, write_fd = os.pipe()
        self.pid = _fork()
        if self.pid == 0:
            os.close(write_fd)
            _writer_process(read_fd, out_dir)  # never returns
        os.close(read_fd)
        _widen_pipe(write_fd)
        self.stream: Any = os.fdopen(write_fd, "wb", buffering=1 << 16)
        self.broken = False
        """A resource could not be pickled: the parent writes every file itself."""
        self.gone = False
        """The helper exited early (its error is printed; :meth:`finish` raises)."""
        self.done = False

    def send(self, resource: RecordedResource) -> None:
        if self.broken or self.gone:
            return
        try:
            data = pickle.dumps(resource, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an unpicklable input: the parent writes everything
            self.broken = True
            return
        try:
            self.stream.write(len(data).to_bytes(8, "little"))
            self.stream.write(data)
        except OSError:  # a broken pipe: the helper failed
            self.gone = True

    def finish(self) -> bool:
        """Wait for the writer; False if the stream broke (nothing it wrote can be trusted)."""
        self.done = True
        with contextlib.suppress(OSError):
            self.stream.close()
        _, status = os.waitpid(self.pid, 0)
        if self.broken:
            return False
        if self.gone or os.waitstatus_to_exitcode(status) != 0:
            raise SynthError("writing the synth files failed in the helper process (its error is above)")
        return True

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        with contextlib.suppress(OSError):
            self.stream.close()
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _widen_pipe(fd: int) -> None:
    """Let the pipe hold up to a few MB (Linux; 64 KiB by default): the program registers resources
    in bursts faster than the writer renders them, and should not wait for it in between."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", 1031) if fcntl is not None else None
    if set_size is None or not sys.platform.startswith("linux"):
        return
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        fcntl.fcntl(fd, set_size, min(limit, 8 << 20))
    except (OSError, ValueError):
        pass  # the default size works, only slower


def _writer_process(read_fd: int, out_dir: Path) -> None:
    """The helper of :class:`_StreamingWriter`: read length-prefixed pickles until the pipe
    closes, write each resource's files, exit 0 (1 after printing the error)."""
    code = 1
    try:
        gc.disable()
        with os.fdopen(read_fd, "rb", buffering=1 << 16) as stream, _FileWriter() as files:
            while True:
                header = stream.read(8)
                if not header:
                    break
                resource = pickle.loads(stream.read(int.from_bytes(header, "little")))
                resource = replace(resource, inputs=mask_secret_inputs(resource.inputs))
                _write_resource_files(resource, out_dir, files)
        code = 0
    except BaseException:  # noqa: BLE001 - reported here, the exit code tells the parent
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """The cyclic garbage collector off while the program runs and its files are written: both
    allocate hundreds of thousands of long-lived objects, which makes the collector rescan the whole
    heap again and again (a third of the synth's time on a large stack) and free almost nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def render_tree(resources: list[RecordedResource]) -> str:
    children: dict[str, list[RecordedResource]] = {}
    for resource in resources:
        children.setdefault(resource.parent, []).append(resource)
    by_urn = {r.urn for r in resources}
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=lambda r: (r.name, r.type)):
            lines.append(f"{'  ' * depth}{child.type}  {child.name}")
            walk(child.urn, depth + 1)

    roots = sorted({r.parent for r in resources if r.parent not in by_urn})
    for root in roots:
        walk(root, 0)
    return "\n".join(lines) + "\n"


FORECASTS_KEY = "deploymentForecasts"
"""Key in outputs.json holding each deployment's forecast (not a Pulumi stack output)."""
POOL_COSTS_KEY = "gpuPoolCosts"
"""Key in outputs.json holding each GPU pool's cost row (disaggctl.plan.cost.CostRow)."""


def render_result_summary(result: SynthResult) -> str:
    """summary.txt: the deployment forecasts, then resources counted by type (last line: total)."""
    return render_forecasts(result.forecasts, result.pool_costs).lstrip("\n") + render_summary(result.counts())


def render_summary(counts: Counter[str]) -> str:
    width = max((len(t) for t in counts), default=10)
    lines = [f"{t.ljust(width)}  {n}" for t, n in sorted(counts.items())]
    lines.append(f"{'total'.ljust(width)}  {sum(counts.values())}")
    return "\n".join(lines) + "\n"


def manifest_yaml(manifest: dict[str, Any]) -> str:
    """Sorted keys, block style, multi-line strings as ``|`` blocks (PyYAML falls back to quoting
    where a block cannot hold the string exactly, e.g. trailing spaces)."""
    return to_manifest_yaml(manifest)


def kubernetes_manifest(resource: RecordedResource) -> dict[str, Any] | None:
    """The Kubernetes object a resource applies, or a Helm release's chart and values."""
    if not resource.type.startswith("kubernetes:") or resource.type == "pulumi:providers:kubernetes":
        return None
    group_version, kind = resource.type.split(":", 1)[1].rsplit(":", 1)
    inputs = dict(resource.inputs)
    if group_version == "helm.sh/v3" and kind == "Release":
        return {
            "apiVersion": "helm.sh/v3",
            "kind": "HelmRelease",
            "metadata": {"name": inputs.get("name", resource.name), "namespace": inputs.get("namespace")},
            "chart": inputs.get("chart"),
            "version": inputs.get("version"),
            "repository": (inputs.get("repositoryOpts") or {}).get("repo"),
            "values": inputs.get("values") or {},
        }
    if group_version.endswith("/v1") and kind.endswith("List"):
        return None
    api_version = group_version.removeprefix("core/")
    manifest = {"apiVersion": inputs.pop("apiVersion", api_version), "kind": inputs.pop("kind", kind)}
    manifest.update(inputs)
    return manifest


def resource_document(resource: RecordedResource) -> dict[str, Any]:
    """What `resources/<type>/<name>.json` holds for one resource (also what the first-apply
    check reads, `disaggctl.synth.first_apply`)."""
    return {
        "type": resource.type,
        "name": resource.name,
        "parent": resource.parent_name,
        "custom": resource.custom,
        "provider": resource.provider.split("::")[-2] if resource.provider else "",
        "dependsOn": [d.rsplit("::", 1)[-1] for d in resource.dependencies],
        "inputs": resource.inputs,
        **({"options": resource.options} if resource.options else {}),
    }


def _json(value: Any) -> str:
    return to_json(value)  # json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
