"""The synth's fast paths record and write exactly what the slow ones do.

- ``disaggctl.synth.fast_registration`` against the Pulumi SDK's own registration: every shipped stack
  recorded both ways, compared resource by resource (type, parent, provider, dependencies, inputs)
  and output by output;
- ``disaggctl.synth.render`` against ``json.dumps`` and ``yaml.dump`` on generated values
  (hypothesis) and on every manifest and resource document of the shipped stacks.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from disaggctl.synth import fast_registration
from disaggctl.synth.fast_registration import install_fast_mocks
from disaggctl.synth.program import SynthResult, kubernetes_manifest, resource_document, run_program
from disaggctl.synth.render import ManifestDumper, to_json, to_manifest_yaml

PROJECT_DIR = Path(__file__).resolve().parents[3]


SHIPPED_STACKS = sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in PROJECT_DIR.glob("Pulumi.*.yaml"))
CONSUMER = "consumer example"
"""examples/consumer as its README deploys it, with a kubeconfig file written beside it."""


def consumer_project(directory: Path) -> Path:
    """examples/consumer copied to ``directory`` with stack ``ci`` pointing at a local kubeconfig."""
    project = directory / "llm-team"
    shutil.copytree(PROJECT_DIR / "examples" / "consumer", project)
    kubeconfig = project / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
    }))  # fmt: skip
    stack = yaml.safe_load((project / "Pulumi.example.yaml").read_text())
    stack["config"]["llm-team:kubeconfig"] = str(kubeconfig)
    (project / "Pulumi.ci.yaml").write_text(yaml.safe_dump(stack))
    return project


@contextmanager
def counting_registrations() -> Iterator[Counter[str]]:
    """Counts the calls of the fast ``register_resource`` and of the SDK's (the fast path also
    hands what it cannot record plainly to the SDK's: those count as both)."""
    counts: Counter[str] = Counter()
    fast, sdk = fast_registration.register_resource, fast_registration._SDK_REGISTER

    def counted_fast(*args: Any, **kwargs: Any) -> None:
        counts["fast"] += 1
        fast(*args, **kwargs)

    def counted_sdk(*args: Any, **kwargs: Any) -> None:
        counts["sdk"] += 1
        sdk(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_registration, "register_resource", counted_fast)
        patch.setattr(fast_registration, "_SDK_REGISTER", counted_sdk)
        yield counts


