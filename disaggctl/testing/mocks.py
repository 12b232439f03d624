"""Pulumi SDK mocks that record every resource: the basis of synth and of component tests.

Outputs a real provider would compute (ids, ARNs, endpoints) are made up deterministically
from the resource's type and name, so two runs record byte-identical results. For a consumer's
own tests (``tests/disaggctl/testing/test_mocks.py`` runs this)::

    import pulumi
    from disaggctl.testing.mocks import install_mocks

    monitor = install_mocks("llm-team", "test")

    @pulumi.runtime.test
    def declare():
        ModelStore("models", ModelStoreArgs(...))  # any components, as the program builds them

    declare()
    claims = [r for r in monitor.recorded.values() if r.type == "kubernetes:core/v1:PersistentVolumeClaim"]
    assert claims[0].inputs["spec"]["accessModes"] == ["ReadWriteMany"]

``install_mocks`` registers through the SDK's own path; the synth tool plugs its faster path in
with ``monitor_type`` (``disaggctl.synth.fast_registration.install_fast_mocks``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks


@dataclass
class RecordedResource:
    """One registered resource as the engine would see it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    inputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    """Resource options the engine would act on, only those set (see :func:`recorded_options`)."""

    @property
    def parent_name(self) -> str:
        return self.parent.rsplit("::", 1)[-1] if self.parent else ""


RECORDED_OPTIONS = (
    "protect", "retainOnDelete", "deleteBeforeReplace", "customTimeouts", "ignoreChanges",
    "replaceOnChanges", "aliases", "deletedWith",
)
"""Resource options recorded per resource (``dependsOn`` is recorded beside them already)."""


def recorded_options(
    *,
    protect: bool | None = None,
    retain_on_delete: bool | None = None,
    delete_before_replace: bool | None = None,
    custom_timeouts: dict[str, str] | None = None,
    ignore_changes: list[str] | None = None,
    replace_on_changes: list[str] | None = None,
    aliases: list[Any] | None = None,
    deleted_with: str | None = None,
) -> dict[str, Any]:
    """The options a registration carries, in the engine's names, only those that change what the
    engine does (unset, false and empty are left out, so a resource without options records ``{}``).

    ``aliases`` are the SDK's ``alias_pb2.Alias`` messages (a URN, or a spec: name, type, parent).
    """
    options: dict[str, Any] = {}
    if protect:
        options["protect"] = True
    if retain_on_delete:
        options["retainOnDelete"] = True
    if delete_before_replace:
        options["deleteBeforeReplace"] = True
    timeouts = {k: v for k, v in (custom_timeouts or {}).items() if v}
    if timeouts:
        options["customTimeouts"] = dict(sorted(timeouts.items()))
    if ignore_changes:
        options["ignoreChanges"] = sorted(ignore_changes)
    if replace_on_changes:
        options["replaceOnChanges"] = sorted(replace_on_changes)
    rendered = [_alias_text(alias) for alias in aliases or []]
    if rendered:
        options["aliases"] = sorted(rendered)
    if deleted_with:
        options["deletedWith"] = deleted_with.rsplit("::", 1)[-1]
    return options


def _alias_text(alias: Any) -> str:
    """An alias as one line: its URN, or ``name=… type=… parent=…`` of its spec."""
    if isinstance(alias, str):
        return alias
    if alias.WhichOneof("alias") == "urn":
        return alias.urn
    spec = alias.spec
    parts = [f"{key}={value}" for key, value in (
        ("name", spec.name), ("type", spec.type), ("stack", spec.stack), ("project", spec.project),
        ("parent", spec.parentUrn.rsplit("::", 1)[-1] if spec.parentUrn else ""),
    ) if value]
    if spec.noParent:
        parts.append("noParent")
    return " ".join(parts)


