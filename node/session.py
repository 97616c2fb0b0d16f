"""The node's session with the coordinator: one bidirectional stream, Hello
first, then heartbeats and stats every interval; every assignment received is
applied and acknowledged. Reconnects with backoff and jitter, forever."""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Iterator
from typing import Protocol

import grpc

import octobot
from octobot import rpc, tasks
from octobot.node.backoff import Backoff
from octobot.node.stats_buffer import StatsBuffer
from octobot.v1 import node_pb2, node_pb2_grpc, queue_pb2

log = logging.getLogger("octobot.node.session")


class Workers(Protocol):
    """What runs the node's queues: an Agent (threads) or a ProcessPool (--processes)."""

    generation: int

    def apply(self, assignment: queue_pb2.Assignment) -> None: ...
    def heartbeat(self) -> node_pb2.Heartbeat: ...


class CoordinatorSession:
    def __init__(self, agent: Workers, stats: StatsBuffer, target: str, node_id: str, labels: dict[str, str]) -> None:
        self.agent = agent
        self.stats = stats
        self.target = target
        self.node_id = node_id
        self.labels = labels
        self._stop = threading.Event()
        self._call: grpc.Future | None = None

    def run(self) -> None:
        """Keep a stream open until stop(); returns when stopped."""
        channel = rpc.make_channel(self.target)
        stub = node_pb2_grpc.NodeServiceStub(channel)
        backoff = Backoff(initial=0.2, cap=5.0)
        connected_once, up = False, None
        while not self._stop.is_set():
            try:
                for _ in self._stream(stub):
                    if up is not True:
                        log.info("%s coordinator %s", "reconnected to" if connected_once else "connected to", self.target)
                        up, connected_once = True, True
                        backoff.reset()
            except grpc.RpcError as exc:
                if self._stop.is_set():
                    break
                if up is not False:
                    log.warning("coordinator %s unreachable (%s); working from the last assignment, retrying",
                                self.target, exc.code().name if hasattr(exc, "code") else exc)
                    up = False
            if up is True:
                up = None  # the stream ended cleanly (coordinator shut down): say so once on failure
            self._stop.wait(backoff.next())
        channel.close()

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()

    def _stream(self, stub: node_pb2_grpc.NodeServiceStub) -> Iterator[None]:
        outbox: queue.Queue[node_pb2.NodeMessage | None] = queue.Queue()
        outbox.put(node_pb2.NodeMessage(hello=node_pb2.Hello(
            node_id=self.node_id, hostname=socket.gethostname(), labels=self.labels,
            version=octobot.__version__, tasks=tasks.names(), applied_generation=self.agent.generation,
            pid=os.getpid())))
        done = threading.Event()

        def requests() -> Iterator[node_pb2.NodeMessage]:
            while (msg := outbox.get()) is not None:
                yield msg

        def report() -> None:
            while not done.wait(self.stats.interval):
                outbox.put(node_pb2.NodeMessage(heartbeat=self.agent.heartbeat()))
                for stats in self.stats.drain():
                    outbox.put(node_pb2.NodeMessage(stats=stats))

        call = stub.Connect(requests())
        self._call = call
        reporter = threading.Thread(target=report, name="report", daemon=True)
        reporter.start()
        try:
            for msg in call:
                if msg.WhichOneof("kind") == "assignment":
                    self.agent.apply(msg.assignment)
                    outbox.put(node_pb2.NodeMessage(applied=node_pb2.Applied(generation=msg.assignment.generation)))
                    # Report the new state at once rather than on the next tick.
                    outbox.put(node_pb2.NodeMessage(heartbeat=self.agent.heartbeat()))
                yield None
        finally:
            done.set()
            outbox.put(None)
            call.cancel()
