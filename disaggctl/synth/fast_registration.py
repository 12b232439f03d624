"""A faster resource registration for the recording mock monitor (synth and component tests).

Under ``pulumi.runtime.set_mocks`` the SDK registers every resource the way it would talk to a
real engine: it captures a Python stack trace, awaits one coroutine per nested input value while
serializing the inputs into a protobuf ``Struct``, builds a ``RegisterResourceRequest``, hands it
to a worker thread where the mock monitor deserializes the ``Struct`` again, calls the mocks,
serializes their answer into another ``Struct``, and back on the event loop deserializes that once
more to resolve the resource's outputs. For a stack of a thousand resources that is most of the
synth's time, and none of it is needed to learn what the program declares.

``register_resource`` below takes its place while a :class:`~disaggctl.testing.mocks.RecordingMonitor`
is installed (any other monitor, remote components and parameterized packages get the SDK's own
function):

* parent, provider and ``depends_on`` are still resolved by the SDK's ``prepare_resource`` (so
  URNs, provider references and dependency expansion are the SDK's);
* inputs made of plain values (dicts, lists, strings, numbers, booleans, ``None``, the provider
  packages' ``@input_type`` args classes) and of Outputs resolved to known, non-secret values are
  serialized synchronously, with the same type-directed key translation as
  ``rpc.serialize_property``, the Outputs' resources added to the dependencies, and the same
  value changes as the protobuf round trip (numbers become floats, tuples lists, ``None`` members
  of mappings vanish); anything else (secrets, unknowns, resource references, assets) takes the
  SDK's own serialization unchanged;
* the mocks are called on the event loop's thread (they are pure functions); each output
  property is one future settled with the SDK's ``_OutputData``, its value translated as
  ``translate_output_properties`` does (per-type plans cached; the SDK's function where a union
  member is picked by value or a type does not match).

Also replaced, with the same answers: ``contains_unknowns`` (no generator per node; values this
module settled are not walked again), ``declare_dependency`` (no reachability walk while nothing
depends on the new resource) and ``_add_dependency`` (registered resources' URNs read without an
await each). Resource options that need a real engine (transforms, state migrations, hooks) are
refused with a message: no stack here uses them. ``tests/disaggctl/synth/test_fast_paths.py`` proves the equivalence by
recording the shipped stacks both ways and comparing every resource, output and warning, and by
reading typed output properties back both ways.

Pulumi SDK internals used (pinned ``pulumi==3.272.0`` in requirements.txt): ``runtime.resource``
(``resource_output``, ``prepare_resource``, ``_get_rpc_manager``, ``_create_custom_timeouts``,
``_translate_ignore_changes``, ``_translate_replace_on_changes``), ``runtime.rpc``
(``serialize_properties``, ``deserialize_properties``, ``translate_output_properties``,
``resolve_properties``, ``resolve_outputs_due_to_exception``, ``_expand_dependencies``,
``_add_dependency``, ``declare_dependency``, ``contains_unknowns``, ``_Path``,
``_get_list_element_type``), ``output._OutputData`` and ``_types``. So it runs only under the
SDK release it was verified against (:data:`VERIFIED_SDK_VERSION`, read with ``importlib.metadata``):
under any other the synth takes the SDK's own path and says so in one line. An SDK upgrade reruns
``tests/disaggctl/synth/test_fast_paths.py``, then moves :data:`VERIFIED_SDK_VERSION`.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import os
import typing
from collections import abc
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from pulumi import _types
from pulumi.output import Unknown
from pulumi.runtime import known_types, rpc, settings
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime.mocks import MockMonitor, MockResourceArgs, Mocks

from disaggctl.testing.mocks import (
    RecordedResource,
    RecordingMonitor,
    install_mocks,
    recorded_options,
    whole_numbers,
)

if TYPE_CHECKING:
    from pulumi.resource import Resource, ResourceOptions

VERIFIED_SDK_VERSION = "3.272.0"
"""The pulumi SDK release the equivalence tests passed under (``requirements.txt`` pins it)."""


def sdk_version() -> str:
    """The installed pulumi SDK release."""
    return importlib.metadata.version("pulumi")


def unverified_sdk_note(version: str) -> str | None:
    """None under the verified SDK release; else the one line saying the SDK's path is taken."""
    if version == VERIFIED_SDK_VERSION:
        return None
    return (
        f"pulumi SDK {version} is not {VERIFIED_SDK_VERSION}, the release fast registration was verified "
        "against: resources register through the SDK's own (slower) path"
    )