def request_options(request: Any) -> dict[str, Any]:
    """:func:`recorded_options` of a ``RegisterResourceRequest`` (the SDK's own registration)."""
    timeouts = request.customTimeouts
    return recorded_options(
        protect=request.protect,
        retain_on_delete=request.retainOnDelete,
        delete_before_replace=request.deleteBeforeReplace,
        custom_timeouts={"create": timeouts.create, "update": timeouts.update, "delete": timeouts.delete},
        ignore_changes=list(request.ignoreChanges),
        replace_on_changes=list(request.replaceOnChanges),
        aliases=[*request.aliases, *request.aliasURNs],
        deleted_with=request.deletedWith,
    )


def _fake_id(typ: str, name: str) -> str:
    digest = hashlib.sha256(f"{typ}/{name}".encode()).hexdigest()[:12]
    return f"{name}-{digest}"


class OfflineMocks(Mocks):
    """Answers resource registrations and invokes with deterministic, plausible values."""

    region = "us-west-2"
    account = "123456789012"

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        state = dict(args.inputs)
        rid = args.resource_id or _fake_id(args.typ, args.name)
        module = args.typ.split(":")[0]
        if module == "aws":
            kind = args.typ.rsplit(":", 1)[-1].lower()
            state.setdefault("arn", f"arn:aws:mock:{self.region}:{self.account}:{kind}/{args.name}")
            state.setdefault("name", args.name)  # what autonaming would give, minus the random suffix
        if args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            state.setdefault("latestVersion", 1)
            state.setdefault("defaultVersion", 1)
        if args.typ == "aws:eks/nodeGroup:NodeGroup":
            state.setdefault("nodeGroupName", args.name)
        if args.typ == "aws:eks/cluster:Cluster":
            state.setdefault("endpoint", f"https://{rid}.gr7.{self.region}.eks.amazonaws.com")
            state.setdefault("certificateAuthority", {"data": "bW9jay1jYQ=="})
            state.setdefault(
                "identities",
                [{"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{rid}"}]}],
            )
            state.setdefault("name", args.inputs.get("name", args.name))
            state["vpcConfig"] = {"clusterSecurityGroupId": f"sg-{rid}", **(args.inputs.get("vpcConfig") or {})}
        if args.typ == "aws:fsx/lustreFileSystem:LustreFileSystem":
            state.setdefault("dnsName", f"{rid}.fsx.{self.region}.amazonaws.com")
            state.setdefault("mountName", "abcdefgh")
        if args.typ.startswith("kubernetes:") and "metadata" in state:
            metadata = dict(state.get("metadata") or {})
            metadata.setdefault("name", args.name)
            state["metadata"] = metadata
        if args.typ == "tls:index/privateKey:PrivateKey":
            # placeholders in the provider's output shapes, not keys: synth masks them anyway
            digest = hashlib.sha256(f"{args.typ}/{args.name}".encode()).hexdigest()
            algorithm = str(args.inputs.get("algorithm", "RSA")).lower()
            state.setdefault("privateKeyOpenssh", f"-----BEGIN OPENSSH PRIVATE KEY-----\nmock-{digest}\n-----END OPENSSH PRIVATE KEY-----\n")
            state.setdefault("publicKeyOpenssh", f"ssh-{algorithm} mock-{digest[:43]}\n")
            state.setdefault("privateKeyPem", f"-----BEGIN PRIVATE KEY-----\nmock-{digest}\n-----END PRIVATE KEY-----\n")
            state.setdefault("publicKeyPem", f"-----BEGIN PUBLIC KEY-----\nmock-{digest[:43]}\n-----END PUBLIC KEY-----\n")
            state.setdefault("publicKeyFingerprintSha256", f"SHA256:mock{digest[:39]}")
        if args.typ == "kubernetes:helm.sh/v3:Release":
            state.setdefault("status", {"name": args.inputs.get("name", args.name), "status": "deployed"})
        return rid, state

    def call(self, args: MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        # failures must be a list: the SDK's mock monitor iterates it (None raises TypeError)
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{s}" for s in "abcd"]
            return {"names": names, "zoneIds": [f"usw2-az{i}" for i in range(1, 5)], "id": self.region}, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account, "arn": f"arn:aws:iam::{self.account}:user/mock", "userId": "MOCK", "id": self.account}, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if token == "aws:ssm/getParameter:getParameter":
            name = args.args.get("name", "")
            digest = hashlib.sha256(name.encode()).hexdigest()[:17]
            return {"name": name, "value": f"ami-{digest}", "insecureValue": f"ami-{digest}", "id": name}, []
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps(_policy_document(args.args), sort_keys=True), "id": "policy"}, []
        return {}, []


