"""Checks of nodes' stats reports, many reports at once.

A report must look like one a real node makes (node/metrics.py) before its
samples are merged with every other node's. The samples of a batch of
reports are read the way the merge reads them, as one SampleColumns (so what
a node could slip in as unknown fields is checked too): one parse and a few
numpy operations per batch. Turning a protobuf field into an array costs
about as much for ten values as for ten thousand, so checking reports one
by one cost more than ingesting them.

After each sample a sentinel sample is laid, holding in every field a value
no real sample holds. Each sample's values then lie between two sentinels,
and a sample with a value too many (a bucket index without its count would
shift every other node's buckets in the same merge) shows where the
sentinels of two fields no longer stand together. When the sentinels of a
batch do not add up at all (some sample holds a sentinel's value) or a
fault cannot be placed, the batch is checked again in halves, down to the
report at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from octobot.coordinator.limits import (
    MAX_BACKLOG, MAX_COUNT, MAX_GAUGE, MAX_INDEX, MAX_REPORT_AGE, MAX_REPORT_BUCKETS,
    MAX_SAMPLES, MIN_INDEX, Invalid, valid_queue)
from octobot.histogram import DEFAULT_ACCURACY, MAX_VALUE
from octobot.outcomes import LATENCIES, OUTCOMES, SAMPLE_COUNTS
from octobot.internal.v1 import sample_columns_pb2
from octobot.v1 import node_pb2

HISTOGRAMS = LATENCIES
GAUGES = ("in_flight", "busy_slots", "backlog")
# The values of a sample that Samples.values holds, in this order.
SCALARS = (*SAMPLE_COUNTS, *GAUGES)
# A sum of values each at most MAX_VALUE, give or take float rounding.
SUM_SLACK = 1 + 1e-6
# Samples checked in one batch: large enough that the per-call costs vanish,
# small enough that a batch does not hold the event loop long.
BATCH_SAMPLES = 2_000

# Values no real sample holds: each is out of its field's bounds.
SENTINEL_NAME = "\x00"
SENTINEL_COUNT = 2**62
SENTINEL_GAUGE = 2**32 - 1
SENTINEL_BACKLOG = -(2**62)
SENTINEL_INDEX = 2**30
SENTINEL_SUM = -1.0
_SENTINEL_HISTOGRAM = sample_columns_pb2.HistogramColumns(
    indexes=[SENTINEL_INDEX], counts=[SENTINEL_COUNT], zero_count=[SENTINEL_COUNT], sum=[SENTINEL_SUM])
_SENTINEL = sample_columns_pb2.SampleColumns(
    queue=[SENTINEL_NAME], **{name: [SENTINEL_COUNT] for name in OUTCOMES},
    in_flight=[SENTINEL_GAUGE], busy_slots=[SENTINEL_GAUGE], backlog=[SENTINEL_BACKLOG],
    implausible_times=[SENTINEL_COUNT], **{kind: _SENTINEL_HISTOGRAM for kind in HISTOGRAMS}).SerializeToString()
# field -> (sentinel, numpy type, lowest and highest value, reason)
_SCALARS = {
    **{name: (SENTINEL_COUNT, np.uint64, 0, MAX_COUNT, "counts") for name in SAMPLE_COUNTS},
    "in_flight": (SENTINEL_GAUGE, np.uint64, 0, MAX_GAUGE, "gauges"),
    "busy_slots": (SENTINEL_GAUGE, np.uint64, 0, MAX_GAUGE, "gauges"),
    "backlog": (SENTINEL_BACKLOG, np.int64, -1, MAX_BACKLOG, "gauges"),
}
assert tuple(_SCALARS) == SCALARS  # the columns are read in this order

# Marks the reports with a sample in a mask over samples as failed, for a reason and with a message.
Blame = Callable[[np.ndarray, str, str], None]


@dataclass(frozen=True, slots=True)
class Samples:
    """The samples of one checked report, in the order sent."""

    at: int | None  # the report's second, None if it has none
    queues: list[str]
    raws: list[bytes]  # each sample serialized: what the merges read
    values: list[list[int]]  # each sample's SCALARS


def sample_bytes(report: node_pb2.StatsReport) -> list[bytes]:
    """Each sample of a report serialized."""
    return [s.SerializeToString() for s in report.samples]


def check_report(report: node_pb2.StatsReport, now: float) -> Samples:
    """One report's samples; raises Invalid if it must not be merged."""
    result = check_reports([report], [now])[0]
    if isinstance(result, Invalid):
        raise result
    return result


