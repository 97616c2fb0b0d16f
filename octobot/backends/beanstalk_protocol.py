"""A beanstalkd client for the beanstalk backend (beanstalk.py): greenstalk's,
plus pipelined commands on sockets shared by threads, each socket numbered by
a generation so that receipts for jobs it reserved die with it.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import greenstalk

from octobot.backends.base import BrokerUnavailable, Delivery

CONNECT_TIMEOUT = 2.0
#: Longest wait for a job inside beanstalkd, in whole seconds (its unit).
MAX_WAIT = 5
#: Every other command is answered at once, so a reply this late means the
#: server or the network is gone.
SOCKET_TIMEOUT = MAX_WAIT + 5.0
#: Most commands written before reading their replies: beanstalkd stops
#: reading while its replies wait unread, so an unbounded burst could block both ends.
BURST = 500

NOTHING_READY = (b"TIMED_OUT", b"DEADLINE_SOON", b"NOT_FOUND")
WITH_BODY = (b"RESERVED", b"FOUND", b"OK")


class BeanstalkError(RuntimeError):
    """beanstalkd refused a command for a reason other than connectivity."""


class Reply(NamedTuple):
    status: bytes
    values: list[bytes]
    body: bytes


@dataclass(frozen=True, slots=True)
class Receipt:
    """A reserved job and the socket that reserved it: only that socket may settle it."""

    slot: int
    generation: int
    job: int


class Client(greenstalk.Client[bytes]):
    """greenstalk's client plus pipelining: many commands in one write, replies read in order."""

    def pipeline(self, commands: Sequence[bytes]) -> list[Reply]:
        replies: list[Reply] = []
        for start in range(0, len(commands), BURST):
            burst = commands[start:start + BURST]
            self._sock.sendall(b"".join(command + b"\r\n" for command in burst))
            replies += [self._reply() for _ in burst]
        return replies

    def closed_by_server(self) -> bool:
        """beanstalkd never speaks unasked: an idle socket with something to
        read was closed by the server (restart, kill) or is out of step."""
        return bool(select.select([self._sock], [], [], 0)[0])

    def _reply(self) -> Reply:
        line = self._reader.readline()
        status, *values = line.split() or [b""]
        if not line.endswith(b"\r\n") or not status:
            raise ConnectionError("connection closed by beanstalkd")
        if status not in WITH_BODY:
            return Reply(status, values, b"")
        size = int(values[-1])
        data = self._reader.read(size + 2)
        if len(data) != size + 2:
            raise ConnectionError("connection closed by beanstalkd in the middle of a reply")
        return Reply(status, values, data[:-2])


def connect(address: tuple[str, int], tube: str) -> Client:
    """A socket that uses and watches only ``tube``."""
    sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
    try:
        sock.settimeout(SOCKET_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return Client(sock, encoding=None, use=tube, watch=tube)
    except BaseException:
        sock.close()
        raise


class Slot:
    """One socket to beanstalkd, shared by threads under its lock.

    ``generation`` changes whenever the socket is dropped: beanstalkd
    released the jobs reserved on it, so receipts naming an old generation are
    void (after a restart without binlog their ids may even name other jobs).
    """

    def __init__(self, index: int, connect: Callable[[], Client], where: str) -> None:
        self.index = index
        self.generation = 0
        self._connect = connect
        self._where = where
        self._client: Client | None = None
        self._lock = threading.Lock()

    def send(self, commands: Sequence[bytes]) -> list[Reply]:
        with self._lock:
            return self._send(commands)

    def send_if_free(self, commands: Sequence[bytes]) -> list[Reply] | None:
        """``send`` unless another thread is using the socket (then None)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._send(commands)
        finally:
            self._lock.release()

    def send_owned(self, generation: int, commands: Sequence[bytes]) -> list[Reply] | None:
        """``send`` for commands on jobs reserved by this socket in ``generation``;
        None if the socket was dropped since, which released those jobs."""
        with self._lock:
            self._drop_if_closed()
            if generation != self.generation:
                return None
            return self._send(commands)

    def reserve(self, commands: Sequence[bytes]) -> list[Delivery]:
        """Run reserve commands; the jobs they got, with receipts naming this socket."""
        with self._lock:
            replies = self._send(commands)
            generation = self.generation
        for reply in replies:
            if reply.status != b"RESERVED" and reply.status not in NOTHING_READY:
                raise BeanstalkError(f"beanstalk {self._where} answered {reply.status.decode()} to a reserve")
        return [Delivery(body=r.body, receipt=Receipt(self.index, generation, int(r.values[0])))
                for r in replies if r.status == b"RESERVED"]

    def drop(self) -> None:
        with self._lock:
            self._drop()

    def _send(self, commands: Sequence[bytes]) -> list[Reply]:
        try:
            self._drop_if_closed()
            if self._client is None:
                self._client = self._connect()
            return self._client.pipeline(commands)
        except OSError as exc:  # refused, reset, timed out, closed
            self._drop()
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise BrokerUnavailable(f"beanstalk {self._where} unreachable: {reason}") from exc

    def _drop_if_closed(self) -> None:
        # Found before use, a socket the server closed (restart, kill) is
        # replaced quietly instead of failing this call.
        if self._client is not None and self._client.closed_by_server():
            self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self.generation += 1