_SDK_REGISTER = sdk_resource.register_resource


class _NotPlainError(Exception):
    """An input the synchronous serializer does not handle: the SDK's serialization takes over."""


class _PendingError(Exception):
    """An ``Output`` in the inputs has not resolved yet: await it, then serialize again."""

    def __init__(self, output: Any) -> None:
        super().__init__("pending output")
        self.output = output


def _wire_scalar(value: Any) -> Any:
    """What a scalar becomes after a protobuf ``Struct`` round trip (numbers are doubles there)."""
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int or kind is float:
        return float(value)
    raise _NotPlainError  # enums and other subclasses: the SDK's serialization decides


def _per_type(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``function`` of a type annotation, computed once per annotation (an unhashable annotation
    is computed every time)."""
    table: dict[Any, Any] = {}

    def cached(typ: Any) -> Any:
        try:
            return table[typ]
        except KeyError:
            result = table[typ] = function(typ)
            return result
        except TypeError:
            return function(typ)

    return cached


_unwrap = _per_type(_types.unwrap_type)
"""``Optional``/``Input`` peeled off, as ``serialize_property`` does."""
_element = _per_type(rpc._get_list_element_type)
_unwrap_optional = _per_type(_types.unwrap_optional_type)
"""``Optional`` peeled off, as ``translate_output_properties`` does."""


def _plain(value: Any, typ: Any, translate: Callable[[str], str] | None, deps: list | None = None) -> Any:
    """``rpc.serialize_property`` for values that need no awaiting, then the ``Struct`` round trip.

    An ``Output`` is taken when ``deps`` collects dependencies and the Output has resolved to a
    known, non-secret value (its resources join ``deps``, as the SDK adds them to the property's
    dependencies); an unresolved one raises :class:`_PendingError`."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is float or kind is int:
        return float(value) if kind is int or kind is float else value
    if typ:
        typ = _unwrap(typ)
        if typ is Any:
            typ = None
    if kind is list:
        item_type = _element(typ)
        return [_plain(item, item_type, translate, deps) for item in value]
    if kind is dict:
        return _plain_mapping(value, typ, translate, deps)
    if isinstance(value, (str, bool, int, float)):
        return _wire_scalar(value)
    if isinstance(value, abc.Sequence) and not isinstance(value, (range, memoryview, bytes, bytearray)):
        item_type = _element(typ)
        return [_plain(item, item_type, translate, deps) for item in value]
    if known_types.is_unknown(value) or known_types.is_resource(value) or known_types.is_asset(value):
        raise _NotPlainError
    if known_types.is_output(value) and deps is not None:
        future = value._data
        if not future.done():
            raise _PendingError(value)
        if future.cancelled() or future.exception() is not None:
            raise _NotPlainError  # the SDK's serialization raises it, with its message
        data = future.result()
        if not data.is_known or data.is_secret or contains_unknowns(data.value):
            raise _NotPlainError  # unknowns and secrets: the SDK's wire forms
        deps.extend(data.resources)
        return _plain(data.value, typ, translate, deps)
    if known_types.is_output(value) or known_types.is_archive(value):
        raise _NotPlainError
    cls = type(value)
    if _types.is_input_type(cls):
        fields = _types.input_type_to_dict(value)
        field_types = _types.input_type_types(cls)
        members = ((k, _plain(v, field_types.get(k), translate, deps)) for k, v in fields.items())
        return {k: v for k, v in members if v is not None}
    if isinstance(value, abc.Mapping):
        return _plain_mapping(value, typ, translate, deps)
    raise _NotPlainError


def _plain_mapping(value: Any, typ: Any, translate: Callable[[str], str] | None, deps: list | None) -> dict:
    names: dict[str, str] | None = None
    types: Any = None
    element: Any = None
    if typ is not None:
        if _is_union(typ):
            case = _types.reduce_discriminated_union(typ, value, _types._py_name_for)
            if case is not None:
                typ = case
        names, types, element = _mapping_plan(typ)
    result = {}
    for k in value:
        if names is not None:
            name = names.get(k) or k
            item_type = types.get(name)
        else:
            name = translate(k) if typ is None and translate is not None else k
            item_type = element
        item = _plain(value[k], item_type, translate, deps)
        if item is not None:  # deserialize_properties drops None members of every mapping
            result[name] = item
    return result


@_per_type
def _is_union(typ: Any) -> bool:
    """Whether ``reduce_discriminated_union`` can pick a member of ``typ``."""
    return _types._wire_union_members(typ) is not None


@_per_type
def _mapping_plan(typ: Any) -> tuple[dict[str, str] | None, Any, Any]:
    """How ``serialize_property`` treats a mapping of type ``typ``: an input type translates keys
    by its names and types its members; ``dict[str, X]`` types every member X and translates
    nothing; any other type translates nothing and types nothing."""
    if _types.is_input_type(typ):
        return (_types.input_type_py_to_pulumi_names(typ), _types.input_type_types(typ), None)
    element = None
    origin = typing.get_origin(typ)
    if typ is dict or origin in (dict, abc.Mapping):
        args = typing.get_args(typ)
        if len(args) == 2 and args[0] is str:
            element = args[1]
    return (None, None, element)


def _plain_props(res: Resource, props: Any, typ: type | None, deps: list | None = None) -> dict[str, Any] | None:
    """The inputs as the mock monitor would see them, or None when the SDK must serialize them
    (:class:`_PendingError` when ``deps`` is given and an Output there is still pending). The
    props are a mapping of the resource's args type ``typ`` (or untyped, keys translated by the
    resource): ``serialize_properties`` treats them as ``serialize_property`` treats such a mapping."""
    translate: Callable[[str], str] | None = res.translate_input_property if typ is None else None
    try:
        return _plain_mapping(props, typ, translate, deps)
    except _NotPlainError:
        return None


async def _resolved_plain_props(res: Resource, props: Any, typ: type | None, deps: list) -> dict[str, Any] | None:
    """:func:`_plain_props` once every Output in ``props`` has resolved (awaited one by one)."""
    while True:
        del deps[:]
        try:
            return _plain_props(res, props, typ, deps)
        except _PendingError as pending:
            try:
                await pending.output._data
            except Exception:  # noqa: BLE001 - the SDK's serialization reports it
                return None


_HOOK_KINDS = ("before_create", "after_create", "before_update", "after_update", "before_delete", "after_delete", "on_error")


def _check_options(ty: str, name: str, opts: ResourceOptions) -> None:
    hooks = getattr(opts, "hooks", None)
    unsupported = [
        option
        for option, value in (
            ("transforms", opts.transforms),
            ("state_migrations", getattr(opts, "state_migrations", None)),
            ("hooks", hooks is not None and any(getattr(hooks, kind, None) for kind in _HOOK_KINDS)),
        )
        if value
    ]
    if unsupported:
        raise ValueError(
            f"{ty} '{name}': resource option(s) {', '.join(unsupported)} need a real Pulumi engine; "
            "the offline synth cannot run them: drop them, or preview with `pulumi preview`"
        )


def _recorded_options(res: Resource, typ: type | None, opts: ResourceOptions, prepared: Any) -> dict[str, Any]:
    """The options ``register_resource`` would send in its request, as the monitor records them
    from one (``mocks.request_options``): the same SDK translations of property names."""

    timeouts: dict[str, str] | None = None
    if opts.custom_timeouts is not None:
        request = sdk_resource._create_custom_timeouts(opts.custom_timeouts)
        timeouts = {"create": request.create, "update": request.update, "delete": request.delete}
    aliases = prepared.aliases if prepared.supports_alias_specs else [a.urn for a in prepared.aliases]
    return recorded_options(
        protect=opts.protect,
        retain_on_delete=opts.retain_on_delete,
        delete_before_replace=opts.delete_before_replace,
        custom_timeouts=timeouts,
        ignore_changes=sdk_resource._translate_ignore_changes(res, typ, opts.ignore_changes),
        replace_on_changes=sdk_resource._translate_replace_on_changes(res, typ, opts.replace_on_changes),
        aliases=list(aliases),
        deleted_with=prepared.deleted_with_urn,
    )


def register_resource(
    res: Resource,
    ty: str,
    name: str,
    custom: bool,
    remote: bool,
    new_dependency: Callable[[str], Resource],
    props: Any,
    opts: ResourceOptions | None,
    typ: type | None = None,
    package_ref: Any = None,
) -> None:
    """Drop-in for ``pulumi.runtime.resource.register_resource`` (see the module docstring)."""
    monitor = settings.get_monitor()
    if not isinstance(monitor, FastRecordingMonitor) or remote or package_ref is not None:
        _SDK_REGISTER(res, ty, name, custom, remote, new_dependency, props, opts, typ, package_ref)
        return

    resolve_urn, res.__dict__["urn"] = sdk_resource.resource_output(res)
    resolve_id = None
    if custom:
        resolve_id, res.__dict__["id"] = sdk_resource.resource_output(res)
    resolvers = _transfer_properties(res, props, custom)

    async def do_register() -> None:
        from pulumi.resource import ResourceOptions

        options = opts if opts is not None else ResourceOptions()
        try:
            _check_options(ty, name, options)
            deps: list = []
            wire = await _resolved_plain_props(res, props, typ, deps)
            prepared = await sdk_resource.prepare_resource(
                res, ty, custom, remote, {} if wire is not None else props, options, typ
            )
            dependencies = set(prepared.dependencies)
            if wire is not None and deps:
                dependencies |= set(await rpc._expand_dependencies(deps, res))
            inputs = wire if wire is not None else rpc.deserialize_properties(prepared.serialized_props)
            urn, rid, state = monitor.register_prepared(
                ty, name, custom, prepared, inputs, options.import_ or "", dependencies,
                _recorded_options(res, typ, options, prepared),
            )
        except Exception as exn:
            rpc.resolve_outputs_due_to_exception(resolvers, exn)
            resolve_urn(None, True, False, exn)
            if resolve_id is not None:
                resolve_id(None, True, False, exn)
            raise
        try:
            resolve_urn(urn, True, False, None)
            if resolve_id is not None:
                resolve_id(rid, bool(rid), False, None)
            settled = wire is not None and getattr(state, "plain", False)
            _resolve_outputs(res, typ, inputs, state, resolvers, custom, settled)
        except Exception as exn:
            rpc.resolve_outputs_due_to_exception(resolvers, exn)
            raise

    asyncio.ensure_future(sdk_resource._get_rpc_manager().do_rpc("register resource", do_register)())


def _transfer_properties(res: Resource, props: Any, custom: bool) -> dict[str, Any]:
    """``rpc.transfer_properties``: an Output on ``res`` for each input property, and the resolver
    that settles it. The SDK builds each Output from four futures joined by a task; here each is
    one future that receives the same ``_OutputData`` (resources: the property's dependencies and
    ``res``) or the registration's exception."""
    from pulumi.output import Output, _OutputData

    loop = asyncio.get_event_loop()
    resolvers: dict[str, Any] = {}
    for name in props:
        if name == "urn" or (name == "id" and custom):
            continue  # set by the registration itself
        data: asyncio.Future = loop.create_future()

        def resolve(
            value: Any, is_known: bool, is_secret: bool, deps: Any, failed: Exception | None,
            _data: asyncio.Future = data,
        ) -> None:
            if failed is not None:
                _data.set_exception(failed)
                return
            resources = set(deps) if deps else set()
            resources.add(res)
            _data.set_result(_OutputData(resources=resources, value=value, is_known=is_known, is_secret=is_secret))

        resolvers[name] = resolve
        res.__dict__[name] = Output._from_data(data)
    return resolvers


def _resolve_outputs(
    res: Resource,
    typ: type | None,
    inputs: dict[str, Any],
    state: dict[str, Any],
    resolvers: dict[str, Any],
    custom: bool,
    settled: bool = False,
) -> None:
    """``rpc.resolve_outputs`` for outputs already deserialized: the mocks' state, then any input
    the state lacks (as the SDK does outside a preview)."""
    cls = type(res)
    types = _types.resource_types(cls)
    transform = typ is not None
    if transform:
        py_names = _types.resource_pulumi_to_py_names(cls)
        translate: Callable[[str], str] = lambda p: py_names.get(p) or p  # noqa: E731
        passed: Callable[[str], str] = lambda p: p  # noqa: E731
    else:
        translate = passed = res.translate_output_property
    everything: dict[str, Any] = {}
    for key, value in state.items():
        key_py = translate(key)
        if settled:
            try:
                everything[key_py] = _translate_output(value, types.get(key), transform, passed)
                continue
            except _NotPlainError:
                pass  # the SDK's function, for its exact result or message
        everything[key_py] = rpc.translate_output_properties(
            value, passed, types.get(key), transform, path=rpc._Path(key_py, resource=f"{res._name}")
        )
    for key, value in inputs.items():
        key_py = translate(key)
        if key_py not in everything:
            everything[key_py] = rpc.translate_output_properties(
                value, passed, types.get(key), transform,
                path=rpc._Path(key_py, resource=f"{res._name}"), return_none_on_dict_type_mismatch=True,
            )
    if settled:  # made from the synchronous serializer's output only: no Unknown anywhere
        for value in everything.values():
            if value is not None and type(value) not in (str, int, float, bool):
                _SETTLED[id(value)] = value
    rpc.resolve_properties(resolvers, everything, {}, custom, False)


@_per_type
def _output_plan(typ: Any) -> tuple[str, Any]:
    """How ``rpc.translate_output_properties`` treats a dict of type ``typ``."""
    if _types.is_discriminated_union(typ):
        return ("union", None)
    if _types.is_output_type(typ):
        return ("output", _types.output_type_types(typ))
    origin = typing.get_origin(typ)
    if typ is dict or origin in (dict, abc.Mapping):
        args = typing.get_args(typ)
        if len(args) == 2 and args[0] is str:
            return ("mapping", args[1])
    return ("other", None)


def _translate_output(value: Any, typ: Any, transform: bool, passed: Callable[[str], str]) -> Any:
    """``rpc.translate_output_properties`` for a value made by the synchronous serializer (exact
    dicts, lists and scalars; no secrets), with the type plans cached. Raises
    :class:`_NotPlainError` where the SDK's function picks a union member by value or fails: the
    caller then asks the SDK's function."""
    if typ:
        typ = _unwrap_optional(typ)
        if typ is Any:
            typ = None
    kind = type(value)
    if kind is dict:
        if rpc._special_sig_key in value:
            raise _NotPlainError  # a secret, asset or resource reference: the SDK's handling
        if typ is None:
            return {passed(k): _translate_output(v, None, transform, passed) for k, v in value.items()}
        plan, detail = _output_plan(typ)
        if plan == "output":
            members = {k: _translate_output(v, detail.get(k), transform, passed) for k, v in value.items()}
            return _types.output_type_from_dict(typ, members)
        if plan == "mapping":
            if transform:
                return {k: _translate_output(v, detail, transform, passed) for k, v in value.items()}
            return {passed(k): _translate_output(v, detail, transform, passed) for k, v in value.items()}
        raise _NotPlainError
    if kind is list:
        try:
            element = _element(typ)
        except AssertionError:
            raise _NotPlainError from None
        return [_translate_output(v, element, transform, passed) for v in value]
    if kind is dict or kind is list or not (value is None or kind in (str, float, bool, int)):
        raise _NotPlainError
    if typ and isinstance(value, (int, float, str)) and inspect.isclass(typ) and issubclass(typ, Enum):
        return typ(value)
    if kind is float and typ is int:
        return int(value)
    return value


class WireState(dict):
    """The mocks' answer as the SDK would read it back from a ``Struct`` (see :func:`wire_state`)."""

    plain = True
    """Every value went through the synchronous serializer (so none holds an ``Unknown``)."""


def wire_state(state: dict[str, Any]) -> WireState:
    """The mocks' answer as the SDK would read it back from a ``Struct``: ``None`` members
    dropped, numbers as floats (values the synchronous serializer cannot take keep their form)."""
    result = WireState()
    for key, value in state.items():
        if value is None:
            continue
        try:
            result[key] = _plain(value, None, None)
        except _NotPlainError:
            result[key] = value
            result.plain = False
    return result


_SDK_CONTAINS_UNKNOWNS = rpc.contains_unknowns


_SETTLED: dict[int, Any] = {}
"""Output values this module resolved (by id, held so the id stays theirs): made from serialized
inputs and mock state, which hold no ``Unknown``, so :func:`contains_unknowns` need not walk them
again each time an Output is made from them. Cleared when mocks are installed."""


def contains_unknowns(value: Any) -> bool:
    """``rpc.contains_unknowns`` without a generator per node: the SDK asks it of every output
    value it resolves, and walks whole Kubernetes objects to answer."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return False
    if _SETTLED.get(id(value)) is value:
        return False
    pending = [value]
    seen: set[int] = set()
    settled = _SETTLED
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or kind is int or kind is float or kind is bool or item is None:
            continue
        if settled.get(id(item)) is item:
            continue
        if isinstance(item, Unknown):
            return True
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            pending.extend(dict.values(item))  # not item.values(): output types have a "values" field
        elif isinstance(item, list):
            pending.extend(item)
    return False


_SDK_DECLARE_DEPENDENCY = rpc.declare_dependency
_DEPENDED_ON = "_disagg_depended_on"


def declare_dependency(from_resource: Resource, to_resource: Resource) -> bool:
    """``resource_cycle_breaker.declare_dependency`` with a shortcut: a dependency cannot close a
    cycle when nothing depends on ``from_resource`` yet, which is the case for nearly every
    resource being registered. The SDK's check walks every transitive dependency of
    ``to_resource`` for each edge (``depends_on`` a component expands to each of its children),
    which grows with the square of the stack."""
    from pulumi.runtime import resource_cycle_breaker

    if from_resource is not to_resource and not getattr(from_resource, _DEPENDED_ON, False):
        resource_cycle_breaker._add_dep(from_resource, to_resource)
        setattr(to_resource, _DEPENDED_ON, True)
        return True
    added = bool(_SDK_DECLARE_DEPENDENCY(from_resource, to_resource))
    if added:
        setattr(to_resource, _DEPENDED_ON, True)
    return added


_SDK_ADD_DEPENDENCY = rpc._add_dependency


async def _add_dependency(deps: dict[str, Resource], res: Resource, from_resource: Resource | None) -> None:
    """``rpc._add_dependency`` (a component stands for its custom descendants; each edge goes
    through the cycle check), taking the URN of a resource that is already registered from its
    resolved Output instead of awaiting it: ``depends_on`` a component of a hundred children
    would otherwise be a hundred awaits for every resource that names it."""
    from pulumi import ComponentResource
    from pulumi.resource import Resource as SdkResource

    queue = [res]
    waiting: list[Resource] = []
    index = 0
    while index < len(queue):
        item = queue[index]
        index += 1
        if not isinstance(item, SdkResource):
            raise TypeError(f"'depends_on' was passed a value {item} that was not a Resource.")
        if from_resource is not None and not rpc.declare_dependency(from_resource, item):
            if os.getenv(rpc.ERROR_ON_DEPENDENCY_CYCLES_VAR, "true").lower() != "true":
                continue
            raise RuntimeError(
                "We have detected a circular dependency involving a resource of type"
                f" {item._type} named {item._name}.\n"
                "Please review any `depends_on`, `parent` or other dependency relationships between your "
                "resources to ensure no cycles have been introduced in your program."
            )
        if isinstance(item, ComponentResource) and not item._remote:
            queue.extend(item._childResources.copy())
        else:
            waiting.append(item)
    for item in waiting:
        future = item.urn._data
        if future.done() and not future.cancelled() and future.exception() is None:
            data = future.result()
            urn = None if contains_unknowns(data.value) else data.value
        else:
            urn = await item.urn.future()
        if urn:
            deps[urn] = item


def install(enabled: bool = True) -> None:
    """Route ``register_resource``, ``contains_unknowns``, ``declare_dependency`` and
    ``_add_dependency`` through the functions above (each answers as the SDK's does); ``enabled=False`` puts the
    SDK's own functions back (the equivalence tests record a program both ways). Idempotent."""
    import pulumi.resource as sdk_resource_module

    _SETTLED.clear()
    register = register_resource if enabled else _SDK_REGISTER
    sdk_resource.register_resource = register  # type: ignore[assignment]
    sdk_resource_module.register_resource = register  # type: ignore[attr-defined]
    rpc.contains_unknowns = contains_unknowns if enabled else _SDK_CONTAINS_UNKNOWNS  # type: ignore[assignment]
    rpc.declare_dependency = declare_dependency if enabled else _SDK_DECLARE_DEPENDENCY  # type: ignore[assignment]
    rpc._add_dependency = _add_dependency if enabled else _SDK_ADD_DEPENDENCY  # type: ignore[assignment]


class FastRecordingMonitor(RecordingMonitor):
    """The recording monitor with the entry point of the fast path (:func:`register_resource`
    registers through it; any other monitor gets the SDK's path)."""

    def register_prepared(
        self,
        typ: str,
        name: str,
        custom: bool,
        prepared: Any,
        inputs: dict[str, Any],
        import_id: str,
        dependencies: set[str],
        options: dict[str, Any] | None = None,
    ) -> tuple[str, str, dict[str, Any]]:
        """What :meth:`RegisterResource` does, for a registration the fast path prepared
        (``disaggctl.synth.fast_registration``): the URN, the mocks' id and their state as the SDK would
        read it back (``wire_state``)."""
        parent = prepared.parent_urn or ""
        urn = self.make_urn(parent, typ, name)
        if typ == "pulumi:pulumi:Stack":
            return urn, "", {}
        provider = prepared.provider_ref or ""
        rid, state = self.mocks.new_resource(
            MockResourceArgs(typ=typ, name=name, inputs=inputs, provider=provider, resource_id=import_id, custom=custom)
        )
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, rid, state)  # type: ignore[arg-type]  # as MockMonitor stores it
        self._record(RecordedResource(
            urn=urn,
            type=typ,
            name=name,
            parent=parent,
            custom=bool(custom),
            provider=provider,
            inputs=whole_numbers(inputs),
            dependencies=sorted(dependencies),
            options=options or {},
        ))
        return urn, rid or "", wire_state(state)


def install_fast_mocks(
    project: str, stack: str, mocks: Mocks | None = None, *, fast_registration: bool = True
) -> RecordingMonitor:
    """:func:`~disaggctl.testing.mocks.install_mocks`, registering resources through this module
    (``fast_registration=False``, or an SDK release other than :data:`VERIFIED_SDK_VERSION`: the
    SDK's own path; the latter adds its note to the monitor's warnings, which the synth prints)."""
    note = unverified_sdk_note(sdk_version()) if fast_registration else None
    active = fast_registration and note is None
    install(active)
    monitor = install_mocks(project, stack, mocks, monitor_type=FastRecordingMonitor if active else None)
    if note is not None:
        monitor.warnings.append(note)
    return monitor
