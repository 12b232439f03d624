"""ExistingCluster: a Kubernetes cluster that already exists (on-prem InfiniBand/RoCE, or any cloud).

What the cluster must provide itself (this stack installs it only on EKS): nodes for the worker
groups at their maximum (its own node autoscaler, or enough nodes: ``gpuPools[].maxNodes`` lets
the capacity check compare), and an implementation of Services of type LoadBalancer for the
frontends (cloud controller, MetalLB: ``loadBalancerServices``). KEDA, LWS and the GPU/Network
Operators are installed by the platform layer as on EKS.

Nothing is created but the Kubernetes provider: the cluster's kubeconfig (text, or a path read
when the program runs), its GPU pools as the config describes them (node selectors, taints,
``rdma/<name>`` on InfiniBand/RoCE) and an existing ReadWriteMany StorageClass become a
:class:`~components.cluster.contract.ClusterHandle`, so the layers above cannot tell it from an
EKS cluster.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.cluster.contract import ClusterHandle, NodePool, SharedStorage
from components.config.base import OFFLINE_SECRET
from components.config.cluster import ExistingClusterConfig

TYPE_TOKEN = "disagg:cluster:ExistingCluster"
KUBECONFIG_KEY = "disagg:cluster.existing.kubeconfig"
CONTEXT_KEY = "disagg:cluster.existing.context"


def is_kubeconfig_text(value: str) -> bool:
    """Whether ``value`` is kubeconfig content (YAML or JSON) rather than a path to it."""
    stripped = value.strip()
    return "\n" in stripped or stripped.startswith("{") or stripped.startswith("apiVersion:")


def read_kubeconfig(value: str) -> str:
    """The kubeconfig text: ``value`` itself, or the file it names (``~`` expanded).

    A missing or unreadable file is an error naming the config key, read at plan time so that
    ``pulumi preview`` fails before anything is deployed. An offline synth cannot decrypt a secret
    kubeconfig: ``OFFLINE_SECRET`` passes through unread (the mocked provider never connects).
    """
    if is_kubeconfig_text(value) or value == OFFLINE_SECRET:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(
            f"{KUBECONFIG_KEY}: '{value}' is neither kubeconfig text nor an existing file: "
            "fix the path, or set the key to the kubeconfig content itself (as a secret)"
        )
    try:
        return path.read_text()
    except OSError as err:
        raise ValueError(f"{KUBECONFIG_KEY}: cannot read '{value}' ({err.strerror}): fix its permissions") from None


def check_context(kubeconfig: str, context: str | None) -> None:
    """Raise if ``context`` is set but not among the kubeconfig's contexts (unparseable text: no check)."""
    if context is None:
        return
    try:
        document = yaml.safe_load(kubeconfig)
    except yaml.YAMLError:
        return
    if not isinstance(document, dict):
        return
    names = [c.get("name") for c in document.get("contexts") or [] if isinstance(c, dict)]
    if context not in names:
        raise ValueError(
            f"{CONTEXT_KEY}: context '{context}' is not in the kubeconfig (contexts: "
            f"{', '.join(str(n) for n in names) or 'none'}): pick one of them or remove the key"
        )


def system_pool(args: ExistingClusterConfig) -> NodePool:
    """Where CPU pods go: ``systemNodeSelector`` (empty: anywhere)."""
    return NodePool(
        name="system", gpus_per_node=0, gpu_memory_gib=0, node_selector=dict(args.system_node_selector)
    )


class ExistingCluster(pulumi.ComponentResource):
    """A Kubernetes provider and handle for a cluster this stack does not create."""

    handle: ClusterHandle
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: ExistingClusterConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        text = read_kubeconfig(args.kubeconfig)
        check_context(text, args.context)
        self.kubeconfig = pulumi.Output.secret(text)
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            context=args.context,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.handle = ClusterHandle(
            name=name,
            provider=provider,
            kubeconfig=self.kubeconfig,
            fabric=args.fabric,
            system_pool=system_pool(args),
            gpu_pools=args.node_pools(),
            storage=SharedStorage(
                storage_class=args.storage_class, size_gib=args.storage_size_gib, kind="existing"
            ),
            platform="existing",
        )
        self.register_outputs({"kubeconfig": self.kubeconfig, "fabric": args.fabric})
