"""The Pulumi plumbing every serving component shares: explicit provider, child options, Input checks."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s


def check_input_str(value: Any, what: str) -> Any:
    """``value`` if it can be a ``pulumi.Input[str]`` (str, Output or awaitable), else ValueError."""
    if isinstance(value, (str, pulumi.Output)) or inspect.isawaitable(value):
        return value
    raise ValueError(f"{what} is {type(value).__name__}, not a str or pulumi.Output[str]: pass the path")


def k8s_provider(opts: pulumi.ResourceOptions | None, component: str) -> k8s.Provider:
    """The Kubernetes provider a serving component was given; never the ambient one."""
    provider = opts.provider if opts is not None else None
    if not isinstance(provider, k8s.Provider):
        raise ValueError(
            f"{component}: no Kubernetes provider given: pass "
            "opts=pulumi.ResourceOptions(provider=cluster.provider) (components never use the "
            "ambient provider)"
        )
    return provider


def child_options(
    parent: pulumi.Resource,
    provider: k8s.Provider,
    opts: pulumi.ResourceOptions | None,
    *,
    depends_on: Sequence[pulumi.Resource] = (),
    **extra,
) -> pulumi.ResourceOptions:
    """Options of a child: parent, the explicit provider, and the component's ``depends_on``.

    Children do not inherit ``depends_on`` from their parent in Pulumi, so a component created
    after e.g. the platform operators passes that ordering on to every object it creates.
    """
    inherited = opts.depends_on if opts is not None else None
    if inherited is None:
        inherited = []
    elif not isinstance(inherited, (list, tuple)):
        inherited = [cast("pulumi.Input[pulumi.Resource]", inherited)]
    deps = [*inherited, *depends_on]
    return pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=deps or None, **extra)



def await_timeouts(seconds: int) -> pulumi.CustomTimeouts:
    """``customTimeouts`` for a resource pulumi-kubernetes awaits on create and update."""
    return pulumi.CustomTimeouts(create=f"{seconds}s", update=f"{seconds}s")