Runs = tuple[dict[tuple[str, bool], SynthResult], dict[tuple[str, bool], Counter[str]]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Every shipped stack and the consumer example, each recorded through the fast path and the
    SDK's, with the registrations each path made."""
    projects = {stack: (PROJECT_DIR, stack) for stack in SHIPPED_STACKS}
    projects[CONSUMER] = (consumer_project(tmp_path_factory.mktemp("consumer")), "ci")
    results, calls = {}, {}
    for name, (project, stack) in projects.items():
        for fast in (True, False):
            with counting_registrations() as counts:
                results[name, fast] = run_program(project, stack, fast_registration=fast)
            calls[name, fast] = counts
    fast_registration.install(True)
    return results, calls


@pytest.fixture(scope="module")
def recorded(runs: Runs) -> dict[tuple[str, bool], SynthResult]:
    return runs[0]


def test_the_shipped_stacks_are_found() -> None:
    assert {"dev", "prod"} <= set(SHIPPED_STACKS)


@pytest.mark.parametrize("stack", [*SHIPPED_STACKS, CONSUMER])
def test_fast_registration_records_what_the_sdk_does(recorded: dict, stack: str) -> None:
    fast, sdk = recorded[stack, True], recorded[stack, False]
    assert [r.urn for r in fast.resources] == [r.urn for r in sdk.resources]
    for mine, theirs in zip(fast.resources, sdk.resources, strict=True):
        assert mine == theirs, mine.urn
    assert fast.outputs == sdk.outputs
    assert fast.warnings == sdk.warnings
    assert len(fast.resources) > 20


def test_fast_registration_runs_only_under_the_verified_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another SDK release: the SDK's own path, and one line saying so."""
    from pulumi.runtime import resource as sdk_resource

    from disaggctl.testing.mocks import RecordingMonitor

    assert fast_registration.sdk_version() == fast_registration.VERIFIED_SDK_VERSION  # requirements.txt
    monkeypatch.setattr(fast_registration, "sdk_version", lambda: "3.999.0")
    try:
        monitor = install_fast_mocks("proj", "stack")
        assert type(monitor) is RecordingMonitor
        assert sdk_resource.register_resource is fast_registration._SDK_REGISTER
        assert monitor.warnings == [
            f"pulumi SDK 3.999.0 is not {fast_registration.VERIFIED_SDK_VERSION}, the release fast registration "
            "was verified against: resources register through the SDK's own (slower) path"
        ]
    finally:
        fast_registration.install(True)
    monkeypatch.undo()
    monitor = install_fast_mocks("proj", "stack")
    assert isinstance(monitor, fast_registration.FastRecordingMonitor) and monitor.warnings == []
    assert sdk_resource.register_resource is fast_registration.register_resource


@pytest.mark.parametrize("stack", [*SHIPPED_STACKS, CONSUMER])
def test_each_run_went_through_the_path_it_names(runs: Runs, stack: str) -> None:
    """The comparison above means something only if each run really took its path: the SDK run
    never entered the fast function, and the fast run recorded its resources itself."""
    results, calls = runs
    registered = len(results[stack, True].resources) + 1  # and the root pulumi:pulumi:Stack, not recorded
    assert calls[stack, False] == Counter(sdk=registered)
    fast = calls[stack, True]
    assert fast["fast"] == registered
    assert fast["sdk"] < registered / 10  # only what the fast path cannot record plainly is handed over


def _record(program, fast: bool) -> dict:
    monitor = install_fast_mocks("proj", "stack", fast_registration=fast)
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    _sync_await(run_pulumi_func(program))
    fast_registration.install(True)
    return {urn: (r.type, r.parent, r.inputs, r.dependencies, r.options) for urn, r in monitor.recorded.items()}


def test_resource_options_are_recorded_alike_on_both_paths() -> None:
    """customTimeouts, protect (inherited from the parent), retainOnDelete, ignoreChanges and
    replaceOnChanges (translated to the engine's names), deleteBeforeReplace, aliases and
    deletedWith are recorded from the SDK's request and from the fast path's options alike."""
    import pulumi_kubernetes as k8s

    class Group(pulumi.ComponentResource):
        def __init__(self, name: str, opts: pulumi.ResourceOptions) -> None:
            super().__init__("test:index:Group", name, None, opts)
            self.job = k8s.batch.v1.Job(
                f"{name}-job", metadata={"name": "j"}, spec={"template": {"spec": {"containers": []}}},
                opts=pulumi.ResourceOptions(
                    parent=self, custom_timeouts=pulumi.CustomTimeouts(create="45m", update="30m"),
                    retain_on_delete=True, ignore_changes=["spec"], replace_on_changes=["metadata.name"],
                    delete_before_replace=True, aliases=[pulumi.Alias(name="old-job")],
                ),
            )
            self.register_outputs({})

    def program() -> None:
        group = Group("g", pulumi.ResourceOptions(protect=True))
        k8s.core.v1.ConfigMap("plain", metadata={"name": "plain"}, data={"a": "1"},
                              opts=pulumi.ResourceOptions(deleted_with=group.job))

    fast, sdk = _record(program, True), _record(program, False)
    assert fast == sdk
    options = {urn.rsplit("::", 1)[-1]: record[4] for urn, record in fast.items()}
    assert options["g-job"] == {
        "protect": True, "retainOnDelete": True, "deleteBeforeReplace": True,
        "customTimeouts": {"create": "45m", "update": "30m"}, "ignoreChanges": ["spec"],
        "replaceOnChanges": ["metadata.name"], "aliases": [options["g-job"]["aliases"][0]],
    }
    assert "old-job" in options["g-job"]["aliases"][0]
    assert options["g"] == {"protect": True}
    assert options["plain"] == {"deletedWith": "g-job"}


def test_outputs_and_secrets_take_the_sdks_serialization() -> None:
    """Inputs holding Outputs (secret or not), resource references and depends_on on a component
    are left to the SDK's serialization, with the same result as the SDK's whole path."""
    import pulumi_kubernetes as k8s

    class Group(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("test:index:Group", name)
            self.cm = k8s.core.v1.ConfigMap(
                f"{name}-cm", metadata={"name": f"{name}-cm"}, data={"a": "1", "n": None},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.register_outputs({})

    def program() -> None:
        group = Group("g")
        secret = pulumi.Output.secret("hunter2")
        k8s.core.v1.Secret(
            "s", metadata={"name": group.cm.metadata.apply(lambda m: m["name"] + "-s"), "labels": {"x": "y"}},
            string_data={"token": secret}, opts=pulumi.ResourceOptions(depends_on=[group]),
        )
        k8s.core.v1.ConfigMap("numbers", metadata={"name": "numbers"}, data={"f": "1.5"},
                              immutable=True, opts=pulumi.ResourceOptions(depends_on=[group.cm]))

    assert _record(program, True) == _record(program, False)


@pytest.mark.parametrize("stack", [*SHIPPED_STACKS, CONSUMER])
def test_every_shipped_document_renders_as_the_libraries_do(recorded: dict, stack: str) -> None:
    for resource in recorded[stack, True].resources:
        document = resource_document(resource)
        assert to_json(document) == json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"
        manifest = kubernetes_manifest(resource)
        if manifest is not None:
            expected = yaml.dump(manifest, Dumper=ManifestDumper, sort_keys=True, default_flow_style=False, width=100)
            assert to_manifest_yaml(manifest) == expected, resource.urn


_CYCLE_PROGRAM = """
import sys
import pulumi, pulumi_kubernetes as k8s
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await
from disaggctl.synth.fast_registration import install_fast_mocks

def program():
    group = pulumi.ComponentResource("test:index:Group", "g")
    k8s.core.v1.ConfigMap("inner", metadata={"name": "inner"},
                          opts=pulumi.ResourceOptions(parent=group, depends_on=[group]))

install_fast_mocks("proj", "stack", fast_registration=sys.argv[1] == "fast")
try:
    _sync_await(run_pulumi_func(program))
except RuntimeError as err:
    print("refused:", str(err).splitlines()[0])
"""


@pytest.mark.parametrize("path", ["fast", "sdk"])
def test_a_dependency_cycle_is_refused_on_both_paths(path: str) -> None:
    """A resource that depends on the component holding it closes a cycle: the SDK refuses it,
    and the fast path's shortcut in declare_dependency must not hide it. (A fresh process each:
    the SDK keeps a failed program's error for the next program of the process.)"""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _CYCLE_PROGRAM, path], cwd=PROJECT_DIR, capture_output=True,
                         text=True, timeout=120)
    assert "refused: We have detected a circular dependency involving a resource of type " \
        "kubernetes:core/v1:ConfigMap named inner." in run.stdout, run.stderr[-2000:]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_two_writer_processes_write_the_same_tree(recorded: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import filecmp

    from disaggctl.synth import program as synth

    result = recorded["prod", True]
    monkeypatch.setattr(synth, "WRITER_PROCESSES", 1)
    synth.write_synth(result, tmp_path / "one")
    monkeypatch.setattr(synth, "WRITER_PROCESSES", 2)
    monkeypatch.setattr(synth, "FORK_FROM_RESOURCES", 0)
    synth.write_synth(result, tmp_path / "two")

    def files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    assert files(tmp_path / "one") == files(tmp_path / "two")
    assert len(files(tmp_path / "one")) > 300
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "one", tmp_path / "two", files(tmp_path / "one"), shallow=False)
    assert mismatch == errors == []


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_a_failing_writer_process_fails_the_synth(recorded: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from disaggctl.synth import program as synth

    real = synth._write_share

    def failing(result: SynthResult, out_dir: Path, share: int, shares: int) -> None:
        if share == 1:
            raise OSError(28, "No space left on device")
        real(result, out_dir, share, shares)

    monkeypatch.setattr(synth, "_write_share", failing)
    monkeypatch.setattr(synth, "WRITER_PROCESSES", 2)
    monkeypatch.setattr(synth, "FORK_FROM_RESOURCES", 0)
    with pytest.raises(synth.SynthError, match="failed in the helper process"):
        synth.write_synth(recorded["dev", True], tmp_path / "out")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_streamed_synth_writes_what_write_synth_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from disaggctl.synth import program as synth

    monkeypatch.setattr(synth, "WRITER_PROCESSES", 2)
    streamed = synth.synthesize(PROJECT_DIR, "dev", tmp_path / "streamed")
    synth.write_synth(run_program(PROJECT_DIR, "dev"), tmp_path / "plain")
    assert _files(tmp_path / "streamed") == _files(tmp_path / "plain")
    assert len(streamed.resources) > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "streamed"]  # no staging left


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_a_failed_synth_keeps_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from disaggctl.synth import program as synth

    monkeypatch.setattr(synth, "WRITER_PROCESSES", 2)
    out = tmp_path / "out"
    synth.synthesize(PROJECT_DIR, "dev", out)
    before = _files(out)
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_bytes((PROJECT_DIR / name).read_bytes())
    (project / "Pulumi.dev.yaml").write_text((PROJECT_DIR / "Pulumi.dev.yaml").read_text() + "  disagg:bogus: 1\n")
    from components.config import ConfigError

    with pytest.raises(ConfigError, match="bogus"):
        synth.synthesize(project, "dev", out)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "project"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_the_streaming_writer_failing_fails_the_synth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from disaggctl.synth import program as synth

    def broken(resource: object, out_dir: Path, files: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(synth, "WRITER_PROCESSES", 2)
    monkeypatch.setattr(synth, "_write_resource_files", broken)
    with pytest.raises(synth.SynthError, match="failed in the helper process"):
        synth.synthesize(PROJECT_DIR, "dev", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_an_unpicklable_input_falls_back_to_writing_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from disaggctl.synth import program as synth

    real_send = synth._StreamingWriter.send

    def send(self: synth._StreamingWriter, resource: object) -> None:
        if getattr(resource, "type", "") == "kubernetes:core/v1:Namespace":
            self.broken = True  # as when pickle.dumps raises
        real_send(self, resource)

    real_write = synth.write_synth
    written: list[Path] = []

    def write_synth(result: SynthResult, out_dir: Path) -> None:
        written.append(out_dir)
        real_write(result, out_dir)

    monkeypatch.setattr(synth, "WRITER_PROCESSES", 2)
    monkeypatch.setattr(synth._StreamingWriter, "send", send)
    monkeypatch.setattr(synth, "write_synth", write_synth)
    synth.synthesize(PROJECT_DIR, "dev", tmp_path / "fallback")
    assert len(written) == 1 and written[0].name.startswith(".fallback.synth-")  # the parent wrote it
    real_write(run_program(PROJECT_DIR, "dev"), tmp_path / "plain")
    assert _files(tmp_path / "fallback") == _files(tmp_path / "plain")


def test_the_synth_refuses_to_replace_the_project(tmp_path: Path) -> None:
    from disaggctl.synth import program as synth

    for out in (PROJECT_DIR, PROJECT_DIR.parent, Path(".")):
        with pytest.raises(synth.SynthError, match="directory of its own"):
            synth.synthesize(PROJECT_DIR, "dev", out)
    assert (PROJECT_DIR / "Pulumi.dev.yaml").exists()


def _typed(value: object) -> object:
    """A value with every container's type kept, for comparing output objects exactly."""
    if isinstance(value, dict):
        return (type(value).__qualname__, {k: _typed(v) for k, v in dict.items(value)})
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__qualname__, value)


def _resolved_outputs(fast: bool) -> dict:
    """Typed output properties of real resources, as the program would read them."""
    import pulumi_aws as aws
    import pulumi_kubernetes as k8s
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    install_fast_mocks("proj", "stack", fast_registration=fast)
    made: dict = {}

    def program() -> None:
        labels = {"app": "x", "app.kubernetes.io/name": "x"}
        made["deployment"] = k8s.apps.v1.Deployment("d", metadata={"name": "d", "labels": labels}, spec={
            "replicas": 2, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "c", "image": "i@sha256:" + "0" * 64, "ports": [{"containerPort": 8000}],
                "resources": {"limits": {"cpu": "2", "nvidia.com/gpu": "1"}},
                "securityContext": {"runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}}]}}})
        made["service"] = k8s.core.v1.Service("s", metadata={"name": "s"}, spec={
            "type": "ClusterIP", "ports": [{"port": 80, "targetPort": 8000}], "selector": labels})
        made["lws"] = k8s.apiextensions.CustomResource("l", api_version="leaderworkerset.x-k8s.io/v1",
                                                       kind="LeaderWorkerSet", metadata={"name": "l"},
                                                       spec={"replicas": 1, "leaderWorkerTemplate": {"size": 2}})
        made["role"] = aws.iam.Role("r", assume_role_policy="{}", tags={"a": "b"}, max_session_duration=3600)

    _sync_await(run_pulumi_func(program))
    fast_registration.install(True)
    values = {}
    for name, resource in made.items():
        for prop in ("metadata", "spec", "kind", "api_version", "tags", "max_session_duration", "arn"):
            if hasattr(type(resource), prop) or prop in resource.__dict__:
                output = getattr(resource, prop)
                values[f"{name}.{prop}"] = _typed(_sync_await(output.future()))
    return values


def test_output_properties_read_back_as_the_sdk_gives_them() -> None:
    fast, sdk = _resolved_outputs(True), _resolved_outputs(False)
    assert fast == sdk
    assert fast["deployment.spec"][0] == "DeploymentSpec"  # typed output objects, not plain dicts
    assert fast["role.max_session_duration"] == ("int", 3600)
