"""Parse an nccl-tests log run with ``NCCL_DEBUG=INFO``: transport, bus bandwidth, failures.

What is read (lines may carry ``mpirun --tag-output`` prefixes such as ``[1,0]<stdout>:``):

* the inter-node network NCCL picked, from ``NCCL INFO Using network <name>`` and channel lines
  ``... via NET/<name>/<dev>[/GDRDMA]``: ``Libfabric``/``AWS Libfabric`` (the aws-ofi-nccl
  plugin), ``IB`` (InfiniBand and RoCE alike), ``Socket`` (TCP);
* ``NET/OFI Selected Provider is efa`` (libfabric over EFA, not its ``tcp`` provider);
* ``NET/IB : Using [0]mlx5_0:1/IB ...`` or ``.../RoCE`` (the link layer of the HCAs);
* the nccl-tests table (``size count type redop [root] time algbw busbw #wrong`` out-of-place
  then in-place; older nccl-tests lack the ``root`` column), ``# Out of bounds values : N OK``
  and ``# Avg bus bandwidth    : X``;
* failures: ``Test NCCL failure``, ``Test CUDA failure``, ``Test failure``, ``NCCL WARN``.

:func:`parse_nccl_log` is pure; :func:`fabric_problems` turns a result and expectations into
failure messages (empty list: the fabric check passed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Transport = Literal["efa", "ib", "roce", "socket", "local", "unknown"]
"""``local``: every channel stayed on one host (P2P/SHM): no inter-node traffic was measured."""
Expectation = Literal["efa", "ib", "roce", "socket", "rdma", "any"]
"""A transport, ``rdma`` (any of efa/ib/roce: everything but a socket fallback), or ``any``."""
TRANSPORTS: tuple[str, ...] = ("efa", "ib", "roce", "socket")

# mpirun --tag-output ("[1,0]<stdout>:"), or a pdsh/hostfile style "10.0.0.1: " prefix.
_PREFIX = re.compile(r"^(?:\[\d+,\d+\]<std(?:out|err)>:\s?|[\w.-]+:\s(?=\s*\d|#|\S+:\d+:\d+ ))")
_NCCL = re.compile(r"^(?P<host>[^\s:]+):(?P<pid>\d+):(?P<tid>\d+) \[(?P<dev>\d+)\] (?P<rest>.*)$")
_USING_NETWORK = re.compile(r"NCCL INFO Using network (?P<name>.+?)\s*$")
_VIA_NET = re.compile(r"via NET/(?P<name>[^/]+)/(?P<dev>\d+)(?P<gdr>/GDRDMA)?")
_VIA = re.compile(r"NCCL INFO Channel \d+/\d+ : .* via (?P<path>\S+)")
_OFI_PROVIDER = re.compile(r"NET/OFI Selected Provider is (?P<prov>[^\s,(]+)")
_IB_DEVICES = re.compile(r"NET/IB : Using (?P<devs>(?:\[\d+\]\S+\s*)+)")
_IB_LINK = re.compile(r"\[\d+\](?P<hca>[\w-]+):\d+/(?P<link>IB|RoCE)")
_VERSION = re.compile(r"NCCL version (?P<v>\S+)")
_RANK = re.compile(r"^#\s+Rank\s+(?P<rank>\d+)\b.*\bon\s+(?P<host>\S+)\s+device\s+(?P<dev>\d+)")
_NUM = r"(?:\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_WRONG = r"(?:\S+)"
_ROW = re.compile(
    r"^\s*(?P<size>\d+)\s+(?P<count>\d+)\s+(?P<type>[a-z0-9_]+)\s+(?P<redop>[a-z]+)\s+"
    r"(?:(?P<root>-?\d+)\s+)?"
    rf"(?P<t1>{_NUM})\s+(?P<a1>{_NUM})\s+(?P<b1>{_NUM})\s+(?P<w1>{_WRONG})\s+"
    rf"(?P<t2>{_NUM})\s+(?P<a2>{_NUM})\s+(?P<b2>{_NUM})\s+(?P<w2>{_WRONG})\s*$"
)
_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(?P<n>\d+)\s*(?P<status>OK|FAILED)?")
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*(?P<bw>[-+0-9.eE]+|nan|-?inf)\s*(?P<status>OK|FAILED)?", re.I)
_FAILURES = re.compile(r"Test (?:NCCL |CUDA )?failure|Test timeout|NCCL WARN|ncclSystemError|ncclRemoteError")


@dataclass(frozen=True)
class BandwidthRow:
    """One row of the nccl-tests table. Times in microseconds, bandwidths in GB/s."""

    size_bytes: int
    count: int
    dtype: str
    redop: str
    root: int | None
    out_of_place_time_us: float
    out_of_place_algbw: float
    out_of_place_busbw: float
    out_of_place_wrong: str
    in_place_time_us: float
    in_place_algbw: float
    in_place_busbw: float
    in_place_wrong: str

    @property
    def busbw(self) -> float:
        """The better of out-of-place and in-place bus bandwidth."""
        return max(self.out_of_place_busbw, self.in_place_busbw)


@dataclass(frozen=True)
class NcclLogResult:
    """What an nccl-tests log says."""

    transport: Transport
    """Inter-node transport NCCL used; the worst one when hosts differ (socket beats all)."""
    networks: dict[str, str] = field(default_factory=dict)
    """``host:pid`` -> network name NCCL announced (``Using network ...`` or channel lines)."""
    ofi_provider: str | None = None
    ib_link_layers: tuple[str, ...] = ()
    """Link layers of the HCAs NCCL listed (``IB``, ``RoCE``)."""
    gpu_direct_rdma: bool = False
    """Some network channel ran with GPUDirect RDMA (``/GDRDMA``)."""
    nccl_version: str | None = None
    ranks: int = 0
    hosts: tuple[str, ...] = ()
    rows: tuple[BandwidthRow, ...] = ()
    avg_busbw: float | None = None
    """The ``# Avg bus bandwidth`` figure (GB/s); None when the run did not finish."""
    out_of_bounds: int | None = None
    failures: tuple[str, ...] = ()
    """Failure and warning lines, in order."""

    @property
    def complete(self) -> bool:
        """The run reached its summary (``# Avg bus bandwidth``)."""
        return self.avg_busbw is not None

    @property
    def peak_busbw(self) -> float | None:
        """Highest bus bandwidth of any size (GB/s): what the fabric sustains on large messages."""
        return max((r.busbw for r in self.rows), default=None)

    @property
    def largest_size_busbw(self) -> float | None:
        """Bus bandwidth at the largest message size measured."""
        if not self.rows:
            return None
        return max(self.rows, key=lambda r: r.size_bytes).busbw


