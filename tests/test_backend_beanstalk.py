"""Beanstalk-specific behaviour, against the real beanstalkd at 127.0.0.1:11300
(and, for restarts and small job sizes, beanstalkd processes of our own)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import greenstalk
import pytest

from octobot.backends import Backend, BrokerUnavailable, Delivery, open_backend
from octobot.backends.beanstalk import BeanstalkBackend
from octobot.envelope import Envelope

ADDRESS = ("127.0.0.1", 11300)
URL = "beanstalk://127.0.0.1:11300"


def _up(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _up(ADDRESS), reason=f"no beanstalkd at {URL}")

Opener = Callable[..., Backend]


@pytest.fixture
def queue() -> Iterator[str]:
    """A unique queue name; its tubes are emptied afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    cleaner = open_backend("beanstalk", name, URL)
    cleaner.purge()
    cleaner.dead_purge()
    cleaner.close()


@pytest.fixture
def opener() -> Iterator[Opener]:
    """Opens backends and closes them all at the end."""
    opened: list[Backend] = []

    def open_(queue: str, url: str = URL, connections: int = 4, visibility_timeout: float = 30.0) -> Backend:
        backend = open_backend("beanstalk", queue, url, {"connections": str(connections)},
                               visibility_timeout=visibility_timeout)
        opened.append(backend)
        return backend

    yield open_
    for backend in opened:
        backend.close()


@pytest.fixture
def beanstalk() -> Iterator[greenstalk.Client[bytes]]:
    """A plain client, as an operator's tool or a producer in another language would use."""
    with greenstalk.Client(ADDRESS, encoding=None) as client:
        yield client


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.body for d in deliveries]


