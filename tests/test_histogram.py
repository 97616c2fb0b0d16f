"""Mergeable log-bucketed histograms: accuracy, merging, wire format."""

from __future__ import annotations

import math
import random

import pytest

from octobot.histogram import DEFAULT_ACCURACY, Histogram
from octobot.v1 import stats_pb2

QUANTILES = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0]


def exact(sorted_values: list[float], q: float) -> float:
    """The value of rank floor(q * (n - 1)): the element the histogram reports a bucket of."""
    return sorted_values[int(math.floor(q * (len(sorted_values) - 1)))]


def lognormal(seed: int, n: int, mu: float = math.log(0.05), sigma: float = 1.5) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(mu, sigma) for _ in range(n)]


def histogram_of(values: list[float], accuracy: float = DEFAULT_ACCURACY) -> Histogram:
    h = Histogram(accuracy)
    for v in values:
        h.record(v)
    return h


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_within_one_percent(seed: int) -> None:
    values = lognormal(seed, 20_000)
    h = histogram_of(values)
    ordered = sorted(values)
    for q in QUANTILES:
        want = exact(ordered, q)
        got = h.quantile(q)
        assert abs(got - want) <= 0.01 * want * (1 + 1e-9), f"q={q}: got {got}, exact {want}"
    assert h.count == len(values)
    assert h.sum == pytest.approx(sum(values))


def test_quantiles_track_a_coarser_accuracy() -> None:
    values = lognormal(7, 5_000, sigma=3.0)
    h = histogram_of(values, accuracy=0.05)
    ordered = sorted(values)
    worst = max(abs(h.quantile(q) - exact(ordered, q)) / exact(ordered, q) for q in QUANTILES)
    assert worst <= 0.05 * (1 + 1e-9)
    # Coarser accuracy means fewer buckets than the 1 % histogram needs.
    assert len(h.buckets) < len(histogram_of(values).buckets)


def test_single_value_reads_back_within_accuracy() -> None:
    for v in (1e-6, 0.0123, 1.0, 42.0, 3600.0):
        h = histogram_of([v])
        for q in (0.0, 0.5, 1.0):
            assert h.quantile(q) == pytest.approx(v, rel=0.01)


def test_merge_equals_histogram_of_all_values() -> None:
    a_values, b_values = lognormal(10, 5_000), lognormal(11, 3_000, mu=math.log(0.2), sigma=0.5)
    b_values += [0.0] * 17
    a, b = histogram_of(a_values), histogram_of(b_values)
    a.merge(b)
    whole = histogram_of(a_values + b_values)
    assert a.buckets == whole.buckets
    assert (a.count, a.zero_count) == (whole.count, whole.zero_count) == (8_017, 17)
    assert a.sum == pytest.approx(whole.sum)
    for q in QUANTILES:
        assert a.quantile(q) == whole.quantile(q)


def test_merge_is_not_an_average_of_percentiles() -> None:
    fast, slow = histogram_of([0.001] * 99), histogram_of([1.0])
    merged = histogram_of([])
    merged.merge(fast)
    merged.merge(slow)
    assert merged.quantile(0.5) == pytest.approx(0.001, rel=0.01)
    assert merged.quantile(1.0) == pytest.approx(1.0, rel=0.01)


def test_merge_leaves_the_other_histogram_alone() -> None:
    a, b = histogram_of([1.0, 2.0]), histogram_of([3.0])
    before = dict(b.buckets)
    a.merge(b)
    assert dict(b.buckets) == before and b.count == 1


def test_merging_different_accuracy_raises() -> None:
    a, b = histogram_of([1.0]), histogram_of([1.0], accuracy=0.02)
    with pytest.raises(ValueError, match="accuracy"):
        a.merge(b)
    assert a.count == 1, "a refused merge changes nothing"


def test_proto_round_trip() -> None:
    values = lognormal(20, 2_000) + [0.0, 0.0, 1e-12]
    h = histogram_of(values)
    msg = h.to_proto()
    assert isinstance(msg, stats_pb2.Histogram)
    assert list(msg.indexes) == sorted(msg.indexes)
    back = Histogram.from_proto(stats_pb2.Histogram.FromString(msg.SerializeToString()))
    assert back.accuracy == h.accuracy
    assert back.buckets == h.buckets
    assert (back.count, back.zero_count) == (h.count, 3)
    assert back.sum == h.sum
    for q in QUANTILES:
        assert back.quantile(q) == h.quantile(q)


def test_proto_round_trip_keeps_accuracy() -> None:
    h = histogram_of([0.5, 5.0], accuracy=0.02)
    back = Histogram.from_proto(h.to_proto())
    assert back.accuracy == pytest.approx(0.02)
    assert back.quantile(1.0) == pytest.approx(5.0, rel=0.02)


def test_empty_histogram() -> None:
    h = Histogram()
    assert h.count == 0 and h.quantile(0.5) == 0.0 and h.quantile(1.0) == 0.0
    back = Histogram.from_proto(h.to_proto())
    assert back.count == 0 and back.quantile(0.99) == 0.0
    # An empty proto (all defaults) decodes with the default accuracy.
    assert Histogram.from_proto(stats_pb2.Histogram()).accuracy == DEFAULT_ACCURACY


def test_zeros_count_and_sort_first() -> None:
    h = histogram_of([0.0] * 3 + [1e-10] + [2.0] * 6)
    assert (h.count, h.zero_count) == (10, 4)
    assert h.quantile(0.0) == 0.0
    assert h.quantile(0.3) == 0.0
    assert h.quantile(0.5) == pytest.approx(2.0, rel=0.01)
    assert h.quantile(1.0) == pytest.approx(2.0, rel=0.01)


def test_only_zeros() -> None:
    h = histogram_of([0.0, 0.0])
    assert h.quantile(1.0) == 0.0
    assert Histogram.from_proto(h.to_proto()).zero_count == 2


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_values_do_not_raise(value: float) -> None:
    h = histogram_of([1.0])
    h.record(value)
    assert math.isfinite(h.quantile(1.0))