def _strip(line: str) -> str:
    return _PREFIX.sub("", line, count=1).rstrip("\n")


def _classify(name: str, provider: str | None, links: set[str]) -> Transport:
    low = name.lower()
    if low.startswith("socket"):
        return "socket"
    if "libfabric" in low or "ofi" in low:
        return "efa" if provider in (None, "efa") else "socket"
    if low.startswith("ib"):  # IB, IBext (SHARP plugin) serve InfiniBand and RoCE HCAs
        return "roce" if links == {"RoCE"} else "ib"
    return "unknown"


_RANK_ORDER = {"socket": 0, "unknown": 1, "roce": 2, "ib": 3, "efa": 4}


def parse_nccl_log(text: str) -> NcclLogResult:
    """Parse the whole log text. Never raises on odd input: unknown lines are ignored."""
    networks: dict[str, str] = {}
    channel_networks: dict[str, str] = {}
    provider: str | None = None
    links: set[str] = set()
    gdr = False
    version = None
    ranks: dict[int, str] = {}
    rows: list[BandwidthRow] = []
    avg = None
    oob = None
    failures: list[str] = []
    channels = 0
    for raw in text.splitlines():
        line = _strip(raw)
        m = _NCCL.match(line)
        if m:
            key = f"{m['host']}:{m['pid']}"
            rest = m["rest"]
            if u := _USING_NETWORK.search(rest):
                networks[key] = u["name"]
            if _VIA.search(rest):
                channels += 1
            if v := _VIA_NET.search(rest):
                channel_networks.setdefault(key, v["name"])
                gdr = gdr or bool(v["gdr"])
            if p := _OFI_PROVIDER.search(rest):
                provider = p["prov"] if provider in (None, p["prov"]) else provider
            if d := _IB_DEVICES.search(rest):
                links.update(x["link"] for x in _IB_LINK.finditer(d["devs"]))
        if _FAILURES.search(line):
            failures.append(line.strip())
            continue
        if v := _VERSION.search(line):
            version = version or v["v"]
        if r := _RANK.match(line):
            ranks[int(r["rank"])] = r["host"]
            continue
        if row := _ROW.match(line):
            rows.append(
                BandwidthRow(
                    size_bytes=int(row["size"]),
                    count=int(row["count"]),
                    dtype=row["type"],
                    redop=row["redop"],
                    root=int(row["root"]) if row["root"] is not None else None,
                    out_of_place_time_us=float(row["t1"]),
                    out_of_place_algbw=float(row["a1"]),
                    out_of_place_busbw=float(row["b1"]),
                    out_of_place_wrong=row["w1"],
                    in_place_time_us=float(row["t2"]),
                    in_place_algbw=float(row["a2"]),
                    in_place_busbw=float(row["b2"]),
                    in_place_wrong=row["w2"],
                )
            )
            continue
        if o := _OOB.match(line):
            oob = int(o["n"])
            continue
        if a := _AVG.match(line):
            try:
                avg = float(a["bw"])
            except ValueError:
                avg = None
    # The channels NCCL actually set up decide: "Using network X" names the network NCCL would use
    # between hosts, printed even when every channel stays on the host (P2P/SHM). Without channel
    # lines (older logs, NCCL_DEBUG_SUBSYS without INIT) the announced network is all there is.
    transport: Transport
    if channels and not channel_networks:
        transport = "local"
    else:
        used = channel_networks if channel_networks else networks
        per_process = {k: _classify(n, provider, links) for k, n in used.items()}
        transport = min(per_process.values(), key=_RANK_ORDER.__getitem__, default="unknown")
    for key, name in channel_networks.items():
        networks[key] = name
    return NcclLogResult(
        transport=transport,
        networks=dict(sorted(networks.items())),
        ofi_provider=provider,
        ib_link_layers=tuple(sorted(links)),
        gpu_direct_rdma=gdr,
        nccl_version=version,
        ranks=len(ranks),
        hosts=tuple(sorted(set(ranks.values()))),
        rows=tuple(rows),
        avg_busbw=avg,
        out_of_bounds=oob,
        failures=tuple(failures),
    )


