"""The nccl-tests log parser on sample logs in data/ (formats of nccl-tests' common.cu table and
NCCL/aws-ofi-nccl INFO lines), and the fabric check's failure rules."""

from pathlib import Path

import pytest

from disaggctl.verify.nccl_log import fabric_problems, normalize_expectation, parse_nccl_log, render_summary

DATA = Path(__file__).parent / "data"


def load(name):
    return parse_nccl_log((DATA / name).read_text())


def test_efa_run_is_detected_with_provider_and_gdr():
    r = load("nccl_efa_p4d_2node.log")
    assert r.transport == "efa"
    assert r.ofi_provider == "efa"
    assert set(r.networks.values()) == {"Libfabric"}
    assert r.gpu_direct_rdma is True
    assert (r.ranks, r.hosts) == (16, ("fabric-check-0", "fabric-check-1"))
    assert r.nccl_version == "2.21.5+cuda12.4"


def test_efa_table_rows_and_summary():
    r = load("nccl_efa_p4d_2node.log")
    assert len(r.rows) == 28  # 8 B .. 1 GiB, factor 2; the interleaved "Launch mode" line is skipped
    first, last = r.rows[0], r.rows[-1]
    assert (first.size_bytes, first.count, first.dtype, first.redop, first.root) == (8, 2, "float", "sum", -1)
    assert last.size_bytes == 1 << 30 and last.count == 1 << 28
    assert r.avg_busbw == 15.4471
    assert r.out_of_bounds == 0
    assert r.complete
    assert r.peak_busbw == max(max(x.out_of_place_busbw, x.in_place_busbw) for x in r.rows)
    assert 40 < r.peak_busbw < 50


def test_all_reduce_busbw_is_algbw_times_2_n_minus_1_over_n():
    r = load("nccl_efa_p4d_2node.log")
    factor = 2 * (r.ranks - 1) / r.ranks
    for row in r.rows:
        if row.out_of_place_algbw >= 1:
            assert row.out_of_place_busbw == pytest.approx(row.out_of_place_algbw * factor, abs=0.02)


def test_ib_run():
    r = load("nccl_ib_h100_2node.log")
    assert r.transport == "ib"
    assert r.ib_link_layers == ("IB",)
    assert r.ofi_provider is None
    assert r.rows[0].size_bytes == 8 << 20 and r.rows[-1].size_bytes == 8 << 30
    assert r.avg_busbw == 295.484
    assert fabric_problems(r, expected="ib", min_busbw=300) == []


def test_socket_fallback_with_mpirun_tag_output_prefixes():
    r = load("nccl_socket_fallback.log")
    assert r.transport == "socket"
    assert set(r.networks.values()) == {"Socket"}
    assert len(r.rows) == 28 and r.avg_busbw == 0.554107
    assert r.gpu_direct_rdma is False


def test_socket_fallback_fails_loudly_when_efa_expected():
    problems = fabric_problems(load("nccl_socket_fallback.log"), expected="efa")
    assert len(problems) == 1
    assert problems[0].startswith("NCCL fell back to sockets (networks: Socket) while efa was expected")
    assert "vpc.amazonaws.com/efa" in problems[0]


def test_socket_fallback_fails_the_default_rdma_expectation():
    problems = fabric_problems(load("nccl_socket_fallback.log"), expected="rdma")
    assert "NCCL fell back to sockets" in problems[0]


def test_socket_run_passes_when_sockets_are_expected():
    assert fabric_problems(load("nccl_socket_fallback.log"), expected="socket") == []


def test_truncated_roce_run():
    r = load("nccl_roce_truncated.log")
    assert r.transport == "roce"
    assert r.ib_link_layers == ("RoCE",)
    assert not r.complete and r.avg_busbw is None
    assert len(r.rows) == 19
    assert any("Test NCCL failure common.cu:1005" in f for f in r.failures)
    problems = fabric_problems(r, expected="roce")
    assert len(problems) == 1
    assert "no '# Avg bus bandwidth' line" in problems[0]
    assert "remote process exited or there was a network error" in problems[0]


def test_busbw_threshold_uses_the_peak():
    r = load("nccl_efa_p4d_2node.log")
    assert fabric_problems(r, expected="efa", min_busbw=40) == []
    (problem,) = fabric_problems(r, expected="efa", min_busbw=45)
    assert problem == f"peak bus bandwidth {r.peak_busbw:g} GB/s is below the threshold 45 GB/s (--min-busbw)"


def test_avg_busbw_threshold():
    (problem,) = fabric_problems(load("nccl_efa_p4d_2node.log"), min_avg_busbw=20)
    assert "average bus bandwidth 15.4471 GB/s is below the threshold 20 GB/s" in problem


def test_wrong_transport_is_reported():
    (problem,) = fabric_problems(load("nccl_ib_h100_2node.log"), expected="efa")
    assert problem == "NCCL used ib while efa was expected"


