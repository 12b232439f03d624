"""Kubernetes quantities (resources.cpu/memory, shmSize): read as Kubernetes reads them, refused with
their message when they are no request a node can hold."""

from __future__ import annotations

from decimal import Decimal

import pytest

from components.config.validation import parse_quantity, quantity_problem


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", "3"),
        ("3n", "3e-9"),
        ("3u", "3e-6"),
        ("3m", "0.003"),
        ("3k", "3000"),
        ("3M", "3000000"),
        ("3G", "3000000000"),
        ("3T", "3000000000000"),
        ("3P", "3000000000000000"),
        ("3E", "3000000000000000000"),  # exa, not an exponent
        ("3Ki", "3072"),
        ("3Mi", "3145728"),  # 3 × 2^20
        ("3Gi", "3221225472"),
        ("3Ti", "3298534883328"),
        ("3Pi", "3377699720527872"),
        ("3Ei", "3458764513820540928"),  # 3 × 2^60
        ("3e3", "3000"),
        ("3E-3", "0.003"),
        ("+1.5", "1.5"),
        (".5Gi", "536870912"),
        (" 2 ", "2"),
    ],
)
def test_quantities_are_read_with_their_suffix(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize(
    "text",
    [
        "eight",
        "1.2.3",
        "1e",  # an exponent needs digits
        "1mi",
        "1e99999999999999999999",  # too large for a Decimal: refused, not a crash
        "1" * 65,  # longer than 64 characters
    ],
)
def test_what_is_no_quantity_reads_as_none(text: str) -> None:
    assert parse_quantity(text) is None


def test_a_quantity_may_have_64_characters() -> None:
    assert parse_quantity("1" + "0" * 63) == Decimal(10) ** 63


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("x", "cpu", "k: 'x' is not a Kubernetes quantity (e.g. 8 or 500m): fix it"),
        ("x", "memory", "k: 'x' is not a Kubernetes quantity (e.g. 16Gi): fix it"),
        ("0", "cpu", "k: '0' must be more than zero: fix it"),
        ("0", "memory", "k: '0' must be more than zero: fix it"),
        ("1m", "cpu", None),  # Kubernetes' CPU resolution
        ("1", "cpu", None),
        ("1920", "cpu", None),
        ("1921", "cpu", "k: '1921' is more CPU than any node has (1920 vCPUs): lower it"),
        ("0.0009", "cpu", "k: '0.0009' is below Kubernetes' CPU resolution of 1m: raise it"),
        ("1Mi", "memory", None),
        ("1048575", "memory", "k: '1048575' is less than 1Mi (a lowercase 'm' means thousandths of a byte): use Mi or Gi"),
        ("500u", "memory", "k: '500u' is less than 1Mi (a lowercase 'm' means thousandths of a byte): use Mi or Gi"),
        ("32Ti", "memory", None),
        ("33Ti", "memory", "k: '33Ti' is more memory than any node has (32Ti): lower it"),
    ],
)
def test_requests(text: str, kind: str, expected: str | None) -> None:
    assert quantity_problem("k", text, kind) == expected