def check_reports(reports: Sequence[node_pb2.StatsReport], nows: Sequence[float]) -> list[Samples | Invalid]:
    """Each report's samples, or why it must not be merged; ``nows``: when each arrived."""
    results: list[Samples | Invalid | None] = [None] * len(reports)
    batch: list[int] = []
    raws: list[list[bytes]] = []
    size = 0
    for i, (report, now) in enumerate(zip(reports, nows)):
        try:
            _check_whole(report, now)
        except Invalid as exc:
            results[i] = exc
            continue
        batch.append(i)
        raws.append(sample_bytes(report))
        size += len(report.samples)
        if size >= BATCH_SAMPLES:
            _check_batch(reports, batch, raws, results)
            batch, raws, size = [], [], 0
    if batch:
        _check_batch(reports, batch, raws, results)
    return results  # type: ignore[return-value]  # every slot is filled


def _check_whole(report: node_pb2.StatsReport, now: float) -> None:
    if report.HasField("at") and report.at.seconds < now - MAX_REPORT_AGE:
        raise Invalid("time", f"report at {report.at.seconds} is {now - report.at.seconds:.0f} s old; "
                              f"at most {MAX_REPORT_AGE} s (is the node's clock behind?)")
    if len(report.samples) > MAX_SAMPLES:
        raise Invalid("samples", f"{len(report.samples)} samples in one report; at most {MAX_SAMPLES}")


class _Unplaced(Invalid):
    """A fault in a batch that no single sample can be blamed for."""


def _check_batch(reports: Sequence[node_pb2.StatsReport], batch: list[int], raws: list[list[bytes]],
                 results: list[Samples | Invalid | None]) -> None:
    """Check reports ``batch`` (indexes into ``reports``), whose samples are ``raws``, into ``results``."""
    try:
        found = _check_columns(raws)
    except _Unplaced as exc:
        if len(batch) == 1:
            results[batch[0]] = Invalid(exc.reason, str(exc))
            return
        half = len(batch) // 2
        _check_batch(reports, batch[:half], raws[:half], results)
        _check_batch(reports, batch[half:], raws[half:], results)
        return
    errors, queues, values = found
    start = 0
    for i, report_raws, error in zip(batch, raws, errors):
        end = start + len(report_raws)
        if error is not None:
            results[i] = error
        else:
            report = reports[i]
            results[i] = Samples(report.at.seconds if report.HasField("at") else None,
                                 queues[start:end], report_raws, values[start:end])
        start = end


def _check_columns(raws: list[list[bytes]]) -> tuple[list[Invalid | None], list[str], list[list[int]]]:
    """Each report's fault (None if it has none), every sample's queue and SCALARS."""
    n = sum(map(len, raws))
    errors: list[Invalid | None] = [None] * len(raws)
    if n == 0:
        return errors, [], []
    owner = np.repeat(np.arange(len(raws)), [len(r) for r in raws])  # sample -> report

    def blame(bad: np.ndarray, reason: str, message: str) -> None:
        """Reports with a sample in ``bad`` (a mask over samples) fail, unless they failed already."""
        if bad.any():
            for r in np.unique(owner[bad]).tolist():
                errors[r] = errors[r] or Invalid(reason, message)

    cols = sample_columns_pb2.SampleColumns.FromString(_SENTINEL.join(x for r in raws for x in r) + _SENTINEL)
    queues = _names(cols.queue, n)
    blame(np.array([not valid_queue(q) for q in queues]), "queue", "an invalid queue name")
    columns = []
    for name, (sentinel, dtype, low, high, reason) in _SCALARS.items():
        values, many = _per_sample(np.array(getattr(cols, name), dtype=dtype), sentinel, n, reason, name)
        blame(many, reason, f"a sample with more than one {name}")
        blame((values < low) | (values > high), reason, f"{name} outside {low:,}..{high:,}")
        columns.append(values.astype(np.int64))
    table = np.stack(columns, axis=1)
    finished = table[:, 0] + table[:, 1]
    buckets = np.zeros(n, dtype=np.int64)
    for kind in HISTOGRAMS:
        buckets += _check_histogram(getattr(cols, kind), n, finished, blame, kind)
    per_report = np.bincount(owner, weights=buckets, minlength=len(raws))
    for r in np.flatnonzero(per_report > MAX_REPORT_BUCKETS).tolist():
        errors[r] = errors[r] or Invalid("histogram", f"{int(per_report[r])} histogram buckets in one report; "
                                                      f"at most {MAX_REPORT_BUCKETS}")
    return errors, queues, table.tolist()


