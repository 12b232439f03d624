"""Exit codes and output of the verify and fabric-check commands."""

import argparse
import json
from pathlib import Path

import pytest
import yaml

from disaggctl.testing.local_triton import free_port
from disaggctl.verify.cli import add_verify_commands, main

DATA = Path(__file__).parent / "data"


def test_commands_register_on_a_foreign_parser():
    parser = argparse.ArgumentParser(prog="disaggctl")
    add_verify_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fabric-check", "parse", "x.log", "--expect", "efa"])
    assert (args.command, args.fabric_command, args.logfile, args.expect) == ("fabric-check", "parse", "x.log", "efa")
    assert callable(args.func)
    assert callable(parser.parse_args(["verify", "--frontend-url", "h:1"]).func)


def test_disaggctl_main_offers_the_commands():
    disaggctl_main = pytest.importorskip("disaggctl.__main__")
    args = disaggctl_main.build_parser().parse_args(["fabric-check", "parse", "-"])
    assert args.logfile == "-"


@pytest.mark.parametrize(
    "log,flags,code",
    [
        ("nccl_efa_p4d_2node.log", ["--expect", "efa", "--min-busbw", "40"], 0),
        ("nccl_efa_p4d_2node.log", ["--expect", "efa", "--min-busbw", "100"], 1),
        ("nccl_ib_h100_2node.log", ["--expect", "infiniband"], 0),
        ("nccl_socket_fallback.log", [], 1),
        ("nccl_socket_fallback.log", ["--expect", "efa"], 1),
        ("nccl_socket_fallback.log", ["--expect", "any"], 0),
        ("nccl_roce_truncated.log", ["--expect", "roce"], 1),
    ],
)
def test_fabric_parse_exit_codes(log, flags, code, capsys):
    assert main(["fabric-check", "parse", str(DATA / log), *flags]) == code
    out, err = capsys.readouterr()
    if code:
        assert "fabric-check: FAIL:" in err
    else:
        assert "fabric-check: PASS" in out


def test_fabric_parse_reads_the_expectation_from_stack_outputs(tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"fabric": "efa"}))
    assert main(["fabric-check", "parse", str(DATA / "nccl_ib_h100_2node.log"), "--stack-outputs", str(outputs)]) == 1
    assert "NCCL used ib while efa was expected" in capsys.readouterr().err


def test_fabric_parse_json(capsys):
    assert main(["fabric-check", "parse", str(DATA / "nccl_socket_fallback.log"), "--json", "--expect", "efa"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["transport"], data["expected"], data["ok"], data["complete"]) == ("socket", "efa", False, True)
    assert len(data["rows"]) == 28


def test_fabric_parse_usage_errors(tmp_path, capsys):
    assert main(["fabric-check", "parse", str(tmp_path / "absent.log")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["fabric-check", "parse", str(DATA / "nccl_ib_h100_2node.log"), "--expect", "ethernet"]) == 2


def test_fabric_render_prints_applyable_yaml(capsys):
    code = main(["fabric-check", "render", "--image", "img", "--fabric", "efa", "--efa-interfaces", "4",
                 "--namespace", "inference", "--node-selector", "pool=p4d", "--no-ssh-secret"])
    assert code == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [o["kind"] for o in objects] == ["Service", "Job"]
    assert objects[1]["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "p4d"}


def test_fabric_render_refuses_an_incomplete_spec(capsys):
    assert main(["fabric-check", "render", "--image", "img", "--fabric", "efa", "--no-ssh-secret"]) == 2
    assert "needs efa_interfaces >= 1" in capsys.readouterr().err


def test_verify_without_endpoints_is_a_usage_error(capsys):
    assert main(["verify"]) == 2
    assert "no gRPC endpoint for the frontend" in capsys.readouterr().err


def test_verify_with_unbounded_settings_is_refused(capsys):
    assert main(["verify", "--frontend-url", "h:1", "--requests", "0"]) == 2
    assert "--requests: Input should be greater than or equal to 1" in capsys.readouterr().err


@pytest.mark.triton
def test_verify_passes_against_a_real_server(triton, tmp_path, capsys):
    report = tmp_path / "report.json"
    code = main([
        "verify", "--frontend-url", triton.grpc_url, "--frontend-http-url", triton.http_url,
        "--orchestrator-url", triton.grpc_url, "--prompt", "hello world", "--max-tokens", "4",
        "--requests", "12", "--concurrency", "3", "--time-limit", "30", "--report", str(report),
    ])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "output:  hello#0 world#1 hello#2 world#3\n" in out
    assert out.rstrip().endswith("verify: PASS")
    assert "[" in err and "12/12 ok 12 failed 0" in err  # progress bar on stderr
    data = json.loads(report.read_text())
    assert data["summary"]["requests_ok"] == 12 and data["summary"]["output_tokens_total"] == 48


@pytest.mark.triton
def test_verify_from_stack_outputs(triton, tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({
        "frontendEndpoints": {"llama": {"grpc": triton.grpc_url, "http": f"http://{triton.http_url}"}},
        "orchestratorEndpoints": {"llama": triton.grpc_url},
    }))
    assert main(["verify", "--stack-outputs", str(outputs), "--skip-load-test", "--max-tokens", "2"]) == 0
    out = capsys.readouterr().out
    assert f"== health ({outputs})" in out and "verify: PASS (load test skipped)" in out


@pytest.mark.triton
def test_verify_fails_when_the_orchestrator_is_down(triton, capsys):
    dead = f"127.0.0.1:{free_port()}"
    code = main(["verify", "--frontend-url", triton.grpc_url, "--orchestrator-url", dead, "--health-timeout", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "FAIL" in out
    assert "verify: FAIL: 3 of 6 health checks failed (first: orchestrator" in err


@pytest.mark.triton
def test_verify_fails_when_generation_errors(triton, capsys):
    code = main(["verify", "--frontend-url", triton.grpc_url, "--orchestrator-url", triton.grpc_url,
                 "--model", "tensorrt_llm"])
    assert code == 1
    assert "streaming generate on tensorrt_llm" in capsys.readouterr().err