class Beanstalkd:
    """A beanstalkd process of our own on a free port, to stop and start at will."""

    def __init__(self, *args: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.args = args
        self.url = f"beanstalk://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["beanstalkd", "-l", "127.0.0.1", "-p", str(self.port), *self.args])
        deadline = time.monotonic() + 5
        while not _up(("127.0.0.1", self.port)):
            assert time.monotonic() < deadline, "beanstalkd did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def own_beanstalkd() -> Iterator[Callable[..., Beanstalkd]]:
    if shutil.which("beanstalkd") is None:
        pytest.skip("no beanstalkd executable")
    started: list[Beanstalkd] = []

    def start(*args: str) -> Beanstalkd:
        server = Beanstalkd(*args)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_one_command_producer(queue: str, opener: Opener, beanstalk: greenstalk.Client[bytes]) -> None:
    q = opener(queue)
    beanstalk.use(queue)
    beanstalk.put(b'{"task":"emails.send","args":["a@b.c"]}', priority=0, delay=0, ttr=60)
    [d] = q.fetch(10, 1.0)
    envelope = Envelope.parse(d.body)
    assert (envelope.task, envelope.args) == ("emails.send", ["a@b.c"])
    q.ack([d])
    assert beanstalk.stats_tube(queue)["current-jobs-reserved"] == 0


def test_jobs_carry_the_ttr_of_the_visibility_timeout(queue: str, opener: Opener,
                                                      beanstalk: greenstalk.Client[bytes]) -> None:
    q = opener(queue, visibility_timeout=2.5)
    q.publish([b"job"])
    [d] = q.fetch(1, 1.0)
    assert beanstalk.stats_job(d.receipt.job)["ttr"] == 3  # whole seconds, rounded up
    q.ack([d])


def test_dead_letters_are_buried_with_their_reasons(queue: str, opener: Opener,
                                                    beanstalk: greenstalk.Client[bytes]) -> None:
    q = opener(queue)
    q.publish([b"a", b"b", b"c"])
    got = q.fetch(10, 1.0)
    for d in got:
        q.dead_letter(d, f"bad {d.body.decode()}", "Traceback ...")
    dead_tube = f"{queue}.dead"
    stats = beanstalk.stats_tube(dead_tube)
    assert (stats["current-jobs-buried"], stats["current-jobs-ready"]) == (3, 0)
    assert beanstalk.stats_tube(queue)["current-jobs-reserved"] == 0  # the originals are gone

    beanstalk.use(dead_tube)
    first = beanstalk.peek_buried()  # what an operator's tool shows
    assert json.loads(first.body)["reason"] == "bad a"

    letters = q.dead_list()
    assert [(d.body, d.reason, d.error) for d in letters] == [(b"a", "bad a", "Traceback ..."),
                                                            (b"b", "bad b", "Traceback ..."),
                                                            (b"c", "bad c", "Traceback ...")]
    assert letters[0].id == str(first.id)  # dead-letter ids are beanstalk job ids
    # Listing leaves them buried, oldest first, however often it runs.
    assert [d.id for d in q.dead_list(limit=2)] == [d.id for d in letters[:2]]
    assert beanstalk.stats_tube(dead_tube)["current-jobs-buried"] == 3
    assert beanstalk.peek_buried().id == first.id

    assert q.dead_retry([letters[1].id]) == 1
    assert beanstalk.stats_tube(dead_tube)["current-jobs-buried"] == 2
    assert bodies(q.fetch(10, 1.0)) == [b"b"]
    with pytest.raises(ValueError):
        q.dead_retry(["12abc"])


def test_dead_retry_ignores_jobs_of_other_tubes(queue: str, opener: Opener,
                                                beanstalk: greenstalk.Client[bytes]) -> None:
    q = opener(queue)
    beanstalk.use(queue)
    foreign = beanstalk.put(b"not a dead letter")
    assert q.dead_retry([str(foreign)]) == 0
    assert beanstalk.stats_job(foreign)["state"] == "ready"


def test_a_dead_letter_too_big_for_beanstalkd_stays_buried_in_the_queue_and_is_listed(
        opener: Opener, own_beanstalkd: Callable[..., Beanstalkd]) -> None:
    server = own_beanstalkd("-z", "300")
    q = opener("big", server.url)
    q.publish([b'"' * 250])  # JSON escaping doubles it in the record
    [d] = q.fetch(1, 1.0)
    q.dead_letter(d, "not JSON")
    with greenstalk.Client(("127.0.0.1", server.port), encoding=None) as client:
        assert client.stats_tube("big")["current-jobs-buried"] == 1
    [letter] = q.dead_list()
    assert letter.body == b'"' * 250 and "buried in tube big" in letter.reason and not letter.retriable
    assert q.dead_retry() == 0  # not a task message: kept, still listed
    assert [x.id for x in q.dead_list()] == [letter.id]
    assert q.dead_purge() == 1 and q.dead_list() == []


def test_jobs_another_client_buried_in_the_queue_are_dead_letters(queue: str, opener: Opener,
                                                                  beanstalk: greenstalk.Client[bytes]) -> None:
    """They used to be invisible to `dead list`, and no Octobot command could retry them."""
    q = opener(queue)
    q.publish([b'{"task": "t", "args": [1]}'])
    [ours] = q.fetch(1, 1.0)
    q.dead_letter(ours, "failed after 1 attempt(s)")
    beanstalk.use(queue)
    beanstalk.watch(queue)
    tasks = [b'{"task": "t", "args": [%d], "attempt": 3}' % i for i in (2, 3, 4)]
    for body in [*tasks, b"not a task"]:
        beanstalk.put(body)
        job = beanstalk.reserve(timeout=1)
        beanstalk.bury(job)

    letters = q.dead_list()
    assert [x.body for x in letters] == [b'{"task": "t", "args": [1]}', *tasks, b"not a task"]
    assert all("buried in tube" in x.reason for x in letters[1:]) and letters[1].failed_at > time.time() - 60
    # Listing leaves them buried where they were, in their order, however often it runs.
    assert [x.id for x in q.dead_list(limit=3)] == [x.id for x in letters[:3]]
    stats = beanstalk.stats_tube(queue)
    assert (stats["current-jobs-buried"], stats["current-jobs-ready"], stats["current-jobs-reserved"]) == (4, 0, 0)
    assert beanstalk.peek_buried().id == int(letters[1].id)

    assert q.dead_retry([letters[2].id]) == 1  # one by id
    [d] = q.fetch(1, 1.0)
    assert Envelope.parse(d.body).args == [3] and Envelope.parse(d.body).attempt == 0
    q.ack([d])
    assert q.dead_retry() == 3  # ours and the other tasks; "not a task" stays
    assert sorted(Envelope.parse(d.body).args[0] for d in q.fetch(10, 1.0)) == [1, 2, 4]
    [left] = q.dead_list()
    assert left.body == b"not a task" and beanstalk.stats_tube(queue)["current-jobs-buried"] == 1
    assert q.dead_purge() == 1
    assert beanstalk.stats_tube(queue)["current-jobs-buried"] == 0


def test_a_dead_letter_with_a_long_traceback_loses_the_traceback_not_the_letter(
        opener: Opener, own_beanstalkd: Callable[..., Beanstalkd]) -> None:
    """A record over max-job-size used to be buried in the queue's own tube,
    where `dead list` cannot see it, whatever made it big."""
    server = own_beanstalkd("-z", "4000")
    q = opener("long", server.url)
    q.publish([b'{"task": "t"}'])
    [d] = q.fetch(1, 1.0)
    q.dead_letter(d, "failed after 1 attempt(s): " + "r" * 5000, "Traceback ...\n" + "t" * 5000)
    [letter] = q.dead_list()
    assert letter.body == b'{"task": "t"}' and len(letter.reason) == 1000
    assert "traceback left out" in letter.error


def test_a_job_not_touched_within_its_ttr_goes_to_another_connection(queue: str, opener: Opener) -> None:
    slow, other = opener(queue, connections=1, visibility_timeout=2), opener(queue, visibility_timeout=2)
    slow.publish([b"job"])
    held = slow.fetch(1, 1.0)
    start = time.monotonic()
    # slow keeps using its connection (beanstalkd 1.12 is lax about expiring the
    # TTRs of a connection that stays silent) but never touches the job.
    while not (got := other.fetch(1, 0.1)):
        slow.depth()
        assert time.monotonic() - start < 4.0, "the TTR never ran out"
    assert bodies(got) == [b"job"]
    assert time.monotonic() - start > 1.5  # not before the TTR (2 s)
    slow.ack(held)  # no longer slow's job: dropped without error
    other.ack(got)
    assert other.fetch(1, 0.1) == []


def test_fetches_spread_over_connections_and_parallel_acks_all_apply(
        queue: str, opener: Opener, beanstalk: greenstalk.Client[bytes]) -> None:
    q = opener(queue, connections=4)
    q.publish([str(i).encode() for i in range(400)])
    got: list[Delivery] = []
    while len(got) < 400:
        got += q.fetch(400 - len(got), 1.0)
    assert sorted(got, key=lambda d: d.receipt.job) == got  # FIFO within a fetch
    assert {d.receipt.slot for d in got} == {0, 1, 2, 3}
    assert beanstalk.stats_tube(queue)["current-jobs-reserved"] == 400

    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def ack(part: list[Delivery]) -> None:
        try:
            start.wait()
            for d in part:
                q.ack([d])
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ack, args=(got[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    stats = beanstalk.stats_tube(queue)
    assert (stats["current-jobs-reserved"], stats["current-jobs-ready"], stats["cmd-delete"]) == (0, 0, 400)


def test_a_waiting_fetch_wakes_up_when_a_job_arrives(queue: str, opener: Opener,
                                                    beanstalk: greenstalk.Client[bytes]) -> None:
    q, producer = opener(queue), opener(queue)
    late = threading.Timer(0.3, producer.publish, [[b"late"]])
    late.start()
    start = time.monotonic()
    got = q.fetch(1, 3.0)  # waits inside beanstalkd, not by polling
    late.join()
    assert bodies(got) == [b"late"]
    assert time.monotonic() - start < 1.0
    q.ack(got)
    assert beanstalk.stats_tube(queue)["current-jobs-reserved"] == 0


def test_small_fetches_take_turns_over_connections(queue: str, opener: Opener) -> None:
    q = opener(queue, connections=4)
    q.publish([b"a", b"b", b"c", b"d"])
    got = [d for _ in range(4) for d in q.fetch(1, 1.0)]
    assert bodies(got) == [b"a", b"b", b"c", b"d"]
    assert len({d.receipt.slot for d in got}) == 4
    q.ack(got)


def test_tube_names_with_punctuation(opener: Opener) -> None:
    name = f"t{uuid.uuid4().hex[:8]}-a+b/c;d.e$f_(g)"
    q = opener(name)
    try:
        q.publish([b"x", b"y"])
        x, y = q.fetch(10, 1.0)
        q.dead_letter(x, "boom")
        assert [d.body for d in q.dead_list()] == [b"x"]
        q.ack([y])
    finally:
        q.purge()
        q.dead_purge()


@pytest.mark.parametrize("bad", ["-leading-hyphen", "has space", "ünïcode", "x" * 196, ""])
def test_names_beanstalk_refuses_are_rejected_up_front(bad: str) -> None:
    with pytest.raises(ValueError, match="beanstalk tube"):
        BeanstalkBackend(bad, URL)


def test_urls_and_options() -> None:
    assert BeanstalkBackend.normalize_url("beanstalk://localhost") == "beanstalk://localhost:11300"
    assert BeanstalkBackend.normalize_url("beanstalk://10.0.0.1:11301/") == "beanstalk://10.0.0.1:11301"
    assert BeanstalkBackend.normalize_url("beanstalk://[::1]:11300") == "beanstalk://[::1]:11300"
    for bad in ("beanstalk://h:11300/tube", "beanstalk://h:99999", "redis://h:11300"):
        with pytest.raises(ValueError):
            BeanstalkBackend.normalize_url(bad)
    for connections in ("0", "-1", "four"):
        with pytest.raises(ValueError, match="connections"):
            BeanstalkBackend("q", URL, {"connections": connections})


@pytest.mark.parametrize("call", [lambda q: q.fetch(1, 5.0), lambda q: q.publish([b"x"]), lambda q: q.depth()])
def test_unreachable_beanstalkd_raises_broker_unavailable_quickly(call: Callable[[Backend], object],
                                                                  opener: Opener) -> None:
    q = opener("nowhere", "beanstalk://127.0.0.1:1")
    start = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"beanstalk 127\.0\.0\.1:1 unreachable"):
        call(q)
    assert time.monotonic() - start < 1.0


def test_reconnects_after_beanstalkd_restarts(opener: Opener, own_beanstalkd: Callable[..., Beanstalkd]) -> None:
    server = own_beanstalkd()
    q = opener("jobs", server.url, connections=2)
    q.publish([b"before"])
    held = q.fetch(1, 1.0)
    assert bodies(held) == [b"before"]

    server.stop()  # kills every connection server-side; beanstalkd keeps nothing without -b
    for call in (lambda: q.publish([b"x"]), lambda: q.fetch(1, 0.1), q.depth):
        with pytest.raises(BrokerUnavailable, match="unreachable"):
            call()
    q.ack(held)  # its connection is gone, and with it the reservation: dropped without error

    server.start()
    q.publish([b"after"])
    # A receipt from before the restart names job id 1 again; it must not touch the new job 1.
    q.ack(held)
    got = q.fetch(10, 1.0)
    assert bodies(got) == [b"after"]
    assert got[0].receipt.job == held[0].receipt.job
    q.ack(got)
    assert q.depth() == 0
