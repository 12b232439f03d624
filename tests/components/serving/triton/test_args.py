"""engine_deployment_args: the prod stack's engine deployment as the component receives it."""

from __future__ import annotations

from pathlib import Path

from components.config import load_stack_config
from components.config.capacity import deployment_drain_seconds
from components.serving.triton.args import engine_deployment_args
from disaggctl.synth.program import read_stack_config

ROOT = Path(__file__).resolve().parents[4]


def test_the_engine_deployment_gets_its_engines_drain_and_platform(cluster_factory) -> None:
    _, raw, _ = read_stack_config(ROOT, "prod")
    config = load_stack_config(raw)
    (deployment,) = [d for d in config.deployments if d.runtime == "engine"]
    groups = deployment.worker_groups()
    engine_dirs = {key: f"/models/engines/{key}" for key in config.engines}
    args = engine_deployment_args(
        config, deployment, engine_dirs=engine_dirs, namespace="llm", cluster=cluster_factory(),
        claim_name="models", mount_path="/models",
    )  # fmt: skip
    assert set(args.engines) == set(groups)
    assert args.engines == {role: config.engines[g.engine] for role, g in groups.items() if g.engine}
    assert args.engine_dirs == {role: f"/models/engines/{g.engine}" for role, g in groups.items() if g.engine}
    assert args.drain_seconds == deployment_drain_seconds(config, deployment)
    # prod enables KEDA without a URL: it queries the Prometheus the stack installs
    assert args.keda_prometheus_url == "http://prometheus-operated.monitoring.svc:9090"
    assert args.monitoring_namespaces == ("monitoring",)
    assert args.custom_metrics == config.platform.metrics_adapter.enabled
    assert args.security == config.platform.security
