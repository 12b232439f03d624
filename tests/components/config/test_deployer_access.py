"""How pulumi up reaches the API server of the cluster it creates, and the EKS version calendar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime import config as runtime_config

from components.config import ConfigError, load_from_pulumi
from components.config.limits import (
    EKS_DEFAULT_KUBERNETES_VERSION,
    EKS_VERSION_SUPPORT,
    eks_version_warning,
)
from components.config.loader import OFFLINE_RENDER_KEY
from disaggctl.synth.program import SynthError, read_stack_config
from disaggctl.testing.mocks import OfflineMocks

PROJECT_DIR = Path(__file__).resolve().parents[3]
PLACEHOLDER_PROBLEM = (
    "disagg:cluster.eks.publicAccessCidrs[0]: 'DEPLOYER-CIDR' is a placeholder for the egress CIDR of the "
    "machine running pulumi up (the only way it reaches the API server of the cluster it creates): set it, "
    "e.g. pulumi config set --path 'disagg:cluster.eks.publicAccessCidrs[0]' "
    '"$(curl -s https://checkip.amazonaws.com)/32"'
)


def _load(raw: dict[str, str], *, preview: bool):
    pulumi.runtime.set_mocks(OfflineMocks(), project="disagg", stack="dev", preview=preview)
    runtime_config.set_all_config(raw, [])
    try:
        return load_from_pulumi()
    finally:
        runtime_config.set_all_config({}, [])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pulumi_up_refuses_the_shipped_placeholder_in_one_line(stack: str) -> None:
    _, raw, _ = read_stack_config(PROJECT_DIR, stack)
    with pytest.raises(ConfigError) as caught:
        _load(raw, preview=False)
    assert caught.value.problems == [PLACEHOLDER_PROBLEM]


def test_preview_and_the_offline_synth_render_the_placeholder() -> None:
    """A real `pulumi preview` and `disaggctl synth` go on (the program prints the warning);
    an egress CIDR filled in lets `pulumi up` go on too."""
    _, raw, _ = read_stack_config(PROJECT_DIR, "dev")
    assert _load(dict(raw), preview=True).deploy_blockers() == [PLACEHOLDER_PROBLEM]
    offline = _load({**raw, OFFLINE_RENDER_KEY: "true"}, preview=False)
    assert offline.deploy_warnings()[-1] == PLACEHOLDER_PROBLEM
    filled = raw["disagg:cluster"].replace('"DEPLOYER-CIDR"', '"100.20.30.40/32"')
    config = _load({**raw, "disagg:cluster": filled}, preview=False)
    assert config.cluster.eks is not None and config.cluster.eks.public_access_cidrs == ["100.20.30.40/32"]
    assert config.deploy_blockers() == []


def test_a_stack_file_cannot_set_the_offline_marker(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: disagg\nruntime: python\n")
    (tmp_path / "Pulumi.x.yaml").write_text("config:\n  disagg:offlineRender: 'true'\n")
    with pytest.raises(SynthError, match="disagg:offlineRender is set by disaggctl synth only: remove it"):
        read_stack_config(tmp_path, "x")


def test_the_default_version_is_in_standard_support_on_the_reference_date() -> None:
    standard_end, _ = EKS_VERSION_SUPPORT[EKS_DEFAULT_KUBERNETES_VERSION]
    assert standard_end > date(2026, 12, 2)
    assert eks_version_warning(EKS_DEFAULT_KUBERNETES_VERSION, date(2026, 12, 2)) is None


def test_versions_near_or_in_extended_support_are_warned() -> None:
    assert eks_version_warning("1.35", date(2027, 1, 26)) == (
        'Kubernetes 1.35 leaves EKS standard support on 2027-03-27 (60 days; extended support costs extra per '
        'cluster hour): plan the upgrade to the next minor version EKS releases (add its row to '
        "limits.EKS_VERSION_SUPPORT)"
    )
    assert eks_version_warning("1.34", date(2026, 11, 1)).endswith('plan the upgrade to "1.35"')
    assert eks_version_warning("1.35", date(2027, 1, 25)) is None  # 61 days before
    assert eks_version_warning("1.33", date(2026, 12, 2)) == (
        "Kubernetes 1.33 is in EKS extended support since 2026-07-29 (an extra price per cluster hour; "
        'auto-upgraded after 2027-07-29): set kubernetesVersion "1.35"'
    )


CALENDAR = [
    # version, end of standard support, end of extended support (EKS Kubernetes release calendar)
    ("1.29", "2025-03-23", "2026-03-23"),
    ("1.30", "2025-07-23", "2026-07-23"),
    ("1.31", "2025-11-26", "2026-11-26"),
    ("1.32", "2026-03-23", "2027-03-23"),
    ("1.33", "2026-07-29", "2027-07-29"),
    ("1.34", "2026-12-02", "2027-12-02"),
]


@pytest.mark.parametrize(("version", "standard_end", "extended_end"), CALENDAR)
def test_each_version_enters_extended_support_on_its_calendar_date(version: str, standard_end: str, extended_end: str) -> None:
    """The day before its standard support ends a version is warned about the coming end (1 day); on
    that day it is in extended support, with the date of the auto-upgrade."""
    day = date.fromisoformat(standard_end)
    assert eks_version_warning(version, date.fromordinal(day.toordinal() - 1)) == (
        f"Kubernetes {version} leaves EKS standard support on {standard_end} (1 days; extended support costs "
        'extra per cluster hour): plan the upgrade to "1.35"'
    )
    assert eks_version_warning(version, day) == (
        f"Kubernetes {version} is in EKS extended support since {standard_end} (an extra price per cluster hour; "
        f'auto-upgraded after {extended_end}): set kubernetesVersion "1.35"'
    )


def test_the_newest_version_in_extended_support_is_not_told_to_move_to_itself() -> None:
    """1.35 is the newest row: in extended support the fix is the next release, not 1.35 again."""
    assert eks_version_warning("1.35", date(2027, 3, 26)) == (
        "Kubernetes 1.35 leaves EKS standard support on 2027-03-27 (1 days; extended support costs extra per "
        "cluster hour): plan the upgrade to the next minor version EKS releases (add its row to "
        "limits.EKS_VERSION_SUPPORT)"
    )
    assert eks_version_warning("1.35", date(2027, 3, 27)) == (
        "Kubernetes 1.35 is in EKS extended support since 2027-03-27 (an extra price per cluster hour; "
        "auto-upgraded after 2028-03-27): set kubernetesVersion the next minor version EKS releases (add its "
        "row to limits.EKS_VERSION_SUPPORT)"
    )


def test_a_version_not_in_the_calendar_gets_no_warning() -> None:
    """The loader refuses such a version (kubernetesVersion check); the warning has nothing to say."""
    assert eks_version_warning("1.19", date(2026, 12, 2)) is None


def test_the_shipped_stacks_pin_the_default_version() -> None:
    for stack in ("dev", "prod"):
        _, raw, _ = read_stack_config(PROJECT_DIR, stack)
        assert f'"kubernetesVersion": "{EKS_DEFAULT_KUBERNETES_VERSION}"' in raw["disagg:cluster"]


def test_an_engine_build_waiting_for_a_capacity_block_is_warned() -> None:
    """pulumi up awaits the engine build Job; on a Capacity Block that has not started its pod stays
    Pending, so the stack warns (prod builds on the on-demand h200 pool: no warning)."""
    from datetime import datetime, timezone

    from components.config import load_stack_config

    _, raw, _ = read_stack_config(PROJECT_DIR, "prod")
    before = datetime(2026, 11, 30, tzinfo=timezone.utc)
    assert not any("engines." in w for w in load_stack_config(raw).deploy_warnings(before))
    config = load_stack_config(raw)
    deployments = [
        d.model_copy(update={"workers": d.workers.model_copy(update={"pool": "h100"})}) if d.runtime == "engine" else d
        for d in config.deployments
    ]  # skips validation: the capacity check would object to a ninth node on h100
    moved = config.model_copy(update={"deployments": deployments})
    warnings = moved.deploy_warnings(before)
    assert [w for w in warnings if "engines." in w] == [
        "disagg:engines.llama-8b-tp2: its build Job runs on pool 'h100', whose Capacity Block starts "
        "2026-12-01T11:30:00+00:00: pulumi up waits for the build, which stays Pending until then and fails at "
        "its activeDeadlineSeconds: run pulumi up after the start, or build on a pool with capacity now"
    ]
    assert not any("engines." in w for w in moved.deploy_warnings(datetime(2026, 12, 2, tzinfo=timezone.utc)))
