"""Test-wide settings: the capacity clock is pinned, so the committed prod's Capacity Block
(1–15 December 2026) is judged the same way whenever the suite runs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from components.config import capacity

PINNED_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def pinned_capacity_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capacity, "utc_now", lambda: PINNED_NOW)
