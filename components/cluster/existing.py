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

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle, SharedStorage
from components.config.cluster import ExistingClusterConfig
from components.config.kubeconfig import check_context, read_kubeconfig
from components.config.scheduling import NodePool

TYPE_TOKEN = "disagg:cluster:ExistingCluster"


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