def normalize_expectation(fabric: str | None) -> Expectation:
    """A stack's ``fabric`` output (efa/infiniband/roce/none) or a flag value, as an expectation."""
    value = (fabric or "any").strip().lower()
    aliases = {"infiniband": "ib", "none": "any", "": "any", "tcp": "socket"}
    value = aliases.get(value, value)
    if value not in (*TRANSPORTS, "rdma", "any"):
        raise ValueError(
            f"expected transport {fabric!r} is not one of efa, ib (infiniband), roce, socket, rdma, any"
        )
    return value  # type: ignore[return-value]


_FALLBACK_FIX = {
    "efa": (
        "check the pods request vpc.amazonaws.com/efa, the image ships the aws-ofi-nccl plugin "
        "(libnccl-net.so) and libfabric with the efa provider, and FI_PROVIDER=efa"
    ),
    "ib": (
        "check the pods request the RDMA resource (rdma/...), /dev/infiniband is present, "
        "NCCL_IB_HCA names existing HCAs and NCCL_IB_DISABLE is not set"
    ),
    "roce": (
        "check the pods request the RDMA resource (rdma/...), NCCL_IB_GID_INDEX matches the "
        "RoCE v2 GID and NCCL_IB_HCA names existing HCAs"
    ),
}


def fabric_problems(
    result: NcclLogResult,
    *,
    expected: Expectation = "any",
    min_busbw: float | None = None,
    min_avg_busbw: float | None = None,
) -> list[str]:
    """Why the fabric check fails; empty when it passes.

    ``min_busbw`` applies to the peak bus bandwidth (largest messages), ``min_avg_busbw`` to
    nccl-tests' ``# Avg bus bandwidth`` line (all sizes, so latency-bound small ones too).
    """
    problems: list[str] = []
    hard = [f for f in result.failures if "NCCL WARN" not in f]
    if not result.complete:
        reason = f"; first failure: {hard[0]}" if hard else ""
        problems.append(
            "the log has no '# Avg bus bandwidth' line: all_reduce_perf did not finish "
            f"({len(result.rows)} sizes measured){reason}"
        )
    elif hard:
        problems.append(f"the run reported failures: {hard[0]}")
    if result.out_of_bounds:
        problems.append(f"{result.out_of_bounds} out-of-bounds (wrong) values: data corruption on the fabric")
    if expected != "any" and result.transport != expected:
        if result.transport == "socket":
            seen = ", ".join(sorted(set(result.networks.values()))) or "socket"
            problems.append(
                f"NCCL fell back to sockets (networks: {seen}"
                + (f", OFI provider {result.ofi_provider}" if result.ofi_provider else "")
                + f") while {expected} was expected: "
                + _FALLBACK_FIX.get(expected, "check the pods request the fabric resource and the image ships its NCCL plugin")
            )
        elif result.transport == "local":
            problems.append(
                f"ran on one host: no inter-node traffic measured (every channel is P2P/SHM) while "
                f"{expected} was expected: place the two ranks on different nodes (the Job's pod anti-affinity)"
            )
        elif result.transport == "unknown":
            problems.append(
                f"no inter-node NCCL network found in the log while {expected} was expected: run with "
                "NCCL_DEBUG=INFO, and check both ranks ran on different nodes"
            )
        elif expected != "rdma":
            problems.append(f"NCCL used {result.transport} while {expected} was expected")
    if min_busbw is not None:
        peak = result.peak_busbw
        if peak is None:
            problems.append(f"no bus bandwidth measured; required peak busbw >= {min_busbw:g} GB/s")
        elif peak < min_busbw:
            problems.append(
                f"peak bus bandwidth {peak:g} GB/s is below the threshold {min_busbw:g} GB/s (--min-busbw)"
            )
    if min_avg_busbw is not None and result.avg_busbw is not None and result.avg_busbw < min_avg_busbw:
        problems.append(
            f"average bus bandwidth {result.avg_busbw:g} GB/s is below the threshold "
            f"{min_avg_busbw:g} GB/s (--min-avg-busbw)"
        )
    return problems


