"""The llmapi frontend's and router's serving flags as the dev and prod stacks render them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.config.serving_tiers import TierSettings
from components.serving.drain import ENDPOINT_REMOVAL_S, PROCESS_EXIT_S
from components.serving.llmapi.frontend import frontend_deployment_manifest
from components.serving.llmapi.router import router_deployment_manifest
from components.serving.llmapi.tier_flags import serving_flags
from disaggctl.synth.program import run_program
from runtime import frontend as frontend_process
from runtime import router as router_process
from runtime.serve import DRAIN_DELAY_S, check_serving_flags
from tests.components.serving.llmapi.test_tiers import frontend, router

ROOT = Path(__file__).resolve().parents[4]
SERVING = ("--connect-timeout", "--first-byte-timeout", "--idle-timeout", "--request-timeout", "--max-inflight",
           "--max-queue", "--queue-timeout", "--header-timeout", "--body-timeout", "--drain-delay")  # fmt: skip


def tier_pods(stack: str) -> dict[str, dict]:
    """Pod specs of the llmapi CPU tiers' Deployments, by resource name."""
    pods = {}
    for resource in run_program(ROOT, stack).resources:
        command = resource.inputs.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0]
        if resource.type == "kubernetes:apps/v1:Deployment" and command.get("command", [None, None, ""])[2] in (
            "runtime.frontend", "runtime.router"
        ):
            pods[resource.name.removesuffix("-deployment")] = resource.inputs["spec"]["template"]["spec"]
    return pods


@pytest.fixture(scope="module")
def dev() -> dict[str, dict]:
    return tier_pods("dev")


@pytest.fixture(scope="module")
def prod() -> dict[str, dict]:
    return tier_pods("prod")


def flags(pod: dict) -> dict[str, str]:
    argv = pod["containers"][0]["command"][3:]
    return {argv[i]: argv[i + 1] for i in range(0, len(argv), 2)}


def serving(pod: dict) -> dict[str, str]:
    return {k.removeprefix("--"): v for k, v in flags(pod).items() if k in SERVING}


def test_dev_renders_the_slo_derived_flags(dev: dict[str, dict]) -> None:
    # SLO TTFT 800 ms, TPOT 25 ms; drain 450 s (maxSeqLen 8192); plan concurrency 128 on 1 frontend, 1 router
    common = {"connect-timeout": "2", "max-queue": "0", "queue-timeout": "1", "header-timeout": "10",
              "body-timeout": "30", "drain-delay": "0"}  # fmt: skip
    assert serving(dev["llama-8b-router"]) == {**common, "first-byte-timeout": "30", "idle-timeout": "10",
                                               "request-timeout": "450", "max-inflight": "256"}  # fmt: skip
    assert serving(dev["llama-8b-frontend"]) == {**common, "first-byte-timeout": "35", "idle-timeout": "15",
                                                 "request-timeout": "455", "max-inflight": "256"}  # fmt: skip


def test_prod_renders_per_deployment_flags(prod: dict[str, dict]) -> None:
    # both prefill-decode: the frontend's first byte spans the context phase and the generation's first token
    assert {k: serving(prod["llama-70b-router"])[k] for k in ("first-byte-timeout", "request-timeout", "max-inflight")} \
        == {"first-byte-timeout": "30", "request-timeout": "860", "max-inflight": "280"}  # 2 × 420 / 3 replicas
    assert {k: serving(prod["llama-70b-frontend"])[k] for k in ("first-byte-timeout", "request-timeout", "max-inflight")} \
        == {"first-byte-timeout": "65", "request-timeout": "895", "max-inflight": "280"}
    assert serving(prod["llama-70b-pd-router"])["max-inflight"] == "640"  # 2 × 640 / 2 replicas
    assert serving(prod["llama-70b-pd-router"])["request-timeout"] == "1679"  # the 1679 s drain (maxSeqLen 32768)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_rendered_commands_are_accepted_by_the_processes(stack: str, request: pytest.FixtureRequest) -> None:
    pods = request.getfixturevalue(stack)
    assert pods
    for name, pod in pods.items():
        argv = pod["containers"][0]["command"]
        process = frontend_process if argv[2] == "runtime.frontend" else router_process
        parsed = process.parse_args(argv[3:])
        timeouts = check_serving_flags(argv[2], parsed)  # SystemExit on a value out of range
        rendered = serving(pod)
        assert timeouts.first_byte == float(rendered["first-byte-timeout"]), name
        assert timeouts.total == float(rendered["request-timeout"]) and timeouts.idle == float(rendered["idle-timeout"])
        assert parsed.max_inflight == int(rendered["max-inflight"]) and parsed.drain_delay == 0.0


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_drain_delay_and_shutdown_fit_the_grace(stack: str, request: pytest.FixtureRequest) -> None:
    for pod in request.getfixturevalue(stack).values():
        container = pod["containers"][0]
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        f = flags(pod)
        used = pre_stop + float(f["--drain-delay"]) + float(f["--shutdown-timeout"]) + PROCESS_EXIT_S
        assert pre_stop == ENDPOINT_REMOVAL_S and used <= pod["terminationGracePeriodSeconds"]


