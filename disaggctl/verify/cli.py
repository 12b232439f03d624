"""``verify`` and ``fabric-check`` subcommands.

Exit codes: 0 every check passed; 1 a check failed (the last line says which); 2 the input was
unusable (bad flags, unreadable stack outputs or log file).

Examples::

    pulumi stack output --json > outputs.json
    python -m disaggctl verify --stack-outputs outputs.json --requests 50 --concurrency 8
    python -m disaggctl verify --frontend-url 127.0.0.1:8001 --orchestrator-url 127.0.0.1:9001
    python -m disaggctl verify --stack prod --api-key-file key.txt
    python -m disaggctl fabric-check render --stack prod | kubectl apply -f -
    python -m disaggctl fabric-check render --image IMG --fabric efa --efa-interfaces 4 | kubectl apply -f -
    kubectl logs job/nccl-fabric-check | python -m disaggctl fabric-check parse - --expect efa --min-busbw 40
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_REPORT = Path("build/verify/loadtest.json")


def _err(message: str) -> None:
    print(message, file=sys.stderr)


# ------------------------------------------------------------------------------------------ verify
def _slo_target(args: argparse.Namespace):
    """The SLO to gate on: the stack's workload (--slo-stack), then explicit flags on top; None: no gate."""
    from .slo import SloTarget, slo_from_stack

    target = None
    if args.slo_stack:
        if not args.deployment:
            raise ValueError("--slo-stack needs --deployment NAME")
        target = slo_from_stack(Path(args.project), args.slo_stack, args.deployment)
    if args.slo_ttft_ms is not None or args.slo_tpot_ms is not None or args.slo_percentile is not None:
        base = target or SloTarget(ttft_ms=None, tpot_ms=None)
        target = SloTarget(
            ttft_ms=args.slo_ttft_ms if args.slo_ttft_ms is not None else base.ttft_ms,
            tpot_ms=args.slo_tpot_ms if args.slo_tpot_ms is not None else base.tpot_ms,
            percentile=args.slo_percentile or base.percentile,
            predicted_ttft_ms=base.predicted_ttft_ms,
            predicted_tpot_ms=base.predicted_tpot_ms,
            source=base.source if target else "flags",
        )
    return target


def _openai_base(args: argparse.Namespace) -> str:
    from .endpoints import EndpointError, endpoints_from_outputs, load_stack_outputs

    if args.frontend_url:
        return args.frontend_url if "://" in args.frontend_url else f"http://{args.frontend_url}"
    if args.stack_outputs is None:
        raise EndpointError("--api openai needs --frontend-url http://host:port or --stack-outputs FILE")
    endpoints = endpoints_from_outputs(
        load_stack_outputs(args.stack_outputs), deployment=args.deployment, source=str(args.stack_outputs)
    )
    url = endpoints.frontend_http or endpoints.frontend_grpc
    if url is None:
        raise EndpointError(f"no frontend endpoint in {args.stack_outputs}")
    return f"http://{url.address}"


def _run_verify(args: argparse.Namespace) -> int:
    from .endpoints import EndpointError
    from .slo import SloError
    from .stack import read_api_key

    if args.stack:
        return _run_verify_stack(args)
    try:
        slo = _slo_target(args)
        args.api_key = read_api_key(args.api_key_file) if args.api_key_file else None
    except (SloError, ValueError, EndpointError) as err:
        _err(f"verify: {err}")
        return EXIT_USAGE
    args.api = args.api or "kserve"
    if args.model is None:
        args.model = "ensemble"
    if args.api == "openai":
        return _run_verify_openai(args, slo)
    return _run_verify_kserve(args, slo)


