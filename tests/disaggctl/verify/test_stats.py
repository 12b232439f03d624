import math
import random

import numpy as np
import pytest

from disaggctl.verify.stats import percentile, summarize


def test_percentile_interpolates_between_ranks():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile([4, 1, 3, 2], 100) == 4
    assert percentile([10, 20], 90) == pytest.approx(19.0)


def test_percentile_of_one_value_is_that_value():
    assert percentile([0.25], 99) == 0.25


@pytest.mark.parametrize("q", [0, 1, 37.5, 50, 90, 99, 100])
def test_percentile_matches_numpy_linear(q):
    rng = random.Random(q)
    values = [rng.expovariate(3.0) for _ in range(101)]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_does_not_reorder_its_input():
    values = [3.0, 1.0, 2.0]
    percentile(values, 50)
    assert values == [3.0, 1.0, 2.0]


@pytest.mark.parametrize("values,q", [([], 50), ([1.0], -1), ([1.0], 100.5), ([1.0, math.nan], 50)])
def test_percentile_rejects_bad_input(values, q):
    with pytest.raises(ValueError):
        percentile(values, q)


def test_summary_is_ordered_and_rounded():
    s = summarize([0.1, 0.2, 0.3, 0.4, 1.0])
    assert list(s) == ["count", "min", "mean", "p50", "p90", "p95", "p99", "max"]
    assert s["count"] == 5 and s["min"] == 0.1 and s["max"] == 1.0
    assert s["p50"] == 0.3 and s["mean"] == 0.4
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["max"]


def test_summary_of_nothing_is_null_not_zero():
    s = summarize([])
    assert s["count"] == 0
    assert all(s[k] is None for k in ("min", "mean", "p50", "p90", "p95", "p99", "max"))