def _policy_document(args: dict[str, Any]) -> dict[str, Any]:
    """Render getPolicyDocument arguments the way AWS would, for readable synth output."""
    statements = []
    for statement in args.get("statements", []):
        rendered: dict[str, Any] = {"Effect": statement.get("effect", "Allow")}
        if "actions" in statement:
            rendered["Action"] = statement["actions"]
        if "resources" in statement:
            rendered["Resource"] = statement["resources"]
        for principal in statement.get("principals", []):
            rendered.setdefault("Principal", {})[principal["type"]] = principal["identifiers"]
        for condition in statement.get("conditions", []):
            rendered.setdefault("Condition", {}).setdefault(condition["test"], {})[
                condition["variable"]
            ] = condition["values"]
        statements.append(rendered)
    return {"Version": "2012-10-17", "Statement": statements}


def whole_numbers(value: Any) -> Any:
    """Integral floats back to ints: inputs cross the mock monitor as protobuf Structs, whose only
    number type is double, so a ``replicas: 2`` would otherwise be recorded as ``2.0``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


class RecordingMonitor(MockMonitor):
    """A mock resource monitor that also keeps each resource's parent, provider and inputs."""

    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self.recorded: dict[str, RecordedResource] = {}
        # The inputs MockMonitor already deserialized, caught on their way to new_resource (same
        # thread as the RegisterResource call), so they are not deserialized a second time here.
        self._seen = threading.local()
        new_resource = mocks.new_resource

        def capture(args: MockResourceArgs) -> tuple[str | None, dict]:
            self._seen.inputs = args.inputs
            return new_resource(args)

        mocks.new_resource = capture  # type: ignore[method-assign]
        self.on_record: Callable[[RecordedResource], None] | None = None
        """Called with each resource as it is recorded (the synth streams them to its writer)."""
        self.warnings: list[str] = []
        """What the program logged with ``pulumi.log.warn`` (in order)."""

    def _record(self, resource: RecordedResource) -> None:
        self.recorded[resource.urn] = resource
        if self.on_record is not None:
            self.on_record(resource)

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        self._seen.inputs = None
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            from pulumi.runtime import rpc

            inputs = self._seen.inputs
            if inputs is None:
                inputs = rpc.deserialize_properties(request.object)
            self._record(RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                provider=request.provider,
                inputs=whole_numbers(inputs),
                dependencies=sorted(request.dependencies),
                options=request_options(request),
            ))
        return response


def install_mocks(
    project: str, stack: str, mocks: Mocks | None = None, *, monitor_type: type[RecordingMonitor] | None = None
) -> RecordingMonitor:
    """Point the Pulumi runtime at a fresh recording monitor (and a fresh root stack).

    Resources register through the SDK's own path. ``monitor_type`` (a :class:`RecordingMonitor`
    subclass) is how the synth tool plugs in its faster registration
    (``disaggctl.synth.fast_registration.install_fast_mocks``)."""
    from pulumi.runtime import settings

    monitor = (monitor_type or RecordingMonitor)(mocks or OfflineMocks())
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor,
        logger=_warning_logger(monitor.warnings),
    )
    # set_mocks keeps the RPC manager, and with it the first error of a program that failed before
    # in this process: the next program would stop with that error.
    settings._get_rpc_manager().clear()
    return monitor


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


def _warning_logger(sink: list[str]) -> logging.Logger:
    """A logger (not the root one) that keeps the program's warnings in ``sink``."""
    logger = logging.getLogger(f"disaggctl.synth.program.{id(sink)}")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    logger.handlers = [_ListHandler(sink)]
    return logger
