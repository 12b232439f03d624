"""Pulumi program: one stack of disaggregated LLM inference.

Reads the stack configuration once (``Pulumi.<stack>.yaml``, validated before any resource is
declared), then composes: GPU cluster → shared model store → platform operators → model
preparation (runtime llmapi) and engine builds (runtime engine) → one disaggregated deployment
per model, of its runtime.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.cluster.aws import AwsGpuCluster
from components.cluster.existing import ExistingCluster
from components.config import StackConfig, load_from_pulumi
from components.config.validation import stack_warnings
from components.models.await_budget import engine_build_deadline, model_preparation_deadline
from components.models.engine_build import EngineBuild, EngineBuildArgs
from components.models.model_preparation import ModelPreparation, ModelPreparationArgs
from components.platform import PlatformOperators
from components.serving.dashboards import deployment_dashboard
from components.serving.llmapi.args import llmapi_deployment_args, stack_inputs
from components.serving.llmapi.deployment import LlmApiDeployment
from components.serving.llmapi.monitors import pod_monitors as llmapi_pod_monitors
from components.serving.monitoring import DeploymentMonitoring
from components.serving.runtime_package import installed_runtime_files
from components.serving.secrets import StackSecrets, config_values, planned_secrets
from components.serving.triton.args import engine_deployment_args
from components.serving.triton.deployment import DisaggregatedDeployment
from components.serving.triton.monitors import pod_monitors as triton_pod_monitors
from components.storage.model_store import ModelStore


def main(config: StackConfig) -> None:
    for warning in [*config.deploy_warnings(), *stack_warnings(config)]:
        pulumi.log.warn(warning)
    cluster_name = config.cluster.name
    if config.cluster.provider == "eks":
        assert config.cluster.eks is not None
        aws_provider = aws.Provider(f"{cluster_name}-aws", region=config.cluster.eks.region)
        cluster: AwsGpuCluster | ExistingCluster = AwsGpuCluster(
            cluster_name, config.cluster.eks, opts=pulumi.ResourceOptions(providers={"aws": aws_provider})
        )
    else:
        assert config.cluster.existing is not None
        cluster = ExistingCluster(cluster_name, config.cluster.existing)
    handle = cluster.handle

    store = ModelStore(f"{cluster_name}-store", handle=handle, namespace=config.namespace)
    platform = PlatformOperators(f"{cluster_name}-platform", handle=handle, config=config.platform)
    secrets = StackSecrets(
        f"{cluster_name}-secrets", planned_secrets(config), config_values(config), store.namespace,
        opts=pulumi.ResourceOptions(provider=handle.provider, depends_on=[store]),
    )

    builds: dict[str, EngineBuild] = {}
    fsx_throughput = config.cluster.eks.storage.throughput_per_unit if config.cluster.eks else None
    for key, pool_name in sorted(config.engine_pools().items()):
        builds[key] = EngineBuild(
            f"engine-{key}",
            EngineBuildArgs(
                spec=config.engines[key],
                image=config.images.triton_trtllm,
                namespace=store.namespace,
                pool=handle.gpu_pools[pool_name],
                storage_claim_name=store.claim_name,
                store_mount_path=store.mount_path,
                hf_token_secret=config.hf_token_secret,
                active_deadline_seconds=engine_build_deadline(config.engines[key], store.storage, fsx_throughput),
            ),
            opts=pulumi.ResourceOptions(provider=handle.provider, depends_on=[store, platform, secrets]),
        )

    preparations: dict[str, ModelPreparation] = {}
    for key in config.used_models():
        preparations[key] = ModelPreparation(
            f"model-{key}",
            ModelPreparationArgs(
                name=key,
                source=config.models[key],
                namespace=store.namespace,
                pool=handle.system_pool,
                storage_claim_name=store.claim_name,
                store_mount_path=store.mount_path,
                image=config.images.trtllm,
                hf_token_secret=config.hf_token_secret,
                active_deadline_seconds=model_preparation_deadline(
                    config.models[key], store.storage, fsx_throughput
                ),
            ),
            opts=pulumi.ResourceOptions(provider=handle.provider, depends_on=[store, platform, secrets]),
        )

    runtime_files = installed_runtime_files() if preparations else {}
    deployments: dict[str, DisaggregatedDeployment | LlmApiDeployment] = {}
    for deployment in config.deployments:
        opts = pulumi.ResourceOptions(provider=handle.provider, depends_on=[store, platform, secrets])
        if deployment.runtime == "llmapi":
            model_key = next(iter(deployment.worker_groups().values())).model
            assert model_key is not None  # validated: llmapi groups name a model
            deployments[deployment.name] = LlmApiDeployment(
                deployment.name,
                llmapi_deployment_args(
                    deployment,
                    namespace=store.namespace,
                    worker_image=config.images.trtllm,
                    frontend_image=config.images.llmapi_tiers_image(),
                    model_dir=preparations[model_key].model_dir,
                    gpu_pools=handle.gpu_pools,
                    system_pool=handle.system_pool,
                    claim_name=store.claim_name,
                    mount_path=store.mount_path,
                    runtime_files=runtime_files,
                    aws_load_balancer=handle.platform == "eks",
                    custom_metrics=config.platform.metrics_adapter.enabled,
                    **stack_inputs(config, deployment),
                ),
                opts=opts,
            )
        else:
            deployments[deployment.name] = DisaggregatedDeployment(
                deployment.name,
                engine_deployment_args(
                    config,
                    deployment,
                    engine_dirs={key: build.engine_dir for key, build in builds.items()},
                    namespace=store.namespace,
                    cluster=handle,
                    claim_name=store.claim_name,
                    mount_path=store.mount_path,
                ),
                opts=opts,
            )

    if config.platform.monitoring.enabled:
        for deployment in config.deployments:
            runtime_monitors = llmapi_pod_monitors if deployment.runtime == "llmapi" else triton_pod_monitors
            roles = list(deployment.worker_groups())
            DeploymentMonitoring(
                deployment.name,
                store.namespace,
                runtime_monitors(deployment.name, store.namespace),
                deployment_dashboard(deployment.name, store.namespace, deployment.runtime, roles)
                if config.platform.monitoring.grafana
                else None,
                opts=pulumi.ResourceOptions(provider=handle.provider, depends_on=[store, platform]),
            )

    pulumi.export("kubeconfig", pulumi.Output.secret(handle.kubeconfig))
    pulumi.export("clusterName", cluster_name)
    pulumi.export("fabric", handle.fabric)
    pulumi.export("namespace", store.namespace)
    pulumi.export("platformComponents", platform.installed)
    pulumi.export("engineLocations", {key: build.engine_dir for key, build in builds.items()})
    pulumi.export("modelLocations", {key: prep.model_dir for key, prep in preparations.items()})
    pulumi.export("runtimes", {d.name: d.runtime for d in config.deployments})
    pulumi.export("frontendEndpoints", {n: d.frontend_endpoint for n, d in deployments.items()})
    pulumi.export(
        "orchestratorEndpoints",
        {
            n: d.router_url if isinstance(d, LlmApiDeployment) else d.orchestrator_endpoint
            for n, d in deployments.items()
        },
    )


main(load_from_pulumi())
