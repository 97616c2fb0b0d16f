"""NodeService: the long-lived stream each node keeps open."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from octobot.coordinator import limits, tokens
from octobot.coordinator.app import Coordinator
from octobot.coordinator.auth import NODE, Denied
from octobot.coordinator.errors import rpc_errors
from octobot.coordinator.stats.report_intake import admitted
from octobot.coordinator.sessions import NodeSession
from octobot.coordinator.records import FailedPrecondition, NodeRecord, TooMany
from octobot.v1 import node_pb2, node_pb2_grpc

log = logging.getLogger("octobot.coordinator.nodes")


class NodeService(node_pb2_grpc.NodeServiceServicer):
    def __init__(self, app: Coordinator) -> None:
        self.app = app
        # Joins per join token: one leaked token cannot fill the store at once.
        self._joins: dict[str, limits.TokenBucket] = {}

    async def Connect(self, request_iterator: AsyncIterator[node_pb2.ConnectRequest],
                      context: grpc.aio.ServicerContext) -> AsyncIterator[node_pb2.ConnectResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("kind") != "hello" or not first.hello.node_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be a Hello with a node_id")
        hello = first.hello
        try:
            limits.check_hello(hello)  # before anything of it is stored
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad Hello: {exc}")
        principal = self.app.auth.principal(context)
        try:
            self.app.auth.check_node(principal, hello.node_id)
        except Denied as exc:
            await context.abort(exc.code, str(exc))
        if principal.certified and (stale := self.app.auth.tokens.credential_of(hello.node_id)) is not None:
            # The certificate proves the id: a credential someone joined with under it goes.
            await self.app.db(self.app.store.revoke_token, stale.name, principal.actor)
            self.app.auth.tokens.drop(name=stale.name)
            self.app.auth.enforce()
        record = await self.app.db(self.app.store.register_node, NodeRecord(
            node_id=hello.node_id, hostname=hello.hostname, labels=dict(hello.labels),
            version=hello.version, tasks=list(hello.tasks)))
        session = NodeSession(record=record, applied_generation=hello.applied_generation)
        self.app.sessions.attach(session)
        log.info("node %s connected from %s (labels %s, pid %d)", record.node_id, context.peer(),
                 record.labels, hello.pid)
        queues, generation = await self.app.db(self.app.store.snapshot)
        # The full snapshot on connect corrects whatever the node missed.
        session.sent = session.assignment(queues, generation, self.app.sessions.served)
        yield node_pb2.ConnectResponse(assignment=session.sent)
        if not self.app.sessions.placed_as(record):
            self.app.request_push()

        reader = asyncio.create_task(self._read(session, request_iterator))
        try:
            while True:
                outgoing = asyncio.create_task(session.outbox.get())
                done, _ = await asyncio.wait({outgoing, reader}, return_when=asyncio.FIRST_COMPLETED)
                if outgoing in done:
                    message = outgoing.result()
                    if message is None:
                        break  # the node was forgotten
                    yield message
                else:
                    outgoing.cancel()
                    break
        finally:
            reader.cancel()
            self.app.sessions.detach(session)
            self.app.left(session)
            log.info("node %s disconnected", record.node_id)

    @rpc_errors
    async def Join(self, request: node_pb2.JoinRequest, context: grpc.aio.ServicerContext) -> node_pb2.JoinResponse:
        """A node with a join token gets a credential bound to its id."""
        principal = self.app.auth.principal(context)
        if principal.node_id is not None:
            raise FailedPrecondition(f"{principal.name} is already identified: connect without joining")
        if not principal.anonymous and principal.role != NODE:
            raise Denied(grpc.StatusCode.PERMISSION_DENIED, "joining needs a join token (role node)")
        limits.check_node_id(request.node_id)
        bucket = self._joins.setdefault(principal.name, limits.TokenBucket(
            limits.JOINS_PER_SECOND, limits.JOIN_BURST, limits.JOIN_BURST, time.monotonic()))
        if not bucket.take(time.monotonic()):
            raise TooMany(f"{principal.name} joins nodes faster than {limits.JOINS_PER_SECOND:g} a second: retry later")
        record, credential = tokens.new_token(f"{tokens.NODE_PREFIX}{request.node_id}", NODE, time.time(),
                                              node_id=request.node_id)
        await self.app.db(self.app.store.create_token, record, principal.actor)
        self.app.auth.tokens.add(record)
        log.info("node %s joined with %s", request.node_id, principal.actor)
        return node_pb2.JoinResponse(credential=credential)

    async def _read(self, session: NodeSession, request_iterator: AsyncIterator[node_pb2.ConnectRequest]) -> None:
        node_id = session.record.node_id
        try:
            async for msg in request_iterator:
                session.last_heartbeat = time.monotonic()
                session.last_seen_wall = time.time()
                kind = msg.WhichOneof("kind")
                if kind == "heartbeat":
                    if admitted(node_id, self.app.limits.refuse_heartbeat(node_id, msg.heartbeat)):
                        session.heartbeat = msg.heartbeat
                elif kind == "stats":
                    self.app.reports.put(node_id, session.record.labels, msg.stats, session.last_seen_wall)
                elif kind == "applied":
                    session.applied_generation = msg.applied.generation
        except (grpc.aio.AioRpcError, grpc.aio.AbortError):
            pass  # the node went away, or sent what does not parse; the caller cleans up
