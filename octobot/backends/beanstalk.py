"""Beanstalk backend: one tube per queue, dead letters buried in ``<queue>.dead``.

A producer in any language enqueues with one command (``put <priority>
<delay> <ttr> <bytes>``, then the body), after choosing the tube::

    use emails
    put 0 0 60 22
    {"task":"emails.send"}

The TTR is how long a consumer may hold the job before beanstalkd hands it to
another: give at least the queue's visibility timeout (Octobot's own puts use
``max(1, ceil(visibility_timeout))``; the node keeps longer tasks with
``touch``). All of Octobot's puts use priority 0, so retries and revived dead
letters keep FIFO order with jobs put as above.

Tubes for queue ``q``:

- ``q`` — waiting jobs, retries delayed by their backoff, and in-flight
  (reserved) jobs. If a consumer dies, beanstalkd releases its jobs when the
  connection drops, or when their TTR runs out (which beanstalkd 1.12 notices
  late, if ever, for a connection that stays silent: see ``_wait``).
- ``q.dead`` — dead letters, kept as BURIED jobs whose body is the record of
  ``encode_dead`` (the original body, the reason, the error). A dead letter's
  id is its beanstalk job id, so ``peek <id>`` in any beanstalk tool shows it.

Jobs buried in ``q`` itself, by another client or because even a shortened
record was too big for ``q.dead``, are dead letters too: listed (with their
raw body), retried and purged with the others.

A reserved job can only be deleted, released, touched or buried through the
connection that reserved it, so every delivery's receipt names its
connection, and a connection that breaks voids the receipts it issued. One
backend keeps ``connections`` such sockets (option, default 4) plus two of
its own: the bell, which waits inside beanstalkd while the tube is empty, and
the admin socket, which watches ``q.dead`` for the dead-letter commands.

Priorities are not Octobot's business here (queue priority is a node-side
matter): releases and retries put jobs back at priority 0 whatever the
producer gave.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from octobot.backends.beanstalk_protocol import BURST, MAX_WAIT, BeanstalkError, Reply, Slot, connect
from octobot.backends.base import Backend, BrokerUnavailable, DeadLetter, Delivery, Option, decode_dead, encode_dead

log = logging.getLogger("octobot.backends.beanstalk")

DEFAULT_PORT = 11300
#: Priority of every job Octobot puts (0 is the most urgent in beanstalk).
PRIORITY = 0
#: TTR of dead-letter records: only admin commands reserve them, for moments.
DEAD_TTR = 60
#: Fewest jobs worth a socket round trip of their own when a fetch is shared
#: out: a smaller fetch reserves all on one socket, the next fetch on the next.
SHARE = 8
#: Jobs buried in a queue's own tube reserved at a time by a dead-letter
#: cycle: few, so each is held far less than its TTR (after which beanstalkd
#: would make it ready, and a consumer would run it).
BURIED_BATCH = 100

_RESERVE = b"reserve-with-timeout 0"
# Replies that mean "the server cannot take work now", not a bug of ours.
_BUSY = (b"DRAINING", b"OUT_OF_MEMORY", b"INTERNAL_ERROR")
_TUBE_NAME = re.compile(r"[A-Za-z0-9+/;.$_()][A-Za-z0-9+/;.$_()-]*")
_MAX_TUBE_NAME = 200


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"beanstalk URL {url!r} has a bad port") from None
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"beanstalk URL {url!r} takes only a host and a port: beanstalk://host:11300")
    return parts.hostname or "127.0.0.1", port


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_tube(queue: str) -> None:
    if not _TUBE_NAME.fullmatch(queue) or len(queue) + len(".dead") > _MAX_TUBE_NAME:
        raise ValueError(f"queue name {queue!r} cannot be a beanstalk tube: use letters, digits and - + / ; . $ _ ( ),"
                         f" not starting with -, at most {_MAX_TUBE_NAME - len('.dead')} characters")


CONNECTIONS = Option(int, 1, 64)


def _connections(options: Mapping[str, str]) -> int:
    raw = options.get("connections", "4")
    CONNECTIONS.check("connections", raw)
    return int(raw)


# Characters of a reason kept when a record must shrink to fit max-job-size.
SHRUNK_REASON = 1000


def _smaller(record: bytes) -> bytes:
    """A dead-letter record cut to fit beanstalkd's max-job-size (64 KiB by
    default): the traceback left out, the reason cut; the body kept whole."""
    letter = decode_dead("", record)
    return encode_dead(letter.body, letter.reason[:SHRUNK_REASON],
                       "(traceback left out: the dead letter was too big for beanstalkd's max-job-size)")


def _put(body: bytes, ttr: int, delay: int = 0) -> bytes:
    return b"put %d %d %d %d\r\n%b" % (PRIORITY, delay, ttr, len(body), body)


def _stats(reply: Reply) -> dict[str, str]:
    """The YAML mapping of a stats reply (``---`` then ``key: value`` lines); empty if NOT_FOUND."""
    if reply.status != b"OK":
        return {}
    pairs = (line.split(": ", 1) for line in reply.body.decode().splitlines()[1:])
    return {key: value.strip('"') for key, value in pairs}


def _job_ids(ids: Sequence[str]) -> list[int]:
    bad = [i for i in ids if not i.isdigit()]
    if bad:
        raise ValueError(f"not dead-letter ids: {', '.join(bad)}")
    return [int(i) for i in ids]


class BeanstalkBackend(Backend):
    """A queue in a beanstalkd tube, consumed at least once with reserve and delete.

    One object serves a fetcher thread, many worker threads settling messages
    and producers at once: it keeps ``connections`` sockets (option, default
    4), spreads fetched jobs over them, and settles each job on the socket
    that reserved it, so acks from many threads run in parallel.

        q = BeanstalkBackend("emails", "beanstalk://127.0.0.1:11300", {"connections": "4"},
                             visibility_timeout=30)
        q.publish([b'{"task": "emails.send", "args": ["a@b.c"]}'])
        for delivery in q.fetch(10, timeout=1.0):
            q.ack([delivery])  # after the task finished
        q.close()
    """

    schemes = ("beanstalk",)
    options_schema = {**Backend.options_schema, "connections": CONNECTIONS}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _check_tube(self.queue)
        host, port = _address(self.url)
        self._where = _host_port(host, port)
        self._tube = self.queue.encode()
        self._dead_tube = f"{self.queue}.dead".encode()
        self._ttr = max(1, math.ceil(self.visibility_timeout))
        self._slots = [Slot(i, partial(connect, (host, port), self.queue), self._where)
                       for i in range(_connections(self.options))]
        # Waits for jobs when the tube is empty; see _wait.
        self._bell = Slot(-1, partial(connect, (host, port), self.queue), self._where)
        # Dead-letter admin reserves from <q>.dead, so it needs a socket watching only that.
        self._admin = Slot(-2, partial(connect, (host, port), f"{self.queue}.dead"), self._where)
        # Held through a whole dead-letter cycle, which spans many commands.
        self._admin_lock = threading.Lock()
        self._turn = itertools.count()

    @classmethod
    def normalize_url(cls, url: str) -> str:
        return "beanstalk://" + _host_port(*_address(super().normalize_url(url)))

    def _next_slot(self) -> Slot:
        return self._slots[next(self._turn) % len(self._slots)]

    def _expect(self, replies: Sequence[Reply], status: bytes, command: str) -> None:
        for reply in replies:
            if reply.status == status:
                continue
            if reply.status in _BUSY:
                raise BrokerUnavailable(f"beanstalk {self._where} unavailable: {command} got {reply.status.decode()}")
            raise BeanstalkError(f"beanstalk {self._where} answered {reply.status.decode()} to {command}")

    def _settle(self, deliveries: Sequence[Delivery], command: bytes, expected: bytes, action: str) -> None:
        """Send ``command % job id`` for each delivery, on the socket that reserved it.

        A job we no longer own is not an error: its socket broke (beanstalkd
        released it), or its TTR ran out and another consumer may hold it.
        """
        groups: dict[tuple[int, int], list[int]] = {}
        for d in deliveries:
            groups.setdefault((d.receipt.slot, d.receipt.generation), []).append(d.receipt.job)
        for (index, generation), jobs in groups.items():
            replies = self._slots[index].send_owned(generation, [command % job for job in jobs])
            if replies is None:
                log.debug("%s of %d job(s) on %s skipped: their connection was lost, beanstalkd released them",
                          action, len(jobs), self.queue)
                continue
            for job, reply in zip(jobs, replies):
                if reply.status != expected:
                    log.debug("%s of job %d on %s: beanstalkd answered %s (TTR ran out?)",
                              action, job, self.queue, reply.status.decode())

    # -- producer ---------------------------------------------------------

    def _publish(self, bodies: Sequence[bytes]) -> None:
        replies = self._next_slot().send([_put(body, self._ttr) for body in bodies])
        self._expect(replies, b"INSERTED", "put")

    # -- consumer ---------------------------------------------------------

    def _fetch(self, max_count: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        wait = min(int(timeout), MAX_WAIT)  # whole seconds, beanstalk's unit
        pause = 0.005
        while True:
            deliveries = self._reserve(max_count)
            left = deadline - time.monotonic()
            if deliveries or left <= 0:
                return deliveries
            if wait and self._wait(wait):
                wait = min(int(left), MAX_WAIT)
                continue
            # Less than a second to wait, or another thread is waiting on the bell: poll.
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)

    def _wait(self, seconds: int) -> bool:
        """Wait inside beanstalkd until a job is ready or ``seconds`` pass;
        False if another thread is waiting already.

        The blocking reserve runs on the bell, a socket that owns no jobs (the
        one it gets goes straight back, for the pool to reserve), so it never
        holds up an ack. Waiting rather than polling also matters to TTRs:
        beanstalkd 1.12, polled by reserve-with-timeout 0, often fails to
        release a job whose owner went quiet past its TTR.
        """
        replies = self._bell.send_if_free([b"reserve-with-timeout %d" % seconds])
        if replies is None:
            return False
        if replies[0].status == b"RESERVED":
            self._bell.send([b"release %s %d 0" % (replies[0].values[0], PRIORITY)])
        return True

    def _reserve(self, max_count: int) -> list[Delivery]:
        """Reserve up to ``max_count`` ready jobs, shared out over the sockets
        (one pipelined write each) so that their acks run in parallel."""
        deliveries: list[Delivery] = []
        start = next(self._turn)
        count = len(self._slots)
        share = max(SHARE, math.ceil(max_count / count))
        for i in range(count):
            want = min(share, max_count - len(deliveries))
            if want == 0:
                break
            try:
                got = self._slots[(start + i) % count].reserve([_RESERVE] * want)
            except BrokerUnavailable:
                if deliveries:  # hand over what we hold; the next call meets the broken socket again
                    return deliveries
                raise
            deliveries += got
            if len(got) < want:  # the tube is empty
                break
        return deliveries

    def _ack(self, deliveries: Sequence[Delivery]) -> None:
        self._settle(deliveries, b"delete %d", b"DELETED", "ack")

    def _release(self, deliveries: Sequence[Delivery]) -> None:
        self._settle(deliveries, b"release %%d %d 0" % PRIORITY, b"RELEASED", "release")

    def _touch(self, deliveries: Sequence[Delivery]) -> None:
        self._settle(deliveries, b"touch %d", b"TOUCHED", "touch")

    def _retry(self, delivery: Delivery, body: bytes, delay: float) -> None:
        # beanstalk cannot change a job's body: put the next attempt, then
        # delete this one (a crash in between duplicates, never loses).
        receipt = delivery.receipt
        replies = self._slots[receipt.slot].send_owned(receipt.generation, [_put(body, self._ttr, math.ceil(delay))])
        if replies is None:
            log.debug("retry of job %d on %s skipped: its connection was lost, beanstalkd released it",
                      receipt.job, self.queue)
            return
        self._expect(replies, b"INSERTED", "put")
        self._ack([delivery])

    def _dead_letter(self, delivery: Delivery, record: bytes) -> None:
        receipt = delivery.receipt
        slot = self._slots[receipt.slot]
        put = None
        for attempt in (record, _smaller(record)):
            # Put the record in <q>.dead through the owner's socket, which then uses <q> again.
            replies = slot.send_owned(receipt.generation, [b"use " + self._dead_tube, _put(attempt, DEAD_TTR),
                                                           b"use " + self._tube])
            if replies is None:
                log.debug("dead letter of job %d on %s skipped: its connection was lost, beanstalkd released it",
                          receipt.job, self.queue)
                return
            self._expect([replies[0], replies[2]], b"USING", "use")
            put = replies[1]
            if put.status != b"JOB_TOO_BIG":
                break
        assert put is not None
        if put.status == b"JOB_TOO_BIG":
            # Even without its traceback, the record (the escaped body) outgrows
            # max-job-size: bury the original where it is, so it stops coming back.
            log.warning("dead letter of job %d on %s is too big for beanstalkd; buried it in tube %s instead: %s",
                        receipt.job, self.queue, self.queue, decode_dead("", record).reason)
            self._settle([delivery], b"bury %%d %d" % PRIORITY, b"BURIED", "bury")
            return
        self._expect([put], b"INSERTED", "put")
        dead = int(put.values[0])
        replies = slot.send_owned(receipt.generation, [b"reserve-job %d" % dead, b"bury %d %d" % (dead, PRIORITY),
                                                       b"delete %d" % receipt.job])
        if replies is not None and replies[1].status != b"BURIED":
            # An admin cycle on another machine took the record first; it buries or revives it.
            log.debug("dead letter %d of %s was taken before it was buried: %s", dead, self.queue,
                      replies[1].status.decode())

    def _depth(self) -> int:
        [reply] = self._next_slot().send([b"stats-tube " + self._tube])
        return int(_stats(reply).get("current-jobs-ready", 0))

    def _purge(self) -> int:
        """Delete waiting and delayed jobs; in-flight ones stay with their consumers.

        Only as many as the tube holds now: while producers keep putting,
        "until empty" might never come.
        """
        slot = self._next_slot()
        [reply] = slot.send([b"stats-tube " + self._tube])
        stats = _stats(reply)
        ready, delayed = int(stats.get("current-jobs-ready", 0)), int(stats.get("current-jobs-delayed", 0))
        count = 0
        while ready > 0 and (batch := slot.reserve([_RESERVE] * min(ready, BURST))):
            ready -= len(batch)
            replies = slot.send([b"delete %d" % d.receipt.job for d in batch])
            count += sum(r.status == b"DELETED" for r in replies)
        # Delayed jobs cannot be reserved, but deleted by id.
        for _ in range(delayed):
            [reply] = slot.send([b"peek-delayed"])
            if reply.status != b"FOUND":
                break
            [deleted] = slot.send([b"delete " + reply.values[0]])
            count += deleted.status == b"DELETED"
        return count

    # -- dead letters -----------------------------------------------------

    def _each_dead(self, handle: Callable[[list[tuple[Delivery, DeadLetter]]], None]) -> int:
        """Reserve every dead letter in batches, oldest first, and pass each
        batch to ``handle``, which buries or deletes it; return how many.

        beanstalk shows only the first buried job, so all of ``<q>.dead`` are
        kicked to ready at once (ready jobs of one priority come out by id,
        i.e. by age) and reserved through the admin socket, which watches only
        ``<q>.dead``; jobs an interrupted cycle left ready are taken up too.
        Then come the jobs buried in ``<q>`` itself (by another client, or too
        big for a record): those are dead letters too, but kicking them would
        run them, so they are reserved one by one from the front of the buried list.
        """
        with self._admin_lock:
            [reply] = self._admin.send([b"stats-tube " + self._dead_tube])
            stats = _stats(reply)
            total = int(stats.get("current-jobs-buried", 0)) + int(stats.get("current-jobs-ready", 0))
            if total:
                # kick acts on the tube in use, so name it.
                replies = self._admin.send([b"use " + self._dead_tube, b"kick %d" % total])
                self._expect(replies[1:], b"KICKED", "kick")
            done = 0
            while done < total and (batch := self._admin.reserve([_RESERVE] * min(total - done, BURST))):
                handle([(d, decode_dead(str(d.receipt.job), d.body)) for d in batch])
                done += len(batch)
            return done + self._each_buried_in_queue(handle)

    def _each_buried_in_queue(self, handle: Callable[[list[tuple[Delivery, DeadLetter]]], None]) -> int:
        [reply] = self._admin.send([b"stats-tube " + self._tube])
        total = int(_stats(reply).get("current-jobs-buried", 0))
        done = 0
        while done < total:
            batch: list[tuple[Delivery, DeadLetter]] = []
            # A reserved job leaves the buried list, so its front shows the next one.
            for _ in range(min(total - done, BURIED_BATCH)):
                [_, peek] = self._admin.send([b"use " + self._tube, b"peek-buried"])
                if peek.status != b"FOUND":
                    break
                job = int(peek.values[0])
                [stats] = self._admin.send([b"stats-job %d" % job])
                batch += self._reserve_buried([job], [_stats(stats)])
            if not batch:
                break
            handle(batch)
            done += len(batch)
        return done

    def _reserve_buried(self, jobs: Sequence[int], stats: Sequence[Mapping[str, str]]) -> list[tuple[Delivery, DeadLetter]]:
        """Reserve the dead letters among ``jobs`` (``stats`` are their stats-job
        replies) through the admin socket, each with its letter."""
        dead_tube = self._dead_tube.decode()
        mine = {job: s for job, s in zip(jobs, stats)
                if (s.get("tube") == dead_tube and s.get("state") in ("buried", "ready"))
                or (s.get("tube") == self.queue and s.get("state") == "buried")}
        if not mine:
            return []
        reserved = self._admin.reserve([b"reserve-job %d" % job for job in mine])
        return [(d, decode_dead(str(d.receipt.job), d.body) if mine[d.receipt.job]["tube"] == dead_tube
                 else self._buried_letter(d, mine[d.receipt.job])) for d in reserved]

    def _buried_letter(self, delivery: Delivery, stats: Mapping[str, str]) -> DeadLetter:
        age = stats.get("age", "0")
        return DeadLetter(id=str(delivery.receipt.job), body=delivery.body,
                          reason=f"buried in tube {self.queue} (by another client, or too big for a dead-letter"
                                 f" record): shown as it is; retried only if it is a task message",
                          error="", failed_at=time.time() - (int(age) if age.isdigit() else 0), readable=False)

    def _dead_list(self, limit: int) -> list[DeadLetter]:
        letters: list[DeadLetter] = []

        def bury_again(batch: list[tuple[Delivery, DeadLetter]]) -> None:
            # Buried again in the order reserved, so the buried list stays oldest first.
            replies = self._admin.send([b"bury %d %d" % (d.receipt.job, PRIORITY) for d, _ in batch])
            self._expect(replies, b"BURIED", "bury")
            letters.extend(letter for _, letter in batch[:limit - len(letters)])

        self._each_dead(bury_again)
        return letters

    def _dead_retry(self, ids: Sequence[str] | None) -> int:
        if ids is None:
            revived = 0

            def revive(batch: list[tuple[Delivery, DeadLetter]]) -> None:
                nonlocal revived
                revived += self._revive(batch)
            self._each_dead(revive)
            return revived
        jobs = _job_ids(ids)
        with self._admin_lock:
            # reserve-job takes a job of any tube: only this queue's dead letters are taken.
            stats = [_stats(reply) for reply in self._admin.send([b"stats-job %d" % job for job in jobs])]
            batch = self._reserve_buried(jobs, stats)
            return self._revive(batch) if batch else 0

    def _revive(self, batch: list[tuple[Delivery, DeadLetter]]) -> int:
        """Put reserved dead letters back on the queue, then delete them (a crash in
        between duplicates); records no task can come from are buried again, untouched."""
        kept = [d for d, letter in batch if not letter.retriable]
        if kept:
            replies = self._admin.send([b"bury %d %d" % (d.receipt.job, PRIORITY) for d in kept])
            self._expect(replies, b"BURIED", "bury")
        revived = [(d, letter) for d, letter in batch if letter.retriable]
        if not revived:
            return 0
        puts = [_put(letter.revived(), self._ttr) for _, letter in revived]
        replies = self._admin.send([b"use " + self._tube, *puts])
        self._expect(replies[1:], b"INSERTED", "put")
        self._expect(self._admin.send([b"delete %d" % d.receipt.job for d, _ in revived]), b"DELETED", "delete")
        return len(revived)

    def _dead_purge(self) -> int:
        def delete(batch: list[tuple[Delivery, DeadLetter]]) -> None:
            replies = self._admin.send([b"delete %d" % d.receipt.job for d, _ in batch])
            self._expect(replies, b"DELETED", "delete")

        return self._each_dead(delete)

    def close(self) -> None:
        """Close every socket; beanstalkd releases the jobs they reserved at once."""
        for slot in [*self._slots, self._bell, self._admin]:
            slot.drop()
