"""The instance-type table and the EFA interface layout (pure, no mocks)."""

from __future__ import annotations

import pytest

from components.config.instance_types import (
    INSTANCE_TYPES,
    NetworkInterfaceSlot,
    efa_interface_layout,
    lookup_instance_type,
)


@pytest.mark.parametrize(
    ("name", "gpus", "gpu_memory_gib", "arch", "efa"),
    [
        ("p4d.24xlarge", 8, 40, "ampere", 4),
        ("p4de.24xlarge", 8, 80, "ampere", 4),
        ("p5.48xlarge", 8, 80, "hopper", 32),
        ("p5e.48xlarge", 8, 141, "hopper", 32),
        ("p5en.48xlarge", 8, 141, "hopper", 16),
        ("p6-b200.48xlarge", 8, 179, "blackwell", 8),
        ("g5.xlarge", 1, 24, "ampere", 0),
        ("g6e.48xlarge", 8, 48, "ada", 4),
    ],
)
def test_table_facts(name: str, gpus: int, gpu_memory_gib: int, arch: str, efa: int) -> None:
    instance = lookup_instance_type(name)
    assert (instance.gpus, instance.gpu_memory_gib, instance.gpu_arch, instance.max_efa_interfaces) == (
        gpus,
        gpu_memory_gib,
        arch,
        efa,
    )
    assert instance.supports_efa is (efa > 0)


def test_every_efa_interface_needs_its_own_network_card() -> None:
    for instance in INSTANCE_TYPES.values():
        assert instance.max_efa_interfaces <= instance.network_cards, instance.name


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ValueError) as error:
        lookup_instance_type("p9.huge")
    assert str(error.value).startswith("instance type 'p9.huge' is not a GPU instance type this project knows: use one of g5.12xlarge, ")
    assert str(error.value).endswith(" (or add it to components/config/instance_types.py)")
    assert "p5.48xlarge" in str(error.value)


def test_a_mistyped_type_gets_the_closest_one() -> None:
    with pytest.raises(ValueError) as error:
        lookup_instance_type("p4d.48xlarge")
    assert str(error.value) == (
        "instance type 'p4d.48xlarge' is not a GPU instance type this project knows: did you mean "
        "'p4d.24xlarge'? (or add it to components/config/instance_types.py)"
    )


def test_p5_layout_has_32_interfaces_one_per_card() -> None:
    layout = efa_interface_layout(lookup_instance_type("p5.48xlarge"))
    assert len(layout) == 32
    assert [slot.network_card_index for slot in layout] == list(range(32))
    assert layout[0] == NetworkInterfaceSlot(0, 0, "efa")
    assert {(slot.device_index, slot.interface_type) for slot in layout[1:]} == {(1, "efa-only")}


def test_p4d_layout_has_4_interfaces() -> None:
    layout = efa_interface_layout(lookup_instance_type("p4d.24xlarge"))
    assert layout == [
        NetworkInterfaceSlot(0, 0, "efa"),
        NetworkInterfaceSlot(1, 1, "efa-only"),
        NetworkInterfaceSlot(2, 1, "efa-only"),
        NetworkInterfaceSlot(3, 1, "efa-only"),
    ]


def test_single_efa_type_has_only_the_primary_interface() -> None:
    assert efa_interface_layout(lookup_instance_type("g6e.12xlarge")) == [NetworkInterfaceSlot(0, 0, "efa")]


def test_layout_of_a_type_without_efa_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^instance type 'g5\.xlarge' has no EFA interfaces$"):
        efa_interface_layout(lookup_instance_type("g5.xlarge"))
