"""The node's session with the coordinator: one bidirectional stream, Hello
first, then heartbeats and stats every interval; every assignment received is
applied and acknowledged. Reconnects with backoff and jitter, forever.

A node proves who it is with its client certificate (mutual TLS), or with the
credential it got once by joining with a join token and keeps in its state dir.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import socket
import threading
from collections.abc import Iterator
from typing import Protocol

import grpc

import octobot
from octobot import queue_specs, rpc, tasks
from octobot.node.backoff import Backoff
from octobot.node.state import StateDir
from octobot.node.stats_buffer import StatsBuffer
from octobot.v1 import node_pb2, node_pb2_grpc, queue_pb2

log = logging.getLogger("octobot.node.session")


class Workers(Protocol):
    """What runs the node's queues: an Agent (threads) or a ProcessPool (--processes)."""

    generation: int

    def apply(self, assignment: queue_pb2.Assignment) -> None: ...
    def heartbeat(self) -> node_pb2.Heartbeat: ...


# Seconds between attempts while the coordinator refuses the node's credentials:
# an operator has to act, so retrying fast only fills logs.
REFUSED_RETRY = 30.0
JOIN_TIMEOUT = 15.0
# Answers that retrying soon will not change (a join of an id already registered among them).
REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS,
           grpc.StatusCode.RESOURCE_EXHAUSTED)


class CoordinatorSession:
    def __init__(self, agent: Workers, stats: StatsBuffer, target: str, node_id: str, labels: dict[str, str],
                 auth: rpc.ClientAuth = rpc.ClientAuth(), state: StateDir | None = None,
                 join_token: str | None = None) -> None:
        self.agent = agent
        self.stats = stats
        self.target = target
        self.node_id = node_id
        self.labels = labels
        # TLS and, for mutual TLS, the node's certificate; the token comes from ``state``.
        self.auth = auth
        self.state = state
        self.join_token = join_token
        self._stop = threading.Event()
        self._call: grpc.Future | None = None
        self._channel: grpc.Channel | None = None
        self._token: str | None = None  # the credential self._channel carries
        # True while streaming, False once a failure was said, None in between.
        self._up: bool | None = None
        self._connected_once = False

    def run(self) -> None:
        """Keep a stream open until stop(); returns when stopped. Nothing else ends
        it: a node without its session is marked DOWN although it works on."""
        backoff = Backoff(initial=0.2, cap=5.0)
        failure = ""
        while not self._stop.is_set():
            delay = None
            try:
                delay = self._connect(backoff)
            except Exception as exc:  # a bug, an unreadable file: say it once while it repeats, start over
                if repr(exc) != failure:
                    failure = repr(exc)
                    log.error("session with coordinator %s failed: %s; restarting it", self.target, exc,
                              exc_info=not isinstance(exc, OSError))
                if self._up is True:
                    self._up = None  # say it when the stream is back
            else:
                failure = ""
            self._stop.wait(delay or backoff.next())
        if self._channel is not None:
            self._channel.close()

    def _connect(self, backoff: Backoff) -> float | None:
        """One stream, until it ends; the delay before the next, if not the backoff's."""
        credential = self._credential()
        if self._channel is None or credential != self._token:
            if self._channel is not None:
                self._channel.close()
            self._token = credential
            self._channel = rpc.make_channel(self.target, dataclasses.replace(self.auth, token=credential))
        try:
            for _ in self._stream(node_pb2_grpc.NodeServiceStub(self._channel)):
                if self._up is not True:
                    log.info("%s coordinator %s", "reconnected to" if self._connected_once else "connected to",
                             self.target)
                    self._up, self._connected_once = True, True
                    backoff.reset()
        except grpc.RpcError as exc:
            if self._stop.is_set():
                return None
            code = exc.code() if hasattr(exc, "code") else None
            if code in REFUSED:
                self._up = False
                return self._refused(exc)
            if self._up is not False:
                log.warning("coordinator %s unreachable (%s); working from the last assignment, retrying",
                            self.target, code.name if code else exc)
                self._up = False
        if self._up is True:
            self._up = None  # the stream ended cleanly (coordinator shut down): say so once on failure
        return None

    def _credential(self) -> str | None:
        """The node's credential; joins first when it has none and a join token."""
        if self.state is None:
            return None
        credential = self.state.credential()
        if credential is None and self.join_token:
            with rpc.make_channel(self.target, dataclasses.replace(self.auth, token=self.join_token)) as channel:
                response = node_pb2_grpc.NodeServiceStub(channel).Join(
                    node_pb2.JoinRequest(node_id=self.node_id), timeout=JOIN_TIMEOUT)
            self.state.save_credential(response.credential)
            log.info("joined the cluster as node %s; its credential is kept in %s", self.node_id, self.state.path)
            credential = response.credential
        return credential

    def _refused(self, exc: grpc.RpcError) -> float:
        """The coordinator refused our credentials: say why, and when joining
        can fix it (a forgotten node's credential is gone), drop the stale one."""
        details = exc.details() if hasattr(exc, "details") else str(exc)
        if self.state is not None and self.join_token and self.state.credential() is not None \
                and exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            log.warning("coordinator %s refused the node's credential (%s); joining again", self.target, details)
            self.state.forget_credential()
            return 0.0
        log.error("coordinator %s refused node %s: %s; working from the last assignment, retrying in %.0fs",
                  self.target, self.node_id, details, REFUSED_RETRY)
        return REFUSED_RETRY

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()

    def _stream(self, stub: node_pb2_grpc.NodeServiceStub) -> Iterator[None]:
        outbox: queue.Queue[node_pb2.ConnectRequest | None] = queue.Queue()
        outbox.put(node_pb2.ConnectRequest(hello=node_pb2.Hello(
            node_id=self.node_id, hostname=socket.gethostname(), labels=self.labels,
            version=octobot.__version__, tasks=tasks.names(), applied_generation=self.agent.generation,
            pid=os.getpid())))
        done = threading.Event()
        failed: list[Exception] = []

        def requests() -> Iterator[node_pb2.ConnectRequest]:
            while (msg := outbox.get()) is not None:
                yield msg

        def report() -> None:
            try:
                while not done.wait(self.stats.interval):
                    outbox.put(node_pb2.ConnectRequest(heartbeat=self.agent.heartbeat()))
                    for stats in self.stats.drain():
                        outbox.put(node_pb2.ConnectRequest(stats=stats))
                    if self.state is not None:
                        self.state.retry()  # a write the state dir refused (read-only, full)
            except Exception as exc:  # without heartbeats the node would be DOWN: end the stream, run() restarts it
                failed.append(exc)
                call.cancel()

        call = stub.Connect(requests())
        self._call = call
        reporter = threading.Thread(target=report, name="report", daemon=True)
        reporter.start()
        try:
            for msg in call:
                if msg.WhichOneof("kind") == "assignment":
                    # Each queue on the broker endpoint for this node's labels (a datacenter's own).
                    self.agent.apply(queue_specs.for_node(msg.assignment, self.labels))
                    outbox.put(node_pb2.ConnectRequest(applied=node_pb2.Applied(generation=msg.assignment.generation)))
                    # Report the new state at once rather than on the next tick.
                    outbox.put(node_pb2.ConnectRequest(heartbeat=self.agent.heartbeat()))
                yield None
        except grpc.RpcError:
            if failed:
                raise failed[0] from None
            raise
        finally:
            done.set()
            outbox.put(None)
            call.cancel()