def _run_verify_stack(args: argparse.Namespace) -> int:
    """Every deployment of ``--stack`` (or ``--deployment``): its API, model and key header from the
    stack's configuration, its endpoints from the stack's outputs; the worst exit code."""
    from components.config import ConfigError

    from .endpoints import EndpointError
    from .slo import SloError
    from .stack import deployment_targets, read_api_key, read_stack, stack_outputs

    project = Path(args.project)
    try:
        config = read_stack(project, args.stack)
        targets = deployment_targets(config, args.deployment)
        api_key = read_api_key(args.api_key_file) if args.api_key_file else None
        if args.frontend_url is None:
            outputs = stack_outputs(args.stack, project, args.stack_outputs)
            written = Path(tempfile.mkdtemp(prefix="verify-")) / "outputs.json"
            written.write_text(json.dumps(outputs))
            args.stack_outputs = written
    except ConfigError as err:
        for problem in err.problems:
            _err(f"verify: {problem}")
        return EXIT_USAGE
    except (ValueError, EndpointError) as err:
        _err(f"verify: {err}")
        return EXIT_USAGE
    codes = []
    for target in targets:
        one = argparse.Namespace(**vars(args))
        one.deployment, one.api = target.name, args.api or target.api
        one.model = args.model or target.model
        one.api_key = api_key
        one.api_key_header = args.api_key_header or target.api_key_header or "x-api-key"
        if len(targets) > 1:
            one.report = args.report.with_name(f"{args.report.stem}-{target.name}{args.report.suffix}")
        if target.api_key_header and api_key is None:
            _err(f"verify: deployment {target.name!r} is public and checks {target.api_key_header}: pass --api-key-file FILE")
            codes.append(EXIT_USAGE)
            continue
        one.slo_stack = args.slo_stack or (args.stack if _has_workload(config, target.name) else None)
        print(f"=== deployment {target.name} ({'OpenAI API' if one.api == 'openai' else 'KServe v2'}, model {one.model})")
        try:
            slo = _slo_target(one)
        except (SloError, ValueError) as err:
            _err(f"verify: {err}")
            codes.append(EXIT_USAGE)
            continue
        codes.append(_run_verify_openai(one, slo) if one.api == "openai" else _run_verify_kserve(one, slo))
    return max(codes, default=EXIT_OK)


def _has_workload(config, name: str) -> bool:
    return any(d.name == name and d.workload is not None for d in config.deployments)


def _auth_headers(args: argparse.Namespace) -> dict[str, str]:
    """The API key in the header the frontend checks ('authorization' takes 'Bearer <key>')."""
    key = getattr(args, "api_key", None)
    if key is None:
        return {}
    header = getattr(args, "api_key_header", None) or "x-api-key"
    return {header: f"Bearer {key}" if header.lower() == "authorization" else key}


