"""The message envelope: what parses, what is rejected and why."""

from __future__ import annotations

import json
import time

import pytest

from octobot.envelope import DEFAULT_MAX_BYTES, BadMessage, Envelope


def test_minimal_message_gets_defaults() -> None:
    env = Envelope.parse(b'{"task": "x"}')
    assert env == Envelope(task="x", args=[], kwargs={}, id="", enqueued_at=0.0, attempt=0, max_retries=None)


def test_parse_accepts_str_and_all_fields() -> None:
    body = json.dumps({"task": "billing.charge", "args": [1, "a"], "kwargs": {"k": [2]}, "id": "abc",
                       "enqueued_at": 1764100000.5, "attempt": 2, "max_retries": 0})
    env = Envelope.parse(body)
    assert (env.task, env.args, env.kwargs, env.id) == ("billing.charge", [1, "a"], {"k": [2]}, "abc")
    assert (env.enqueued_at, env.attempt, env.max_retries) == (1764100000.5, 2, 0)


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json at all", "not JSON"),
    (b'{"task": "x"', "not JSON"),
    (b'{"task": "\xff\xfe"}', "not JSON"),  # invalid UTF-8
    (b"", "not JSON"),
    (b'["task", "x"]', "not a JSON object"),
    (b'"x"', "not a JSON object"),
    (b"{}", "missing 'task'"),
    (b'{"args": []}', "missing 'task'"),
    (b'{"task": ""}', "'task'"),
    (b'{"task": 42}', "'task'"),
    (b'{"task": null}', "'task'"),
    (b'{"task": "x", "args": {"a": 1}}', "'args' is not a list"),
    (b'{"task": "x", "args": "a"}', "'args' is not a list"),
    (b'{"task": "x", "kwargs": [1]}', "'kwargs' is not an object"),
    (b'{"task": "x", "max_retries": -1}', "'max_retries'"),
    (b'{"task": "x", "max_retries": "3"}', "'max_retries'"),
    (b'{"task": "x", "attempt": "1"}', "'attempt'"),
    (b'{"task": "x", "enqueued_at": "yesterday"}', "'enqueued_at'"),
    (b'{"task": "x", "args": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deep"),
])
def test_bad_messages_are_rejected_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadMessage) as info:
        Envelope.parse(body)
    assert reason in info.value.reason
    assert str(info.value) == info.value.reason
    assert isinstance(info.value, ValueError)


def test_oversized_body_is_rejected_before_decoding() -> None:
    body = json.dumps({"task": "x", "args": ["a" * 200]}).encode()
    assert Envelope.parse(body, max_bytes=len(body)).task == "x"  # exactly at the limit is fine
    with pytest.raises(BadMessage) as info:
        Envelope.parse(body, max_bytes=len(body) - 1)
    assert str(len(body)) in info.value.reason and "limit" in info.value.reason
    # Even a body that is not JSON is reported as oversized, not as garbage.
    with pytest.raises(BadMessage, match="over the 10-byte limit"):
        Envelope.parse(b"\xff" * 11, max_bytes=10)


def test_default_limit_is_one_mebibyte() -> None:
    big = b'{"task":"x","args":["' + b"a" * DEFAULT_MAX_BYTES + b'"]}'
    with pytest.raises(BadMessage, match="limit"):
        Envelope.parse(big)


def test_encode_parse_round_trip() -> None:
    env = Envelope.new("billing.charge", args=[42, {"n": None}], kwargs={"currency": "EUR", "é": "ü"},
                       max_retries=7)
    again = Envelope.parse(env.encode())
    assert again == env
    assert Envelope.parse(again.next_attempt().encode()).attempt == 1


def test_round_trip_without_max_retries_leaves_it_unset() -> None:
    env = Envelope.new("t")
    assert "max_retries" not in json.loads(env.encode())
    assert Envelope.parse(env.encode()).max_retries is None


def test_encode_is_compact_utf8_json() -> None:
    body = Envelope(task="t", kwargs={"x": "ü"}).encode()
    assert isinstance(body, bytes)
    data = json.loads(body.decode("utf-8"))
    assert data == {"task": "t", "args": [], "kwargs": {"x": "ü"}, "id": "", "enqueued_at": 0.0, "attempt": 0}
    assert b" " not in body


def test_new_fills_id_and_time() -> None:
    a, b = Envelope.new("t"), Envelope.new("t")
    assert a.id and b.id and a.id != b.id
    assert abs(a.enqueued_at - time.time()) < 5


def test_completed_fills_missing_id_and_enqueued_at() -> None:
    before = time.time()
    env = Envelope.parse(b'{"task": "x"}').completed()
    assert len(env.id) >= 16
    assert before <= env.enqueued_at <= time.time()
    assert Envelope.parse(b'{"task": "x"}').completed().id != env.id


def test_completed_keeps_existing_id_and_enqueued_at() -> None:
    env = Envelope(task="x", id="keep-me", enqueued_at=123.5)
    done = env.completed()
    assert (done.id, done.enqueued_at) == ("keep-me", 123.5)
    assert done == env


def test_next_attempt_increments_and_keeps_the_rest() -> None:
    env = Envelope.new("x", args=[1], max_retries=2)
    nxt = env.next_attempt()
    assert nxt.attempt == 1 and nxt.next_attempt().attempt == 2
    assert (nxt.id, nxt.args, nxt.max_retries, nxt.enqueued_at) == (env.id, env.args, env.max_retries, env.enqueued_at)
    assert env.attempt == 0, "envelopes are immutable"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_enqueued_at_is_rejected(value: str) -> None:
    with pytest.raises(BadMessage, match=f"not JSON: {value} is not valid JSON"):
        Envelope.parse(f'{{"task": "x", "enqueued_at": {value}}}'.encode())


@pytest.mark.parametrize("body", [b'{"task": "x", "max_retries": true}', b'{"task": "x", "attempt": false}',
                                  b'{"task": "x", "attempt": -5}'])
def test_booleans_and_negative_attempt_are_rejected(body: bytes) -> None:
    with pytest.raises(BadMessage):
        Envelope.parse(body)


def test_size_limit_counts_bytes_for_str_bodies() -> None:
    body = '{"task": "x", "args": ["' + "é" * 600 + '"]}'
    assert len(body.encode()) > 1000 > len(body)
    with pytest.raises(BadMessage, match="limit"):
        Envelope.parse(body, max_bytes=1000)