SETTINGS = TierSettings(connect_timeout=2, first_byte_timeout=30, idle_timeout=10, request_timeout=450, max_inflight=64,
                        max_queue=4, queue_timeout=0.5, header_timeout=10, body_timeout=30, drain_delay=2.5)


def test_a_configured_drain_delay_lengthens_the_grace() -> None:
    plain = frontend_deployment_manifest("f", frontend(drain_seconds=92), "/t")["spec"]["template"]["spec"]
    delayed = frontend_deployment_manifest("f", frontend(drain_seconds=92, serving=SETTINGS), "/t")["spec"]["template"]["spec"]
    assert delayed["terminationGracePeriodSeconds"] == plain["terminationGracePeriodSeconds"] + 3  # ceil(2.5)
    routed = router_deployment_manifest("r", router(drain_seconds=92, serving=SETTINGS))["spec"]["template"]["spec"]
    assert routed["terminationGracePeriodSeconds"] == ENDPOINT_REMOVAL_S + 3 + 92 + PROCESS_EXIT_S


def test_components_refuse_a_bound_keda_could_never_scale_past() -> None:
    from dataclasses import replace

    from pydantic import ValidationError

    low = replace(SETTINGS, max_inflight=128)
    with pytest.raises(ValidationError, match="routerMaxInflight 128 is not above the router's KEDA target of 128"):
        router(serving=low, keda_prometheus_url="http://prometheus:9090")
    router(serving=low)  # a CPU HPA does not read requests in flight
    frontend(serving=low, keda_prometheus_url="http://prometheus:9090")  # the frontend's target is 64


def test_without_settings_no_flag_is_rendered_and_the_process_delay_fits_the_exit() -> None:
    assert serving_flags(None) == []
    assert DRAIN_DELAY_S <= PROCESS_EXIT_S  # the process's own 3 s readiness delay then fits the grace as before


def test_fractional_values_round_trip_through_the_parser() -> None:
    argv = ["--workers", "static://a:1", *serving_flags(SETTINGS)]
    parsed: Any = router_process.parse_args(argv)
    assert (parsed.queue_timeout, parsed.drain_delay, parsed.max_queue) == (0.5, 2.5, 4)


def loopback(argv: list[str], port: int, upstream: str) -> list[str]:
    """A rendered command's arguments with the address flags pointed at 127.0.0.1 (the serving flags untouched)."""
    args = argv[3:]
    swap = {"--host": "127.0.0.1", "--port": str(port), "--router": upstream, "--workers": upstream, "--tokenizer": "bytes"}
    return [swap.get(args[i - 1], a) if i % 2 else a for i, a in enumerate(args)]


def test_dev_processes_start_with_the_rendered_flags_and_stop_without_a_drain_delay(dev: dict[str, dict]) -> None:
    import signal
    import tempfile
    import time

    from tests.runtime.procs import Proc, free_port

    with tempfile.TemporaryDirectory(prefix="tier-flags-") as tmp:
        r_port, f_port = free_port(), free_port()
        router_argv = loopback(dev["llama-8b-router"]["containers"][0]["command"], r_port, f"static://127.0.0.1:{free_port()}")
        frontend_argv = loopback(dev["llama-8b-frontend"]["containers"][0]["command"], f_port, f"http://127.0.0.1:{r_port}")
        assert "--max-inflight" in router_argv and "--first-byte-timeout" in frontend_argv
        procs = [Proc("runtime.router", router_argv, r_port, Path(tmp)), Proc("runtime.frontend", frontend_argv, f_port, Path(tmp))]
        try:
            procs[0].wait_http("/ready")
            procs[1].wait_http("/v2/health/live")
            for proc in procs:
                start = time.monotonic()
                proc.popen.send_signal(signal.SIGTERM)
                proc.popen.wait(10)
                # --drain-delay 0: the listener closes at once (the process default would hold it 3 s)
                assert time.monotonic() - start < DRAIN_DELAY_S, proc.log()
        finally:
            for proc in procs:
                proc.stop()