def _run_verify_openai(args: argparse.Namespace, slo) -> int:
    from pydantic import ValidationError

    from .endpoints import EndpointError
    from .health import render_table
    from .loadtest import LoadTestConfig, ProgressBar, report_problems, run_load_test, write_report
    from .openai_api import OpenAISession, check_openai_health

    model = args.model if args.model != "ensemble" else (args.deployment or "ensemble")
    headers = _auth_headers(args)
    try:
        base = _openai_base(args)
        load_config = LoadTestConfig(
            url=base, model=model, prompt=args.prompt, max_tokens=args.max_tokens, requests=args.requests,
            concurrency=args.concurrency, time_limit_s=args.time_limit, request_timeout_s=args.request_timeout,
        )
    except EndpointError as err:
        _err(f"verify: {err}")
        return EXIT_USAGE
    except ValidationError as err:
        problems = "; ".join(f"--{'-'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors())
        _err(f"verify: invalid load test settings: {problems}")
        return EXIT_USAGE
    print(f"== health (OpenAI API at {base})")
    checks = check_openai_health(base, model, timeout_s=args.health_timeout, headers=headers)
    print(render_table(checks), end="")
    failed = [c for c in checks if not c.ok]
    if failed:
        _err(f"verify: FAIL: {failed[0].name} at {failed[0].endpoint}: {failed[0].detail or 'failed'}")
        return EXIT_FAILED
    print(f"== streaming completion ({model} at {base}/v1/completions, max_tokens={args.max_tokens})")
    session = OpenAISession(base, model, connect_timeout_s=args.health_timeout, headers=headers)
    try:
        result = session.generate(args.prompt, args.max_tokens, timeout_s=args.request_timeout,
                                  on_token=lambda t: print(t, end="", flush=True))
    finally:
        session.close()
    print()
    if not result.ok or not result.output_tokens:
        _err(f"verify: FAIL: streaming completion at {base}: {result.error or 'no text in the stream'}")
        return EXIT_FAILED
    if args.skip_load_test:
        print("verify: PASS (load test skipped)")
        return EXIT_OK
    print(f"== load test ({load_config.requests} requests, concurrency {load_config.concurrency})")
    bar = ProgressBar(load_config.requests)
    try:
        report = run_load_test(
            load_config, progress=bar.update,
            session_factory=lambda: OpenAISession(
                base, model, connect_timeout_s=min(10.0, load_config.time_limit_s), headers=headers
            ),
        )
    finally:
        bar.close()
    return _finish(args, report, report_problems(report), slo, write_report)


def _finish(args: argparse.Namespace, report: dict, load_problems: list[str], slo, write_report) -> int:
    """Write the report, print the figures, gate on the SLO; the exit code."""
    from .slo import slo_gate

    problems = list(load_problems)
    if slo is not None:
        table, breaches = slo_gate(report, slo, args.max_over_prediction)
        report["slo"] = {
            "percentile": slo.percentile, "ttft_ms": slo.ttft_ms, "tpot_ms": slo.tpot_ms,
            "predicted_ttft_ms": slo.predicted_ttft_ms, "predicted_tpot_ms": slo.predicted_tpot_ms,
            "source": slo.source, "breaches": breaches,
        }
        problems += [f"SLO: {b}" for b in breaches]
    path = write_report(report, args.report)
    print(render_load_summary(report), end="")
    if slo is not None:
        print(table, end="")
    print(f"report: {path}")
    if problems:
        for p in problems:
            _err(f"verify: FAIL: {'load test: ' if not p.startswith('SLO') else ''}{p}")
        return EXIT_FAILED
    print("verify: PASS" + (f" (SLO p{slo.percentile} met)" if slo is not None else ""))
    return EXIT_OK


def _run_verify_kserve(args: argparse.Namespace, slo) -> int:
    from pydantic import ValidationError

    from .endpoints import EndpointError, resolve_endpoints
    from .generate import stream_generate
    from .health import check_health, render_table
    from .loadtest import LoadTestConfig, ProgressBar, report_problems, run_load_test, write_report

    try:
        endpoints = resolve_endpoints(
            stack_outputs=args.stack_outputs,
            deployment=args.deployment,
            frontend_url=args.frontend_url,
            frontend_http_url=args.frontend_http_url,
            orchestrator_url=args.orchestrator_url,
        )
        load_config = LoadTestConfig(
            url=endpoints.frontend_grpc.address,  # type: ignore[union-attr]
            model=args.model,
            prompt=args.prompt,
            max_tokens=args.max_tokens,
            requests=args.requests,
            concurrency=args.concurrency,
            time_limit_s=args.time_limit,
            request_timeout_s=args.request_timeout,
        )
    except EndpointError as err:
        _err(f"verify: {err}")
        return EXIT_USAGE
    except ValidationError as err:
        problems = "; ".join(f"--{'-'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors())
        _err(f"verify: invalid load test settings: {problems}")
        return EXIT_USAGE

    print(f"== health ({endpoints.source})")
    checks = check_health(
        endpoints,
        frontend_model=args.model,
        orchestrator_model=args.orchestrator_model,
        timeout_s=args.health_timeout,
    )
    print(render_table(checks), end="")
    failed = [c for c in checks if not c.ok]
    if failed:
        first = failed[0]
        _err(
            f"verify: FAIL: {len(failed)} of {len(checks)} health checks failed "
            f"(first: {first.tier} {first.endpoint} {first.name}: {first.detail or 'failed'}); "
            "skipping the generate and load tests"
        )
        return EXIT_FAILED

    url = endpoints.frontend_grpc.address  # type: ignore[union-attr]
    print(f"== streaming generate ({args.model} at {url}, max_tokens={args.max_tokens})")
    print(f"prompt: {args.prompt}")
    print("output: ", end="", flush=True)
    result = stream_generate(
        url,
        args.prompt,
        args.max_tokens,
        model=args.model,
        timeout_s=args.request_timeout,
        on_token=lambda t: print(t, end="", flush=True),
    )
    print()
    if not result.ok or not result.output_tokens:
        reason = result.error or "the stream ended without any text_output token"
        _err(f"verify: FAIL: streaming generate on {args.model} at {url}: {reason}")
        return EXIT_FAILED
    assert result.ttft_s is not None and result.latency_s is not None  # set on an ok result with tokens
    print(
        f"{result.output_tokens} tokens; time to first token {result.ttft_s * 1000:.1f} ms; "
        f"total {result.latency_s * 1000:.1f} ms"
    )

    if args.skip_load_test:
        print("verify: PASS (load test skipped)")
        return EXIT_OK
    print(
        f"== load test ({load_config.requests} requests, concurrency {load_config.concurrency}, "
        f"time limit {load_config.time_limit_s:g}s)"
    )
    bar = ProgressBar(load_config.requests)
    try:
        report = run_load_test(load_config, progress=bar.update)
    finally:
        bar.close()
    return _finish(args, report, report_problems(report), slo, write_report)


def render_load_summary(report: dict) -> str:
    """The load test's headline figures as a small table (milliseconds)."""
    s = report["summary"]
    lines = [
        f"requests: {s['requests_ok']} ok, {s['requests_failed']} failed, {s['requests_not_started']} not sent; "
        f"wall {s['wall_time_s']:.2f}s; {s['output_tokens_total']} tokens; "
        f"{s['tokens_per_s'] or 0:.1f} tokens/s; {s['requests_per_s'] or 0:.2f} requests/s",
        f"{'metric':<22}{'p50':>10}{'p90':>10}{'p99':>10}",
    ]

    def ms(v):
        return f"{v * 1000:>10.1f}" if v is not None else f"{'-':>10}"

    for key, title in (("ttft_s", "TTFT (ms)"), ("inter_token_s", "inter-token (ms)"), ("latency_s", "latency (ms)")):
        stats = report[key]
        lines.append(f"{title:<22}{ms(stats['p50'])}{ms(stats['p90'])}{ms(stats['p99'])}")
    t = report["output_tokens"]
    lines.append(
        f"{'output tokens':<22}" + "".join(f"{v:>10.0f}" if v is not None else f"{'-':>10}" for v in (t["p50"], t["p90"], t["p99"]))
    )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ fabric-check
def _run_fabric_parse(args: argparse.Namespace) -> int:
    from .endpoints import FABRIC_KEY, EndpointError, load_stack_outputs
    from .nccl_log import fabric_problems, normalize_expectation, parse_nccl_log, render_summary

    try:
        text = sys.stdin.read() if args.logfile == "-" else Path(args.logfile).read_text(errors="replace")
    except OSError as err:
        _err(f"fabric-check parse: cannot read {args.logfile}: {err.strerror}")
        return EXIT_USAGE
    expected_raw = args.expect
    if expected_raw is None and args.stack is not None:
        from components.config import ConfigError

        from .stack import read_stack

        try:
            expected_raw = read_stack(Path(args.project), args.stack).fabric()
        except ConfigError as err:
            for problem in err.problems:
                _err(f"fabric-check parse: {problem}")
            return EXIT_USAGE
        if expected_raw == "none":
            _err(f"fabric-check parse: stack {args.stack!r} has no GPU fabric (no EFA/InfiniBand/RoCE pool): pass --expect")
            return EXIT_USAGE
    if expected_raw is None and args.stack_outputs is not None:
        try:
            expected_raw = load_stack_outputs(args.stack_outputs).get(FABRIC_KEY)
        except EndpointError as err:
            _err(f"fabric-check parse: {err}")
            return EXIT_USAGE
    try:
        expected = normalize_expectation(expected_raw or "rdma")
    except ValueError as err:
        _err(f"fabric-check parse: --expect: {err}")
        return EXIT_USAGE
    result = parse_nccl_log(text)
    problems = fabric_problems(
        result, expected=expected, min_busbw=args.min_busbw, min_avg_busbw=args.min_avg_busbw
    )
    if args.json:
        print(json.dumps(_result_json(result, expected, problems), sort_keys=True, indent=2))
    else:
        print(render_summary(result), end="")
    if problems:
        for p in problems:
            _err(f"fabric-check: FAIL: {p}")
        return EXIT_FAILED
    print(f"fabric-check: PASS ({result.transport}, expected {expected})")
    return EXIT_OK


def _result_json(result, expected: str, problems: list[str]) -> dict:
    return {
        "transport": result.transport,
        "expected": expected,
        "ok": not problems,
        "problems": problems,
        "networks": result.networks,
        "ofi_provider": result.ofi_provider,
        "ib_link_layers": list(result.ib_link_layers),
        "gpu_direct_rdma": result.gpu_direct_rdma,
        "nccl_version": result.nccl_version,
        "ranks": result.ranks,
        "hosts": list(result.hosts),
        "complete": result.complete,
        "avg_busbw_gbps": result.avg_busbw,
        "peak_busbw_gbps": result.peak_busbw,
        "out_of_bounds": result.out_of_bounds,
        "rows": [
            {"size_bytes": r.size_bytes, "algbw_gbps": r.out_of_place_algbw, "busbw_gbps": r.busbw}
            for r in result.rows
        ],
    }


def generate_ssh_keypair():
    """A fresh ed25519 key pair from ``ssh-keygen`` (not stored anywhere but the rendered Secret)."""
    from .fabric import SshKeyPair

    with tempfile.TemporaryDirectory(prefix="fabric-check-") as tmp:
        key = Path(tmp) / "id_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nccl-fabric-check", "-f", str(key)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return SshKeyPair(private_key=key.read_text(), public_key=(Path(tmp) / "id_ed25519.pub").read_text())


def _stack_check_image(command: str, stack: str, config) -> str | None:
    """The fabric checks' image: ``--image``'s caller passed none, so the stack's
    ``images.fabricCheck``; None (and one line on stderr) when the stack names none."""
    image = config.images.fabric_check
    if image is None:
        _err(
            f"fabric-check {command}: stack {stack!r} names no check image: set images.fabricCheck "
            "(images/kv-fabric-check/Dockerfile) in its Pulumi.<stack>.yaml, or pass --image"
        )
    return image


def _run_fabric_render_stack(args: argparse.Namespace) -> int:
    """One fabric check per GPU pool of ``--stack`` with a fabric (or ``--pool``): fabric, GPUs,
    EFA interfaces or RDMA resource, node selector (disagg.dev/pool) and tolerations from the pool."""
    from components.config import ConfigError

    from .fabric import manifests_yaml, render_fabric_check, spec_for_pool
    from .stack import fabric_pools, read_stack

    try:
        config = read_stack(Path(args.project), args.stack)
        names = fabric_pools(config, args.pool)
    except ConfigError as err:
        for problem in err.problems:
            _err(f"fabric-check render: {problem}")
        return EXIT_USAGE
    except ValueError as err:
        _err(f"fabric-check render: {err}")
        return EXIT_USAGE
    if not names:
        _err(f"fabric-check render: stack {args.stack!r} has no GPU pool with a fabric (EFA, InfiniBand, RoCE): nothing to check")
        return EXIT_USAGE
    image = args.image or _stack_check_image("render", args.stack, config)
    if image is None:
        return EXIT_USAGE
    pools = config.cluster.node_pools()
    documents = []
    for name in names:
        try:
            spec = spec_for_pool(
                pools[name], image=image, name=f"{args.name}-{name}" if len(names) > 1 else args.name,
                namespace=args.namespace or config.namespace, min_bytes=args.min_bytes, max_bytes=args.max_bytes,
            )
            keypair = None if args.no_ssh_secret else generate_ssh_keypair()
        except ValueError as err:
            _err(f"fabric-check render: pool {name!r}: {err}")
            return EXIT_USAGE
        except (OSError, subprocess.SubprocessError) as err:
            _err(f"fabric-check render: ssh-keygen failed ({err}); install openssh-client, or pass --no-ssh-secret")
            return EXIT_USAGE
        documents.append(manifests_yaml(render_fabric_check(spec, keypair)))
    print("---\n".join(documents), end="")
    return EXIT_OK


def _run_fabric_render(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .fabric import FabricCheckSpec, Toleration, manifests_yaml, render_fabric_check

    if args.stack:
        return _run_fabric_render_stack(args)
    if args.fabric is None:
        _err("fabric-check render: pass --stack STACK (the pools' fabric) or --fabric efa|infiniband|roce")
        return EXIT_USAGE
    if args.image is None:
        _err("fabric-check render: without --stack, pass --image (nccl-tests with MPI=1, Open MPI, openssh)")
        return EXIT_USAGE

    try:
        node_selector = dict(kv.split("=", 1) for kv in args.node_selector)
    except ValueError:
        _err("fabric-check render: --node-selector takes KEY=VALUE")
        return EXIT_USAGE
    try:
        extra_env = dict(kv.split("=", 1) for kv in args.env)
    except ValueError:
        _err("fabric-check render: --env takes NAME=VALUE")
        return EXIT_USAGE
    try:
        spec = FabricCheckSpec(
            image=args.image,
            fabric=args.fabric,
            name=args.name,
            namespace=args.namespace or "default",
            gpus_per_node=args.gpus_per_node,
            efa_interfaces=args.efa_interfaces,
            rdma_resource=args.rdma_resource,
            node_selector=node_selector,
            tolerations=tuple(Toleration(key=k) for k in args.toleration),
            min_bytes=args.min_bytes,
            max_bytes=args.max_bytes,
            extra_env=extra_env,
        )
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'spec'}: {e['msg']}" for e in err.errors())
        _err(f"fabric-check render: {problems}")
        return EXIT_USAGE
    keypair = None
    if not args.no_ssh_secret:
        try:
            keypair = generate_ssh_keypair()
        except (OSError, subprocess.SubprocessError) as err:
            _err(
                f"fabric-check render: ssh-keygen failed ({err}); install openssh-client, or pass "
                f"--no-ssh-secret and create Secret {spec.secret_name} with id_ed25519, id_ed25519.pub, authorized_keys"
            )
            return EXIT_USAGE
    print(manifests_yaml(render_fabric_check(spec, keypair)), end="")
    return EXIT_OK


def _run_kv_render(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .fabric import Toleration, manifests_yaml
    from .kv_fabric import KvFabricCheckSpec, render_kv_fabric_check, spec_for_deployment

    overrides: dict = {}
    for key in ("name", "namespace", "block_bytes", "max_blocks", "efa_interfaces", "rdma_resource"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    try:
        if args.stack is not None:
            from components.config.errors import ConfigError

            from .kv_fabric import load_stack

            if args.deployment is None:
                _err("fabric-check kv-render: --stack needs --deployment (a prefill-decode deployment)")
                return EXIT_USAGE
            try:
                config = load_stack(args.project, args.stack)
            except (ConfigError, OSError, ValueError) as err:
                _err(f"fabric-check kv-render: stack {args.stack}: {err}")
                return EXIT_USAGE
            image = args.image or _stack_check_image("kv-render", args.stack, config)
            if image is None:
                return EXIT_USAGE
            spec = spec_for_deployment(config, args.deployment, image, **overrides)
        else:
            if args.fabric is None:
                _err("fabric-check kv-render: give --stack and --deployment, or --fabric")
                return EXIT_USAGE
            if args.image is None:
                _err("fabric-check kv-render: without --stack, pass --image (images/kv-fabric-check/Dockerfile)")
                return EXIT_USAGE
            spec = KvFabricCheckSpec(
                image=args.image, fabric=args.fabric, gpus_per_pod=args.gpus_per_pod,
                tolerations=tuple(Toleration(key=k) for k in args.toleration), **overrides,
            )  # fmt: skip
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'spec'}: {e['msg']}" for e in err.errors())
        _err(f"fabric-check kv-render: {problems}")
        return EXIT_USAGE
    except ValueError as err:
        _err(f"fabric-check kv-render: {err}")
        return EXIT_USAGE
    print(manifests_yaml(render_kv_fabric_check(spec)), end="")
    return EXIT_OK


def _run_kv_parse(args: argparse.Namespace) -> int:
    from .kv_fabric import kv_fabric_problems, parse_nixlbench_log, render_summary

    try:
        text = sys.stdin.read() if args.logfile == "-" else Path(args.logfile).read_text(errors="replace")
    except OSError as err:
        _err(f"fabric-check kv-parse: cannot read {args.logfile}: {err.strerror}")
        return EXIT_USAGE
    result = parse_nixlbench_log(text)
    problems = kv_fabric_problems(
        result, expect_backend=args.expect_backend, min_bandwidth_gbps=args.min_bw, block_bytes=args.block_bytes
    )
    if args.json:
        report = {
            "backend": result.backend, "expected": args.expect_backend, "ok": not problems, "problems": problems,
            "nodes": result.nodes, "peak_gbps": result.peak_gbps,
            "rows": [{"block_bytes": r.block_bytes, "batch": r.batch, "gbps": r.bandwidth_gbps,
                      "avg_latency_us": r.avg_latency_us} for r in result.rows],
        }  # fmt: skip
        print(json.dumps(report, sort_keys=True, indent=2))
    else:
        print(render_summary(result), end="")
    if problems:
        for p in problems:
            _err(f"fabric-check: FAIL: {p}")
        return EXIT_FAILED
    print(f"fabric-check: PASS (KV transfer over {result.backend}, peak {result.peak_gbps:.2f} GB/s)")
    return EXIT_OK


# ------------------------------------------------------------------------------------------ wiring
def add_verify_commands(subparsers) -> None:
    """Register ``verify`` and ``fabric-check {parse,render}`` on an argparse subparsers object.

    Each command sets ``func`` (``args.func(args)`` returns the exit code).
    """
    from .endpoints import FRONTEND_ENDPOINT_KEY, ORCHESTRATOR_ENDPOINT_KEY

    v = subparsers.add_parser(
        "verify",
        help="post-deploy check: tier health, one streaming generate, a bounded load test",
        description=(
            "Health of every tier (server live/ready, model ready), one streaming generate on the "
            "frontend ensemble (tokens printed as they arrive), then a bounded load test whose JSON "
            f"report is written to --report. Endpoints come from --stack-outputs (keys {FRONTEND_ENDPOINT_KEY}, "
            f"{ORCHESTRATOR_ENDPOINT_KEY}, or their plural maps per deployment) or explicit URLs."
        ),
    )
    src = v.add_argument_group("endpoints")
    src.add_argument("--stack-outputs", type=Path, metavar="FILE", help="JSON of `pulumi stack output --json`")
    src.add_argument("--deployment", help="deployment name in frontendEndpoints/orchestratorEndpoints maps")
    src.add_argument("--frontend-url", help="frontend gRPC host:port (or http://host:port for HTTP)")
    src.add_argument("--frontend-http-url", help="frontend HTTP host:port (extra health check)")
    src.add_argument("--orchestrator-url", help="orchestrator host:port (gRPC; http:// for HTTP)")
    src.add_argument(
        "--stack", metavar="STACK",
        help="verify the deployments of Pulumi.STACK.yaml (all, or --deployment): API, model and API-key header "
        "from its configuration, endpoints from `pulumi stack output --json --stack STACK` (or --stack-outputs)",
    )
    v.add_argument(
        "--api", choices=["kserve", "openai"], default=None,
        help="kserve: KServe v2 gRPC stream (Triton frontend); openai: POST /v1/completions with stream: true "
        "(SSE), the llmapi runtime's frontend; --frontend-url is then its http://host:port. Default: from "
        "the deployment's runtime with --stack (llmapi: openai, engine: kserve), else kserve",
    )
    v.add_argument("--model", default=None,
                   help="frontend model (default: the stack's served model name; ensemble; openai: the --deployment name)")
    v.add_argument("--api-key-file", type=Path, metavar="FILE",
                   help="file holding the client key of a public frontend (its first line)")
    v.add_argument("--api-key-header", help="header carrying the key (default: the stack's publicFrontends auth.header, "
                   "else x-api-key; 'authorization' sends 'Bearer <key>')")
    v.add_argument("--orchestrator-model", default="tensorrt_llm", help="orchestrator model (default tensorrt_llm)")
    v.add_argument("--prompt", default="What is disaggregated serving?")
    v.add_argument("--max-tokens", type=int, default=32)
    v.add_argument("--health-timeout", type=float, default=5.0, metavar="S")
    load = v.add_argument_group("load test (bounded)")
    load.add_argument("--requests", type=int, default=20, help="number of requests (default 20)")
    load.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    load.add_argument("--time-limit", type=float, default=120.0, metavar="S", help="hard limit for the whole test")
    load.add_argument("--request-timeout", type=float, default=60.0, metavar="S")
    load.add_argument("--report", type=Path, default=DEFAULT_REPORT, help=f"JSON report path (default {DEFAULT_REPORT})")
    load.add_argument("--skip-load-test", action="store_true")
    gate = v.add_argument_group("SLO gate (exit 1 when the load test breaches it)")
    gate.add_argument("--slo-stack", metavar="STACK", help="read the SLO and prediction of --deployment from Pulumi.STACK.yaml")
    gate.add_argument("--project", default=".", help="directory of the Pulumi.<stack>.yaml files (default .)")
    gate.add_argument("--slo-ttft-ms", type=float, help="TTFT target (overrides the stack's)")
    gate.add_argument("--slo-tpot-ms", type=float, help="inter-token latency target (overrides the stack's)")
    gate.add_argument("--slo-percentile", type=int, choices=[50, 90, 95, 99], help="percentile the targets hold at (default 90)")
    gate.add_argument("--max-over-prediction", type=float, metavar="PCT",
                      help="also fail when a measured percentile exceeds the planner's prediction by more than PCT%%")
    v.set_defaults(func=_run_verify)

    f = subparsers.add_parser(
        "fabric-check",
        help="NCCL all_reduce_perf (render, parse) and the KV-transfer path (kv-render, kv-parse) across two GPU nodes",
    )
    fsub = f.add_subparsers(dest="fabric_command", required=True)
    p = fsub.add_parser(
        "parse",
        help="parse an nccl-tests log (NCCL_DEBUG=INFO): transport and bus bandwidth",
        description="Fails (exit 1) on a socket fallback when an RDMA fabric is expected, an unfinished run, "
        "wrong values, or bus bandwidth under a threshold.",
    )
    p.add_argument("logfile", metavar="LOGFILE", help="log file, or - for stdin")
    p.add_argument(
        "--expect",
        help="efa | ib (infiniband) | roce | socket | rdma (any but socket) | any; default: the stack's "
        "'fabric' output with --stack-outputs, else rdma",
    )
    p.add_argument("--stack-outputs", type=Path, metavar="FILE", help="read the expected fabric from here")
    p.add_argument("--stack", metavar="STACK", help="expect the fabric of Pulumi.STACK.yaml's GPU pools")
    p.add_argument("--project", default=".", help="directory of the Pulumi.<stack>.yaml files (default .)")
    p.add_argument("--min-busbw", type=float, metavar="GBPS", help="minimum peak bus bandwidth (GB/s)")
    p.add_argument("--min-avg-busbw", type=float, metavar="GBPS", help="minimum '# Avg bus bandwidth' (GB/s)")
    p.add_argument("--json", action="store_true", help="print the parsed result as JSON")
    p.set_defaults(func=_run_fabric_parse)

    r = fsub.add_parser("render", help="print the fabric-check Service/Secret/Job YAML for kubectl apply")
    r.add_argument("--image", help="image with nccl-tests (MPI=1), Open MPI, openssh; default with --stack: the "
                   "stack's images.fabricCheck")
    r.add_argument("--stack", metavar="STACK",
                   help="one check per GPU pool of Pulumi.STACK.yaml with a fabric: fabric, GPUs, EFA interfaces, "
                   "node selector and tolerations from the pool (no --fabric needed)")
    r.add_argument("--pool", help="with --stack: only this pool")
    r.add_argument("--project", default=".", help="directory of the Pulumi.<stack>.yaml files (default .)")
    r.add_argument("--fabric", choices=["efa", "infiniband", "roce"], help="without --stack: the fabric to check")
    r.add_argument("--name", default="nccl-fabric-check")
    r.add_argument("--namespace", help="namespace of the check (default: the stack's namespace, else default)")
    r.add_argument("--gpus-per-node", type=int, default=8)
    r.add_argument("--efa-interfaces", type=int, default=0, help="vpc.amazonaws.com/efa per pod (EFA)")
    r.add_argument("--rdma-resource", help="RDMA extended resource, e.g. rdma/rdma_shared_device_a (IB/RoCE)")
    r.add_argument("--node-selector", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--toleration", action="append", default=[], metavar="KEY", help="tolerate taint KEY (Exists)")
    r.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra NCCL/FI environment")
    r.add_argument("--min-bytes", default="8")
    r.add_argument("--max-bytes", default="4G")
    r.add_argument("--no-ssh-secret", action="store_true", help="do not generate the ssh key Secret")
    r.set_defaults(func=_run_fabric_render)

    k = fsub.add_parser(
        "kv-render",
        help="print the KV-transfer check (etcd + two nixlbench pods) YAML for kubectl apply",
        description="Moves KV-cache-sized blocks GPU to GPU between two pods over the workers' NIXL backend "
        "(LIBFABRIC on EFA, UCX on InfiniBand/RoCE) with upstream's nixlbench. --stack/--deployment take the "
        "fabric, the per-pod EFA share, the KV block size and the backend from a prefill-decode deployment.",
    )
    k.add_argument("--image", help="worker image with nixlbench (images/kv-fabric-check/Dockerfile); default with "
                   "--stack: the stack's images.fabricCheck")
    k.add_argument("--stack", help="read the deployment from Pulumi.STACK.yaml")
    k.add_argument("--deployment", help="the prefill-decode deployment whose KV path is checked")
    k.add_argument("--project", default=".", help="directory of the Pulumi.<stack>.yaml files (default .)")
    k.add_argument("--fabric", choices=["efa", "infiniband", "roce"], help="without --stack")
    k.add_argument("--name")
    k.add_argument("--namespace")
    k.add_argument("--gpus-per-pod", type=int, default=1)
    k.add_argument("--efa-interfaces", type=int, help="vpc.amazonaws.com/efa per pod (EFA)")
    k.add_argument("--rdma-resource", help="RDMA extended resource (IB/RoCE)")
    k.add_argument("--toleration", action="append", default=[], metavar="KEY", help="tolerate taint KEY (Exists)")
    k.add_argument("--block-bytes", type=int, help="bytes of one KV-cache block per rank")
    k.add_argument("--max-blocks", type=int, help="blocks moved at once, at most (the longest prompt)")
    k.set_defaults(func=_run_kv_render)

    kp = fsub.add_parser(
        "kv-parse",
        help="parse the KV-transfer check's nixlbench log: backend, nodes, bandwidth",
        description="Reads `kubectl logs -l batch.kubernetes.io/job-name=NAME --prefix --tail=-1`. Fails (exit 1) on "
        "another backend than expected, both pods on one node, NIXL errors, an unfinished run, or bandwidth under "
        "--min-bw.",
    )
    kp.add_argument("logfile", metavar="LOGFILE", help="log file, or - for stdin")
    kp.add_argument("--expect-backend", default="LIBFABRIC", choices=["LIBFABRIC", "UCX"])
    kp.add_argument("--min-bw", type=float, metavar="GBPS", help="minimum peak KV-transfer bandwidth (GB/s)")
    kp.add_argument("--block-bytes", type=int, help="require rows of this KV block size")
    kp.add_argument("--json", action="store_true")
    kp.set_defaults(func=_run_kv_parse)


def build_parser(prog: str = "python -m disaggctl.verify") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Post-deploy verification of a disaggregated deployment.")
    add_verify_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