def test_libfabric_over_tcp_provider_counts_as_sockets():
    log = (
        "h0:1:1 [0] NCCL INFO NET/OFI Selected Provider is tcp;ofi_rxm\n"
        "h0:1:2 [0] NCCL INFO Channel 00 : 1[0] -> 0[0] [send] via NET/AWS Libfabric/0\n"
    )
    r = parse_nccl_log(log)
    assert (r.transport, r.ofi_provider) == ("socket", "tcp;ofi_rxm")


def test_one_host_falling_back_makes_the_run_a_fallback():
    log = (
        "a:1:1 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB ; OOB eth0:10.0.0.1<0>\n"
        "a:1:1 [0] NCCL INFO Using network IB\n"
        "b:2:2 [0] NCCL INFO NET/IB : No device found.\n"
        "b:2:2 [0] NCCL INFO Using network Socket\n"
    )
    r = parse_nccl_log(log)
    assert r.transport == "socket"
    assert r.networks == {"a:1": "IB", "b:2": "Socket"}


def test_older_table_without_root_column():
    log = (
        "#       size         count    type   redop     time   algbw   busbw  error     time   algbw   busbw  error\n"
        "     1048576        262144   float     sum   1035.3    1.01    1.90  5e-07    643.4    1.63    3.06  5e-07\n"
        "     2097152        524288   float     sum    671.4    3.12    5.86  5e-07    671.8    3.12    5.85  5e-07\n"
        "# Out of bounds values : 0 OK\n"
        "# Avg bus bandwidth    : 4.1675 \n"
    )
    r = parse_nccl_log(log)
    assert [(x.size_bytes, x.root, x.in_place_busbw, x.out_of_place_wrong) for x in r.rows] == [
        (1048576, None, 3.06, "5e-07"),
        (2097152, None, 5.85, "5e-07"),
    ]
    assert r.avg_busbw == 4.1675


def test_wrong_values_fail_the_check():
    log = (
        "           8             2     float     sum      -1    62.00    0.00    0.00      3    62.00    0.00    0.00      0\n"
        "# Out of bounds values : 3 FAILED\n"
        "# Avg bus bandwidth    : 0 \n"
    )
    r = parse_nccl_log(log)
    assert r.out_of_bounds == 3
    assert "3 out-of-bounds (wrong) values" in fabric_problems(r)[0]


def test_empty_log_is_incomplete_and_unknown():
    r = parse_nccl_log("")
    assert (r.transport, r.complete, r.rows, r.peak_busbw) == ("unknown", False, (), None)
    problems = fabric_problems(r, expected="efa", min_busbw=10)
    assert len(problems) == 3
    assert "no inter-node NCCL network found" in problems[1]


@pytest.mark.parametrize(
    "value,expected",
    [("efa", "efa"), ("infiniband", "ib"), ("InfiniBand", "ib"), ("roce", "roce"), ("none", "any"), (None, "any")],
)
def test_stack_fabric_values_map_to_expectations(value, expected):
    assert normalize_expectation(value) == expected


def test_unknown_expectation_is_refused():
    with pytest.raises(ValueError, match="not one of efa"):
        normalize_expectation("ethernet")


def test_host_prefixed_lines_from_a_parallel_shell():
    log = (
        "10.3.35.83: ip-10-3-35-83:362:362 [0] NCCL INFO NET/OFI Selected Provider is efa (found 4 nics)\n"
        "10.3.35.83: ip-10-3-35-83:362:370 [0] NCCL INFO Using network AWS Libfabric\n"
        "10.3.35.83:    134217728      33554432     float     sum      -1   5989.8   22.41   42.01      0"
        "   5952.4   22.55   42.28      0\n"
        "10.3.35.83: # Avg bus bandwidth    : 42.1 \n"
    )
    r = parse_nccl_log(log)
    assert (r.transport, r.networks) == ("efa", {"ip-10-3-35-83:362": "AWS Libfabric"})
    assert [x.busbw for x in r.rows] == [42.28] and r.avg_busbw == 42.1


REAL = Path(__file__).with_name("data")


def test_real_nvlink_run_on_one_host_is_not_a_socket_fallback() -> None:
    result = parse_nccl_log((REAL / "all_reduce_perf-2gpu-nvlink.log").read_text())
    assert result.transport == "local"
    assert result.complete and result.peak_busbw is not None and round(result.peak_busbw) == 285
    [problem] = fabric_problems(result, expected="efa")
    assert problem.startswith("ran on one host: no inter-node traffic measured")
    assert "socket" not in problem.lower()
    assert render_summary(result).startswith("transport: none (ran on one host: no inter-node traffic measured)")


def test_real_forced_socket_run_is_a_socket_data_path() -> None:
    result = parse_nccl_log((REAL / "all_reduce_perf-2gpu-socket-forced.log").read_text())
    assert result.transport == "socket"
    assert round(result.peak_busbw or 0, 2) == 2.65
    assert fabric_problems(result, expected="socket") == []
    assert fabric_problems(result, expected="efa")[0].startswith("NCCL fell back to sockets")