def render_summary(result: NcclLogResult) -> str:
    """A few human lines: transport, ranks and hosts, bandwidth figures, the largest sizes."""
    lines = [
        ("transport: none (ran on one host: no inter-node traffic measured)" if result.transport == "local" else f"transport: {result.transport}")
        + (f" (OFI provider {result.ofi_provider})" if result.ofi_provider else "")
        + (f" (HCA link layers {', '.join(result.ib_link_layers)})" if result.ib_link_layers else "")
        + (", GPUDirect RDMA" if result.gpu_direct_rdma else ""),
        f"NCCL version: {result.nccl_version or 'unknown'}; ranks: {result.ranks} on {len(result.hosts)} hosts",
        f"sizes measured: {len(result.rows)}; peak busbw: "
        + (f"{result.peak_busbw:g} GB/s" if result.peak_busbw is not None else "n/a")
        + "; avg busbw: "
        + (f"{result.avg_busbw:g} GB/s" if result.avg_busbw is not None else "n/a (run did not finish)"),
    ]
    if result.rows:
        lines.append(f"{'size (B)':>14}  {'algbw':>8}  {'busbw':>8}")
        for row in sorted(result.rows, key=lambda r: r.size_bytes)[-4:]:
            lines.append(f"{row.size_bytes:>14}  {row.out_of_place_algbw:>8.2f}  {row.busbw:>8.2f}")
    return "\n".join(lines) + "\n"
