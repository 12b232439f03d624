"""Stack configuration → :class:`DisaggregatedDeploymentArgs`: the one place config meets the engine runtime.

Pure, like ``components.serving.llmapi.args``: given the stack's configuration, one ``runtime: engine``
deployment, the cluster and where its engines were built, it returns the component's args, so
``__main__.py`` wires both runtimes the same way (an args function, then the component).
"""

from __future__ import annotations

from typing import Any

from components.cluster.contract import ClusterHandle
from components.config.capacity import deployment_drain_seconds
from components.config.deployment import ModelDeploymentConfig
from components.serving.triton.deployment import DisaggregatedDeploymentArgs


def engine_deployment_args(
    config: Any,
    deployment: ModelDeploymentConfig,
    *,
    engine_dirs: dict[str, Any],
    namespace: Any,
    cluster: ClusterHandle,
    claim_name: Any,
    mount_path: str,
) -> DisaggregatedDeploymentArgs:
    """Args of ``deployment`` (``config``: the StackConfig; ``engine_dirs``: engine key -> its built
    directory on the shared store)."""
    groups = deployment.worker_groups()
    platform = config.platform
    return DisaggregatedDeploymentArgs(
        deployment=deployment,
        engines={role: config.engines[g.engine] for role, g in groups.items() if g.engine},
        engine_dirs={role: engine_dirs[g.engine] for role, g in groups.items() if g.engine},
        images=config.images,
        namespace=namespace,
        cluster=cluster,
        claim_name=claim_name,
        mount_path=mount_path,
        custom_metrics=platform.metrics_adapter.enabled,
        keda_prometheus_url=platform.keda_prometheus_url() if platform.keda.enabled else None,
        drain_seconds=deployment_drain_seconds(config, deployment),
        security=platform.security,
        monitoring_namespaces=(platform.monitoring.namespace,),
    )
