from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.runtime.procs import Cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    try:
        yield c
    finally:
        c.close()
