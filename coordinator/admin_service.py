"""AdminService: operators' changes to queues and nodes, and enqueueing."""

from __future__ import annotations

import asyncio
import os

import grpc

from octobot import backends, queue_specs
from octobot.coordinator import limits
from octobot.coordinator.app import Coordinator
from octobot.coordinator.auth import ADMIN
from octobot.coordinator.backlog import endpoint_specs
from octobot.coordinator.brokers import Brokers
from octobot.coordinator.errors import rpc_errors
from octobot.coordinator.planner import runs_on
from octobot.coordinator.records import FailedPrecondition, NodeRecord
from octobot.envelope import BadMessage, Envelope
from octobot.secrets import Located, keep_stored_secret, redact_spec, redact_url, refuse_redacted
from octobot.v1 import admin_pb2, admin_pb2_grpc, queue_pb2

Ctx = grpc.aio.ServicerContext


# A dead-letter listing: bodies cut to this, reasons and tracebacks to that, a page about this big.
MAX_LISTED_BODY = 64 << 10
MAX_LISTED_TEXT = 16 << 10
MAX_PAGE_BYTES = 4 << 20
# Pages walk the dead letters from the oldest, and a backend reads every
# letter before the page: listings reach this many (the largest limit).
MAX_LISTED = 10_000


class AdminService(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, app: Coordinator, sqlite_queue_dir: str | None = None) -> None:
        self.app = app
        store_file = "" if app.store.file is None else os.path.realpath(app.store.file.path)
        self.brokers = Brokers(sqlite_queue_dir, store_file)

    # -- queues -----------------------------------------------------------

    @rpc_errors
    async def CreateQueue(self, request: admin_pb2.CreateQueueRequest, context: Ctx) -> admin_pb2.CreateQueueResponse:
        [declared] = await self._with_broker_backends([request.queue])
        spec = _shared(queue_specs.validate(queue_specs.with_defaults(declared)))
        refuse_redacted(spec.url)
        created, _ = await self.app.db(self.app.store.create_queue, spec, self.app.auth.actor(context))
        await self.app.push()
        [health] = self.app.sessions.health([created])
        return admin_pb2.CreateQueueResponse(queue=redact_spec(created), health=health)

    @rpc_errors
    async def UpdateQueue(self, request: admin_pb2.UpdateQueueRequest, context: Ctx) -> admin_pb2.UpdateQueueResponse:
        updated = await self._update(request.queue.name, request.queue, list(request.update_mask.paths), context)
        [health] = self.app.sessions.health([updated])
        return admin_pb2.UpdateQueueResponse(queue=updated, health=health)

    @rpc_errors
    async def PauseQueue(self, request: admin_pb2.PauseQueueRequest, context: Ctx) -> admin_pb2.PauseQueueResponse:
        spec = await self._update(request.name, queue_pb2.QueueSpec(paused=True), ["paused"], context)
        return admin_pb2.PauseQueueResponse(queue=spec)

    @rpc_errors
    async def ResumeQueue(self, request: admin_pb2.ResumeQueueRequest, context: Ctx) -> admin_pb2.ResumeQueueResponse:
        spec = await self._update(request.name, queue_pb2.QueueSpec(paused=False), ["paused"], context)
        return admin_pb2.ResumeQueueResponse(queue=spec)

    async def _update(self, name: str, new: queue_pb2.QueueSpec, paths: list[str], context: Ctx) -> queue_pb2.QueueSpec:
        current = await self._queue(name)
        if "broker" in paths and new.broker:  # onto a named broker: its backend comes with it
            [new] = await self._with_broker_backends([new])
            paths = [*paths, "backend"] if "backend" not in paths else paths
        merged, changes = queue_specs.merge_update(current, new, paths)
        _shared(merged)
        if changes.keys() & queue_specs.WHERE:
            # Where a queue lives is what the coordinator connects to (enqueue, dead letters): an admin's choice, as at creation.
            self.app.auth.authorize(self.app.auth.principal(context), "/octobot.v1.AdminService/UpdateQueue "
                                    f"changing {', '.join(sorted(changes.keys() & queue_specs.WHERE))}", ADMIN)
        updated, _ = await self.app.db(self.app.store.update_queue, name, changes, self.app.auth.actor(context))
        await self.app.push()
        return redact_spec(updated)

    @rpc_errors
    async def ApplyQueues(self, request: admin_pb2.ApplyQueuesRequest, context: Ctx) -> admin_pb2.ApplyQueuesResponse:
        limits.check_count(len(request.queues), "queues")
        declared = await self._with_broker_backends(list(request.queues))
        # Off the event loop: 10,000 queues take a while to check, and other calls must not wait for it.
        desired = [_shared(spec) for spec in await asyncio.to_thread(queue_specs.validate_all, declared)]
        changes, generation = await self.app.db(self.app.store.apply_queues, desired, request.prune,
                                                request.dry_run, self.app.auth.actor(context))
        if generation:
            await self.app.push()
            if request.prune:
                await self._close_brokers_of_deleted()
        changed = [c.after for c in changes if c.kind != admin_pb2.QUEUE_CHANGE_KIND_DELETE]
        unserved = [h.queue for h in self.app.sessions.health(changed) if h.state == admin_pb2.QUEUE_STATE_UNSERVED]
        return admin_pb2.ApplyQueuesResponse(changes=_redacted(changes), generation=generation, unserved=unserved)

    @rpc_errors
    async def DeleteQueue(self, request: admin_pb2.DeleteQueueRequest, context: Ctx) -> admin_pb2.DeleteQueueResponse:
        response = admin_pb2.DeleteQueueResponse()
        if request.purge_broker:
            spec = await self._queue(request.name)
            response.purged, response.dead_purged = await self.brokers.call(
                spec, lambda broker: (broker.purge(), broker.dead_purge()))
        await self.app.db(self.app.store.delete_queue, limits.check_queue_name(request.name),
                          self.app.auth.actor(context))
        await self.app.push()
        await self._close_brokers_of_deleted()
        return response

    @rpc_errors
    async def GetQueue(self, request: admin_pb2.GetQueueRequest, context: Ctx) -> admin_pb2.GetQueueResponse:
        spec = await self._queue(request.name)
        response = admin_pb2.GetQueueResponse(queue=redact_spec(spec))
        for session in self.app.sessions.all():
            record = session.record
            if not runs_on(spec, record.placeable()):
                continue
            status = next((q for q in session.heartbeat.queues if q.queue == spec.name), None)
            response.placements.add(node_id=session.record.node_id, state=self.app.sessions.state(session.record.node_id),
                                    applied_generation=session.applied_generation, status=status)
        [health] = self.app.sessions.health([spec])
        response.health.CopyFrom(health)
        if spec.endpoints:
            for selector, at in endpoint_specs(spec):
                response.endpoint_backlogs.add(selector=selector, url=redact_url(at.url),
                                               backlog=self.app.backlogs.at(spec.name, selector))
        return response

    @rpc_errors
    async def ListQueues(self, request: admin_pb2.ListQueuesRequest, context: Ctx) -> admin_pb2.ListQueuesResponse:
        queues = await self.app.db(self.app.store.list_queues)
        return admin_pb2.ListQueuesResponse(queues=[redact_spec(q) for q in queues],
                                            health=self.app.sessions.health(queues))

    async def _with_broker_backends(self, specs: list[queue_pb2.QueueSpec]) -> list[queue_pb2.QueueSpec]:
        """Queues declared on a named broker, with the broker's backend where none is given
        (the store refuses one that differs, or a broker that does not exist)."""
        if not any(spec.broker for spec in specs):
            return specs
        backends = {b.name: b.backend for b in await self.app.db(self.app.store.list_brokers)}
        out = []
        for spec in specs:
            if spec.broker and not spec.backend:
                if spec.broker not in backends:
                    raise FailedPrecondition(f"broker {limits.shown(spec.broker)} not found: add it first "
                                             "(octoctl broker add)")
                with_backend = queue_pb2.QueueSpec()
                with_backend.CopyFrom(spec)
                with_backend.backend = backends[spec.broker]
                spec = with_backend
            out.append(spec)
        return out

    # -- brokers ----------------------------------------------------------

    @rpc_errors
    async def CreateBroker(self, request: admin_pb2.CreateBrokerRequest,
                           context: Ctx) -> admin_pb2.CreateBrokerResponse:
        broker = _shared(queue_specs.validate_broker(request.broker))
        for url in (broker.url, *(e.url for e in broker.endpoints)):
            refuse_redacted(url)
        created = await self.app.db(self.app.store.create_broker, broker, self.app.auth.actor(context))
        return admin_pb2.CreateBrokerResponse(broker=redact_spec(created))

    @rpc_errors
    async def UpdateBroker(self, request: admin_pb2.UpdateBrokerRequest,
                           context: Ctx) -> admin_pb2.UpdateBrokerResponse:
        current, _ = await self.app.db(self.app.store.get_broker, limits.check_broker_name(request.broker.name))
        new = queue_pb2.Broker()
        new.CopyFrom(request.broker)
        new.backend = current.backend
        # A URL copied from a listing (its password ****) keeps the stored password.
        new.url = keep_stored_secret(new.url, current.url)
        stored = {e.selector: e.url for e in current.endpoints}
        for endpoint in new.endpoints:
            endpoint.url = (keep_stored_secret(endpoint.url, stored[endpoint.selector])
                            if endpoint.selector in stored else refuse_redacted(endpoint.url))
        updated, _ = await self.app.db(self.app.store.update_broker, queue_specs.validate_broker(new),
                                       self.app.auth.actor(context))
        await self.app.push()
        return admin_pb2.UpdateBrokerResponse(broker=redact_spec(updated))

    @rpc_errors
    async def DeleteBroker(self, request: admin_pb2.DeleteBrokerRequest,
                           context: Ctx) -> admin_pb2.DeleteBrokerResponse:
        await self.app.db(self.app.store.delete_broker, limits.check_broker_name(request.name),
                          self.app.auth.actor(context))
        return admin_pb2.DeleteBrokerResponse()

    @rpc_errors
    async def GetBroker(self, request: admin_pb2.GetBrokerRequest, context: Ctx) -> admin_pb2.GetBrokerResponse:
        broker, queues = await self.app.db(self.app.store.get_broker, limits.check_broker_name(request.name))
        return admin_pb2.GetBrokerResponse(broker=redact_spec(broker), queues=queues)

    @rpc_errors
    async def ListBrokers(self, request: admin_pb2.ListBrokersRequest, context: Ctx) -> admin_pb2.ListBrokersResponse:
        return admin_pb2.ListBrokersResponse(brokers=[redact_spec(b) for b in
                                                      await self.app.db(self.app.store.list_brokers)])

    # -- nodes ------------------------------------------------------------

    @rpc_errors
    async def ListNodes(self, request: admin_pb2.ListNodesRequest, context: Ctx) -> admin_pb2.ListNodesResponse:
        records = await self.app.db(self.app.store.list_nodes)
        nodes = [self.app.sessions.node_info(r) for r in records]
        for info in nodes:
            del info.tasks[:]
        return admin_pb2.ListNodesResponse(nodes=nodes)

    @rpc_errors
    async def GetNode(self, request: admin_pb2.GetNodeRequest, context: Ctx) -> admin_pb2.GetNodeResponse:
        record = await self.app.db(self.app.store.get_node, limits.check_node_ref(request.node_id))
        return admin_pb2.GetNodeResponse(node=self.app.sessions.node_info(record))

    @rpc_errors
    async def DrainNode(self, request: admin_pb2.DrainNodeRequest, context: Ctx) -> admin_pb2.DrainNodeResponse:
        record, _ = await self.app.db(self.app.store.set_draining, limits.check_node_ref(request.node_id), True,
                                      self.app.auth.actor(context))
        return admin_pb2.DrainNodeResponse(node=await self._node_changed(record))

    @rpc_errors
    async def CordonNode(self, request: admin_pb2.CordonNodeRequest, context: Ctx) -> admin_pb2.CordonNodeResponse:
        record, _ = await self.app.db(self.app.store.cordon_node, limits.check_node_ref(request.node_id),
                                      self.app.auth.actor(context))
        return admin_pb2.CordonNodeResponse(node=await self._node_changed(record))

    @rpc_errors
    async def UncordonNode(self, request: admin_pb2.UncordonNodeRequest,
                           context: Ctx) -> admin_pb2.UncordonNodeResponse:
        record, _ = await self.app.db(self.app.store.uncordon_node, limits.check_node_ref(request.node_id),
                                      self.app.auth.actor(context))
        return admin_pb2.UncordonNodeResponse(node=await self._node_changed(record))

    @rpc_errors
    async def ForgetNode(self, request: admin_pb2.ForgetNodeRequest, context: Ctx) -> admin_pb2.ForgetNodeResponse:
        state = self.app.sessions.state(limits.check_node_ref(request.node_id))
        if state != admin_pb2.NODE_STATE_DOWN:
            name = admin_pb2.NodeState.Name(state).removeprefix("NODE_STATE_").lower()
            raise FailedPrecondition(f"node {request.node_id} is {name}: drain and stop it first")
        await self.app.db(self.app.store.forget_node, request.node_id, self.app.auth.actor(context))
        self.app.sessions.forget(request.node_id)
        self.app.auth.tokens.drop(node_id=request.node_id)
        return admin_pb2.ForgetNodeResponse()

    async def _queue(self, name: str, endpoint: str = "") -> queue_pb2.QueueSpec:
        """The queue, located at one of its named broker's endpoints if ``endpoint`` names one."""
        spec = await self.app.db(self.app.store.get_queue, limits.check_queue_name(name))
        places = dict(endpoint_specs(spec))
        if endpoint not in places:
            known = ", ".join(repr(s) for s in places if s) or "none"
            raise ValueError(f"queue {spec.name!r} has no endpoint {limits.shown(endpoint)} (its endpoints: {known})")
        return places[endpoint]

    async def _node_changed(self, record: NodeRecord) -> admin_pb2.NodeInfo:
        """A node's record changed in the store: its live session plans with the new
        record, and the node gets its new assignment at once."""
        session = self.app.sessions.get(record.node_id)
        if session is not None:
            session.record = record
        await self.app.push()
        return self.app.sessions.node_info(record)

    # -- messages ---------------------------------------------------------

    @rpc_errors
    async def Enqueue(self, request: admin_pb2.EnqueueRequest, context: Ctx) -> admin_pb2.EnqueueResponse:
        spec = await self._queue(request.queue, request.endpoint)
        limits.check_count(len(request.messages), "messages")
        envelopes = []
        for i, body in enumerate(request.messages):
            try:
                envelopes.append(Envelope.parse(body, spec.max_message_bytes).completed())
            except BadMessage as exc:
                raise ValueError(f"message {i + 1}: {exc.reason}") from None
        bodies = [e.encode() for e in envelopes]
        await self.brokers.call(spec, lambda broker: broker.publish(bodies))
        return admin_pb2.EnqueueResponse(ids=[e.id for e in envelopes])

    async def _close_brokers_of_deleted(self) -> None:
        """Connections (and SQLite files) of queues that no longer exist are closed, not kept for ever."""
        await self.brokers.forget(await self.app.db(self.app.store.list_queues))

    # -- dead letters -----------------------------------------------------

    @rpc_errors
    async def ListDeadLetters(self, request: admin_pb2.ListDeadLettersRequest,
                              context: Ctx) -> admin_pb2.ListDeadLettersResponse:
        offset = _page(request.page_token)
        limit = min(_limit(request.limit), MAX_LISTED - offset)
        spec = await self._queue(request.queue, request.endpoint)
        letters = await self.brokers.call(spec, lambda broker: broker.dead_list(limit, offset))
        response = admin_pb2.ListDeadLettersResponse()
        size = 0
        for d in letters:
            # Cut, so that one large letter cannot make the page too big for gRPC.
            letter = response.letters.add(id=d.id, body=d.body[:MAX_LISTED_BODY], reason=d.reason[:MAX_LISTED_TEXT],
                                          error=d.error[:MAX_LISTED_TEXT], body_size=len(d.body),
                                          unreadable=not d.readable)
            letter.failed_at.FromNanoseconds(int(d.failed_at * 1e9))
            size += letter.ByteSize()
            if size >= MAX_PAGE_BYTES:
                break
        listed = offset + len(response.letters)
        if (len(response.letters) < len(letters) or len(letters) == limit) and listed < MAX_LISTED:
            response.next_page_token = str(listed)
        return response

    @rpc_errors
    async def RetryDeadLetters(self, request: admin_pb2.RetryDeadLettersRequest,
                               context: Ctx) -> admin_pb2.RetryDeadLettersResponse:
        if request.all == bool(request.ids):
            raise ValueError("name the dead letters to retry, or set all (not both)")
        spec = await self._queue(request.queue, request.endpoint)
        limits.check_count(len(request.ids), "dead letter ids")
        for letter in request.ids:
            limits.check_text(letter, "dead letter id", limits.MAX_ID)
        ids = None if request.all else list(request.ids)
        retried = await self.brokers.call(spec, lambda broker: broker.dead_retry(ids))
        await self.app.db(self.app.store.record, self.app.auth.actor(context), "dead.retry", spec.name,
                          {"ids": ids or "all", "retried": retried})
        return admin_pb2.RetryDeadLettersResponse(retried=retried)

    @rpc_errors
    async def PurgeDeadLetters(self, request: admin_pb2.PurgeDeadLettersRequest,
                               context: Ctx) -> admin_pb2.PurgeDeadLettersResponse:
        spec = await self._queue(request.queue, request.endpoint)
        purged = await self.brokers.call(spec, lambda broker: broker.dead_purge())
        await self.app.db(self.app.store.record, self.app.auth.actor(context), "dead.purge", spec.name, {"purged": purged})
        return admin_pb2.PurgeDeadLettersResponse(purged=purged)

    @rpc_errors
    async def ListAudit(self, request: admin_pb2.ListAuditRequest, context: Ctx) -> admin_pb2.ListAuditResponse:
        return admin_pb2.ListAuditResponse(entries=await self.app.db(self.app.store.list_audit, _limit(request.limit)))

    def close(self) -> None:
        self.brokers.close()


def _shared(spec: Located) -> Located:
    """A coordinator's queues live on brokers its nodes share."""
    if backends.backend_class(spec.backend).in_process:
        raise ValueError(f"the {spec.backend} backend keeps its queues inside one process: a coordinator's queues "
                         "need a broker its nodes share (it serves tests and standalone nodes)")
    return spec


def _redacted(changes: list[admin_pb2.QueueChange]) -> list[admin_pb2.QueueChange]:
    """Apply's changes fit to leave the coordinator: only nodes get broker secrets."""
    for change in changes:
        for side in ("before", "after"):
            if change.HasField(side):
                spec = getattr(change, side)
                spec.url = redact_url(spec.url)
    return changes


def _page(token: str) -> int:
    """A dead-letter page token: how many letters the pages before it held."""
    if not token:
        return 0
    if not (token.isascii() and token.isdigit()) or len(token) > 6 or int(token) >= MAX_LISTED:
        raise ValueError(f"page_token {limits.shown(token)} is not one a listing gave")
    return int(token)


def _limit(requested: int) -> int:
    limit = requested or 100
    if not 0 < limit <= 10_000:
        raise ValueError(f"limit must be between 1 and 10000, got {limit}")
    return limit
