"""The API's shape: buf lint (STANDARD) and no breaking change against the
previous commit, and the internal SampleColumns laid out as QueueSample is."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from octobot.internal.v1 import sample_columns_pb2
from octobot.v1 import stats_pb2

ROOT = Path(__file__).resolve().parents[1]
# A commit may break the API on purpose (it is 0.x) by saying why in a line of its message.
DELIBERATE = "API-Break:"

needs_buf = pytest.mark.skipif(shutil.which("buf") is None, reason="buf is not installed (.ci/run installs it)")


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@needs_buf
def test_buf_lint_is_clean() -> None:
    done = subprocess.run(["buf", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_buf
def test_no_breaking_change_against_the_previous_commit() -> None:
    if _git("rev-parse", "--verify", "HEAD~1").returncode != 0:
        pytest.skip("no previous commit here (a shallow clone)")
    if DELIBERATE in _git("log", "-1", "--format=%B").stdout:
        pytest.skip("the last commit breaks the API on purpose and says why")
    done = subprocess.run(["buf", "breaking", "--against", ".git#ref=HEAD~1,subdir=proto"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _same_layout(view: Descriptor, message: Descriptor) -> None:
    """Each field of ``message`` has a repeated twin in ``view``: same number, name and wire type."""
    assert {f.number for f in view.fields} == {f.number for f in message.fields}, view.full_name
    for field in message.fields:
        twin = view.fields_by_number[field.number]
        assert twin.name == field.name, (view.full_name, field.name)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            assert twin.type == FieldDescriptor.TYPE_MESSAGE and not twin.is_repeated
            _same_layout(twin.message_type, field.message_type)
        else:
            assert twin.is_repeated and twin.type == field.type, (view.full_name, field.name)


def test_sample_columns_is_laid_out_as_queue_sample() -> None:
    _same_layout(sample_columns_pb2.SampleColumns.DESCRIPTOR, stats_pb2.QueueSample.DESCRIPTOR)


def test_samples_end_to_end_parse_as_columns() -> None:
    a = stats_pb2.QueueSample(queue="a", succeeded=3, backlog=-1, run_time=stats_pb2.Histogram(indexes=[1, 2],
                                                                                               counts=[2, 1]))
    b = stats_pb2.QueueSample(queue="b", failed=4, implausible_times=1, run_time=stats_pb2.Histogram(indexes=[-5],
                                                                                                     counts=[9]))
    cols = sample_columns_pb2.SampleColumns.FromString(a.SerializeToString() + b.SerializeToString())
    assert (list(cols.queue), list(cols.succeeded), list(cols.failed), list(cols.backlog)) == (
        ["a", "b"], [3], [4], [-1])
    assert (list(cols.run_time.indexes), list(cols.run_time.counts), list(cols.implausible_times)) == (
        [1, 2, -5], [2, 1, 9], [1])