def _names(names: Sequence[str], n: int) -> list[str]:
    """Each sample's queue name: one, then the sentinel's."""
    listed = list(names)
    if len(listed) != 2 * n or any(q != SENTINEL_NAME for q in listed[1::2]):
        raise _Unplaced("queue", f"{n} samples with {len(listed) - n} queue names (an empty or repeated one)")
    return listed[0::2]


def _per_sample(values: np.ndarray, sentinel: int | float, n: int, reason: str,
                name: str) -> tuple[np.ndarray, np.ndarray]:
    """A field's value in each sample (0 where absent, as on the wire) and
    the mask of samples holding more than one."""
    ends = np.flatnonzero(values == sentinel)
    if len(ends) != n:
        raise _Unplaced(reason, f"{name}: a sample holds a value no real one can")
    held = np.diff(ends, prepend=-1) - 1
    out = np.zeros(n, dtype=values.dtype)
    one = held > 0
    out[one] = values[ends[one] - 1]  # the last one, as a QueueSample reads it
    return out, held > 1


def _check_histogram(c: sample_columns_pb2.HistogramColumns, n: int, finished: np.ndarray, blame: Blame,
                     kind: str) -> np.ndarray:
    """Check one kind of every sample's histogram; returns each sample's bucket count."""
    # 0 is the default accuracy, left out on the wire; merges skip any other.
    if len(c.relative_accuracy) and (np.array(c.relative_accuracy) != DEFAULT_ACCURACY).any():
        raise _Unplaced("histogram", f"{kind}: a relative_accuracy other than {DEFAULT_ACCURACY}")
    indexes = np.array(c.indexes, dtype=np.int64)
    counts = np.array(c.counts, dtype=np.uint64)
    ends = indexes == SENTINEL_INDEX
    if len(indexes) != len(counts) or not np.array_equal(ends, counts == SENTINEL_COUNT) \
            or np.count_nonzero(ends) != n:
        raise _Unplaced("histogram", f"{kind}: a histogram whose indexes and counts differ in number")
    # Each element's sample: the sentinels before it.
    sample = np.cumsum(ends) - ends
    stops = np.flatnonzero(ends)

    def by_sample(bad_elements: np.ndarray) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[sample[bad_elements]] = True
        return mask

    blame(by_sample(~ends & ((indexes < MIN_INDEX) | (indexes > MAX_INDEX))), "histogram",
          f"{kind}: bucket indexes outside {MIN_INDEX}..{MAX_INDEX}")
    blame(by_sample(~ends & (counts > MAX_COUNT)), "histogram", f"{kind}: a bucket count above {MAX_COUNT:,}")
    # Values per sample: the running sum of counts (the sentinels' left out)
    # between one sentinel and the next; any wrap-around is in bad samples.
    running = np.cumsum(np.where(ends, np.uint64(0), counts), dtype=np.uint64)[stops]
    in_buckets = np.diff(running, prepend=np.uint64(0))
    zeros, many_zeros = _per_sample(np.array(c.zero_count, dtype=np.uint64), SENTINEL_COUNT, n, "histogram",
                                     f"{kind}.zero_count")
    sums, many_sums = _per_sample(np.array(c.sum, dtype=np.float64), SENTINEL_SUM, n, "histogram", f"{kind}.sum")
    blame(many_zeros | many_sums, "histogram", f"{kind}: a histogram with more than one zero_count or sum")
    # Each finished task is recorded at most once in each kind of histogram
    # (each part is compared alone too, so that no sum wraps around).
    done = finished.astype(np.uint64)
    values = in_buckets + zeros
    blame((in_buckets > done) | (zeros > done) | (values > done), "histogram",
          f"{kind}: more values than tasks finished")
    # A NaN fails both comparisons.
    with np.errstate(invalid="ignore"):
        blame(~((sums >= 0.0) & (sums <= values.astype(np.float64) * MAX_VALUE * SUM_SLACK)), "histogram",
              f"{kind}: a sum that is negative, not finite or above {MAX_VALUE:g} s a value")
    return np.diff(stops, prepend=-1) - 1
