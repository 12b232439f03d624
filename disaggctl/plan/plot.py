"""``plan --plot``: the Pareto frontier of the searched layouts, as PNG or SVG.

tokens/s/user (x, what a user sees) against tokens/s/GPU (y, what a GPU delivers), one marker
shape per GPU type, colour = $/Mtok at the target rate (whole nodes), the SLO as a vertical line
(1000 / tpotMs tokens/s/user), each GPU type's frontier as a step line, the pick starred and
labelled. matplotlib's Agg backend (no display); the SVG carries no date and a fixed hash salt,
so the same options draw the same file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from components.config.workload import WorkloadConfig

if TYPE_CHECKING:
    from .plan import Option

MARKERS = ("o", "s", "^", "D", "v", "P")


def pareto(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (higher is better on both), by x."""
    front = [p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    return sorted(set(front))


def draw_frontier(options: Sequence[Option], workload: WorkloadConfig, pick: Option | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "disaggctl-plan"
    matplotlib.rcParams["text.parse_math"] = False  # "$" is a dollar here
    import matplotlib.pyplot as plt
    from matplotlib import colors

    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    priced = [o.usd_per_million_tokens for o in options if o.usd_per_million_tokens is not None and not o.rejected]
    norm = colors.Normalize(vmin=min(priced), vmax=max(priced)) if priced else None
    cmap = plt.get_cmap("viridis_r")
    gpu_types = sorted({o.pool.gpu_model for o in options})
    for index, gpu in enumerate(gpu_types):
        mine = [o for o in options if o.pool.gpu_model == gpu]
        marker = MARKERS[index % len(MARKERS)]
        for feasible in (True, False):
            group = [o for o in mine if (not o.rejected) == feasible]
            if not group:
                continue
            xs = [o.tokens_per_s_per_user for o in group]
            ys = [o.tokens_per_s_per_gpu for o in group]
            if feasible and norm is not None:
                cs = [o.usd_per_million_tokens if o.usd_per_million_tokens is not None else max(priced) for o in group]
                ax.scatter(xs, ys, c=cs, cmap=cmap, norm=norm, marker=marker, s=60, edgecolors="black",
                           linewidths=0.6, label=f"{gpu}: meets SLO", zorder=3)
            else:
                ax.scatter(xs, ys, facecolors="none", edgecolors="grey", marker=marker, s=50,
                           label=f"{gpu}: rejected", zorder=2)
        cheapest = min((o for o in mine if not o.rejected and o.usd_per_million_tokens is not None),
                       key=lambda o: o.usd_per_million_tokens or 0.0, default=None)
        if cheapest is not None and cheapest is not pick:
            ax.annotate(f"{gpu} cheapest: ${cheapest.usd_per_million_tokens:.3f}/Mtok",
                        (cheapest.tokens_per_s_per_user, cheapest.tokens_per_s_per_gpu), textcoords="offset points",
                        xytext=(10, 8), fontsize=7)
        front = pareto([(o.tokens_per_s_per_user, o.tokens_per_s_per_gpu) for o in mine])
        if len(front) > 1:
            ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="grey", linewidth=0.8,
                    linestyle="--", zorder=1)
    slo_x = 1000.0 / workload.slo.tpot_ms
    ax.axvline(slo_x, color="red", linewidth=1.2, label=f"SLO: TPOT ≤ {workload.slo.tpot_ms:g} ms ({slo_x:.0f} tok/s/user)")
    if pick is not None:
        ax.scatter([pick.tokens_per_s_per_user], [pick.tokens_per_s_per_gpu], marker="*", s=400, color="gold",
                   edgecolors="black", linewidths=1.0, zorder=5, label="pick")
        cost = "" if pick.usd_per_million_tokens is None else (
            f"${pick.usd_per_million_tokens:.3f}/Mtok, ${pick.usd_per_hour:,.2f}/h, {pick.nodes} node"
            + ("s" if pick.nodes != 1 else ""))
        ax.annotate(f"{pick.pool.name} {pick.layout}\n{cost}", (pick.tokens_per_s_per_user, pick.tokens_per_s_per_gpu),
                    textcoords="offset points", xytext=(14, -34), fontsize=8,
                    bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85})
    if norm is not None:
        bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax)
        bar.set_label("$ per million output tokens at the target rate (whole nodes)")
    target = (f"{workload.request_rate:g} req/s" if workload.request_rate is not None
              else f"{workload.concurrency} in flight" if workload.concurrency is not None else "one copy")
    ax.set_title(f"Layouts searched ({target}; TTFT ≤ {workload.slo.ttft_ms:g} ms, TPOT ≤ {workload.slo.tpot_ms:g} ms)")
    ax.set_xlabel("tokens/s/user")
    ax.set_ylabel("tokens/s/GPU")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if path.suffix.lower() == ".svg" else {"Software": None}
    fig.savefig(path, metadata=metadata)
    plt.close(fig)
