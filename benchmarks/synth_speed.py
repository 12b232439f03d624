"""Synth speed: prod as shipped vs a 30-deployment stack made from it (a figure, not a test).

    python benchmarks/synth_speed.py [--repeat 3] [--baseline REV] [--profile build/synth-speed.prof]

Prints, for each stack, the median in-process time of running the program under mocks and of
writing the synth tree (``run_program`` then ``write_synth``: modules already imported), and the
median and best end-to-end time of ``python -m disaggctl synth`` (a fresh interpreter: imports,
the program, and the files written by a second process while it runs), then the 30-deployment /
prod ratio (goal: at most 1.5x). ``--profile`` writes a
cProfile of one 30-deployment synth for ``python -m pstats``.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def make_wide_stack(project: Path, deployments: int) -> str:
    """Pulumi.wide.yaml: prod's deployments repeated (renamed) up to ``deployments``.

    The config-time capacity checks hold the wide stack to real pools, and a /16 VPC's GPU subnets
    cannot hold ten times prod's nodes: so the copies run one group per role (with their
    prediction's roles to match, so it is not stale) and the pools grow sixfold (the CPU pool tenfold). Every copy still
    declares the same kinds and number of resources as its original.
    """
    doc = yaml.safe_load((PROJECT / "Pulumi.prod.yaml").read_text())
    base = doc["config"]["disagg:deployments"]
    wide = []
    for i in range(deployments):
        entry = copy.deepcopy(base[i % len(base)])
        entry["name"] = f"{entry['name'][:30]}-{i:02d}"
        if i >= len(base):
            for role in ("workers", "prefill", "decode"):
                if role not in entry:
                    continue
                for key in ("groups", "minGroups", "maxGroups"):
                    if key in entry[role]:
                        entry[role][key] = 1
                predicted = entry.get("workload", {}).get("prediction", {}).get("roles", {}).get(role)
                if predicted:
                    predicted["groups"] = 1
        wide.append(entry)
    doc["config"]["disagg:deployments"] = wide
    eks = doc["config"]["disagg:cluster"]["eks"]
    eks["systemNodeGroup"]["maxSize"] *= 10
    for pool in eks["gpuNodePools"]:
        pool["maxSize"] *= 6
        if "capacityBlock" in pool:
            pool["capacityBlock"]["instanceCount"] *= 6
    (project / "Pulumi.wide.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return "wide"


def in_process(project: Path, stack: str, out: Path) -> tuple[float, float, int]:
    from disaggctl.synth.program import run_program, write_synth

    t0 = time.perf_counter()
    result = run_program(project, stack)
    t1 = time.perf_counter()
    write_synth(result, out)
    return t1 - t0, time.perf_counter() - t1, len(result.resources)


def end_to_end(project: Path, stack: str, out: Path, code: Path = PROJECT) -> float:
    """``python -m disaggctl synth`` of ``code`` (this checkout, or a baseline worktree)."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "disaggctl", "synth", "--project", str(project), "--stack", stack, "--out", str(out)],
        cwd=code, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(code)},
    )
    return time.perf_counter() - t0


def baseline_checkout(rev: str, into: Path) -> Path:
    """A detached worktree of ``rev`` (e.g. the commit before a speed-up), removed by the caller."""
    subprocess.run(["git", "-C", str(PROJECT), "worktree", "add", "--detach", str(into), rev],
                   check=True, capture_output=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deployments", type=int, default=30)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--baseline", metavar="REV",
                        help="also time this git revision end to end on the same stack files (e.g. f1ebe34)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synth-speed-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "__main__.py"):
            shutil.copy2(PROJECT / name, project / name)
        wide = make_wide_stack(project, args.deployments)
        stacks = ("prod", wide)
        old = baseline_checkout(args.baseline, Path(tmp) / "baseline") if args.baseline else None
        try:
            if old is not None:  # the baseline runs its own __main__.py with the same stack files
                for name in ("Pulumi.prod.yaml", "Pulumi.wide.yaml"):
                    shutil.copy2(project / name, old / name)
            in_proc = {stack: [in_process(project, stack, project / "out" / stack) for _ in range(args.repeat)]
                       for stack in stacks}
            e2e: dict[str, list[float]] = {stack: [] for stack in stacks}
            before: dict[str, list[float]] = {stack: [] for stack in stacks}
            for _ in range(args.repeat):  # interleaved: this machine's speed drifts over minutes
                for stack in stacks:
                    e2e[stack].append(end_to_end(project, stack, project / "e2e" / stack))
                    if old is not None:
                        before[stack].append(end_to_end(old, stack, Path(tmp) / "before" / stack, code=old))
        finally:
            if old is not None:
                subprocess.run(["git", "-C", str(PROJECT), "worktree", "remove", "--force", str(old)],
                               check=False, capture_output=True)
        if old is not None:
            ratio = statistics.median(before[wide]) / statistics.median(before["prod"])
            print(f"baseline {args.baseline}: prod median {statistics.median(before['prod']):5.2f} s, "
                  f"{wide} median {statistics.median(before[wide]):5.2f} s ({ratio:.2f}x)")
        for stack in stacks:
            runs = in_proc[stack]
            print(
                f"{stack:>5}: {runs[0][2]:>5} resources; in process: program "
                f"{statistics.median(r[0] for r in runs):5.2f} s, write {statistics.median(r[1] for r in runs):5.2f} s; "
                f"python -m disaggctl synth: median {statistics.median(e2e[stack]):5.2f} s, "
                f"best {min(e2e[stack]):5.2f} s (of {args.repeat})"
            )
        median_ratio = statistics.median(e2e[wide]) / statistics.median(e2e["prod"])
        best_ratio = min(e2e[wide]) / min(e2e["prod"])
        print(f"{args.deployments} deployments / prod: {median_ratio:.2f}x by medians, {best_ratio:.2f}x by best runs "
              "(goal <= 1.5x)")
        if args.profile:
            from disaggctl.synth.program import run_program, write_synth

            profiler = cProfile.Profile()
            profiler.enable()
            write_synth(run_program(project, wide), project / "profiled")
            profiler.disable()
            args.profile.parent.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(str(args.profile))
            print(f"profile: {args.profile} (python -m pstats {args.profile})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
