"""Who is calling, and may they: one server interceptor checks every call.

A caller is identified, in this order, by
- a client certificate (only on the mutual-TLS --node-listen port): a node
  whose id is the certificate's common name;
- a bearer token (``authorization: Bearer obt_...``): its role, and for a node
  credential the one node id it may act as;
- nothing: an anonymous caller, admitted as admin only where the operator chose
  that (a plaintext loopback or --insecure coordinator), else UNAUTHENTICATED.

The role each RPC needs is declared in the .proto files (``required_role``),
read here from the descriptors. A revoked or expired token ends the open
streams that use it within a second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection

from octobot.coordinator import tokens
from octobot.coordinator.store import StoreDown
from octobot.coordinator.tokens import TokenRecord
from octobot.rpc import AUTHORIZATION, BEARER
from octobot.v1 import admin_pb2, auth_pb2, node_pb2, stats_pb2

log = logging.getLogger("octobot.coordinator.auth")

ADMIN, OPERATOR, VIEWER, NODE = auth_pb2.ROLE_ADMIN, auth_pb2.ROLE_OPERATOR, auth_pb2.ROLE_VIEWER, auth_pb2.ROLE_NODE
# Operator roles, strongest first: each may do what those after it may.
_RANK = {ADMIN: 3, OPERATOR: 2, VIEWER: 1}
# Health checks answer anyone: load balancers and probes carry no token.
OPEN = auth_pb2.ROLE_UNSPECIFIED
# How often open streams are checked against revocations and expiry.
ENFORCE_EVERY = 0.5
# How often the token table is read again (tokens made by another process).
RELOAD_EVERY = 5.0
# An unknown token id reloads the table at most this often (bad tokens must not
# turn into a query each).
RELOAD_ON_MISS_EVERY = 1.0


NO_CREDENTIALS = "this coordinator needs a token: pass --token, set OCTOBOT_TOKEN or use a context"
NODE_NO_CREDENTIALS = ("this coordinator needs node credentials: connect to its --node-listen port with "
                       "--client-cert and --client-key, or here with --join-token")


def permits(have: int, required: int) -> bool:
    """Whether a caller of role ``have`` may call a method needing ``required``."""
    if required == OPEN:
        return True
    if required == NODE or have == NODE:
        return have == required
    return _RANK[have] >= _RANK[required]


def role_name(role: int) -> str:
    return tokens.ROLE_NAMES.get(role, "none")


def method_roles() -> dict[str, int]:
    """Every method's full name -> the role it requires, from the .proto options."""
    roles = {}
    for module in (admin_pb2, node_pb2, stats_pb2, auth_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                required = method.GetOptions().Extensions[auth_pb2.required_role]
                roles[f"/{service.full_name}/{method.name}"] = required or ADMIN
    for name in ("Check", "Watch"):
        roles[f"/{health.SERVICE_NAME}/{name}"] = OPEN
    roles[f"/{reflection.SERVICE_NAME}/ServerReflectionInfo"] = VIEWER
    return roles


class Denied(Exception):
    """A call that may not go on: UNAUTHENTICATED or PERMISSION_DENIED."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a call comes from."""

    name: str
    role: int
    peer: str
    # The node id a node principal is bound to (certificate or credential).
    node_id: str | None = None
    token_id: str | None = None
    anonymous: bool = False

    @property
    def certified(self) -> bool:
        """Identified by a client certificate."""
        return self.node_id is not None and self.token_id is None and not self.anonymous

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        return f"{self.name} ({self.peer})"


class TokenCache:
    """The stored tokens, in memory, by id; and when each was last used."""

    def __init__(self) -> None:
        self._by_id: dict[str, TokenRecord] = {}
        self._by_node: dict[str, TokenRecord] = {}
        self._used: dict[str, float] = {}
        # Ids dropped here: a reload read before the revocation committed must
        # not bring them back (ids are random, so none is ever reused).
        self._dropped: set[str] = set()

    def replace(self, records: Sequence[TokenRecord]) -> None:
        records = [r for r in records if r.id not in self._dropped]
        # New dicts swapped in whole: the HTTP thread reads them without a lock.
        self._by_id = {r.id: r for r in records}
        self._by_node = {r.node_id: r for r in records if r.node_id}

    def add(self, record: TokenRecord) -> None:
        self.replace([*self._by_id.values(), record])

    def drop(self, name: str | None = None, node_id: str | None = None) -> None:
        gone = {r.id for r in self._by_id.values() if r.name == name or (node_id is not None and r.node_id == node_id)}
        self._dropped |= gone
        self.replace([r for r in self._by_id.values() if r.id not in gone])

    def known(self, token_id: str) -> bool:
        return token_id in self._by_id

    def valid(self, token_id: str, now: float) -> bool:
        record = self._by_id.get(token_id)
        return record is not None and not record.expired(now)

    def check(self, token: str, now: float) -> TokenRecord:
        """The record a presented token string proves, or Denied."""
        parts = tokens.split(token)
        record = self._by_id.get(parts[0]) if parts else None
        if parts is None or record is None or not tokens.matches(record, parts[1]):
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        if record.expired(now):
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, f"token {record.name!r} has expired")
        self._used[record.id] = now
        return record

    def credential_of(self, node_id: str) -> TokenRecord | None:
        return self._by_node.get(node_id)

    def last_used(self, record: TokenRecord) -> TokenRecord:
        used = self._used.get(record.id)
        if used is None or (record.last_used_at or 0) >= used:
            return record
        return dataclasses.replace(record, last_used_at=used)

    def take_used(self) -> dict[str, float]:
        used, self._used = self._used, {}
        return used


def _bearer(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The one bearer token of a call's metadata, if any. Several are refused:
    which one counts must not depend on their order."""
    values = [value for key, value in metadata or () if key == AUTHORIZATION]
    if not values:
        return None
    if len(values) > 1:
        raise Denied(grpc.StatusCode.UNAUTHENTICATED, "send one authorization header, not several")
    text = values[0].decode(errors="replace") if isinstance(values[0], bytes) else str(values[0])
    if not text.startswith(BEARER):
        raise Denied(grpc.StatusCode.UNAUTHENTICATED, "authorization metadata must be 'Bearer <token>'")
    return text[len(BEARER):].strip()


def _certificate_name(auth_context: dict[str, list[bytes]]) -> str | None:
    names = auth_context.get("x509_common_name")
    return names[0].decode(errors="replace") if names else None


class Auth:
    """Authentication and authorization of every call, and the open calls'
    credentials kept valid."""

    def __init__(self, anonymous: bool,
                 reload: Callable[[], Awaitable[Sequence[TokenRecord]]] | None = None) -> None:
        # Whether a caller without credentials is admitted (as admin).
        self.anonymous = anonymous
        self.tokens = TokenCache()
        self._reload = reload
        self._reloaded_at = 0.0
        self._reloading: asyncio.Future[None] | None = None
        self.roles = method_roles()
        # Open calls: context -> (principal, the task serving it).
        self._calls: dict[Any, tuple[Principal, asyncio.Task[Any] | None]] = {}
        self._revoked: set[Any] = set()

    # -- identity ---------------------------------------------------------

    def identify(self, metadata: Sequence[tuple[str, Any]] | None, auth_context: dict[str, list[bytes]],
                 peer: str, now: float) -> Principal:
        """The principal a call's credentials prove; Denied if they prove nothing."""
        node = _certificate_name(auth_context)
        if node is not None:
            return Principal(name=f"{tokens.NODE_PREFIX}{node}", role=NODE, peer=peer, node_id=node)
        token = _bearer(metadata)
        if token is not None:
            record = self.tokens.check(token, now)
            return Principal(name=record.name, role=record.role, peer=peer, node_id=record.node_id,
                             token_id=record.id)
        if self.anonymous:
            return Principal(name="anonymous", role=ADMIN, peer=peer, anonymous=True)
        raise Denied(grpc.StatusCode.UNAUTHENTICATED, NO_CREDENTIALS)

    @staticmethod
    def authorize(principal: Principal, method: str, required: int) -> None:
        if principal.anonymous:
            return  # admitted everywhere, as a node too
        if not permits(principal.role, required):
            verb = method.rsplit("/", 1)[-1]
            raise Denied(grpc.StatusCode.PERMISSION_DENIED,
                         f"permission denied: role {role_name(principal.role)} ({principal.name}) may not call {verb}"
                         f"; it needs {role_name(required)}")

    def check_node(self, principal: Principal, node_id: str) -> None:
        """May ``principal`` act as node ``node_id``? Denied if not."""
        if principal.node_id is not None:
            if principal.node_id != node_id:
                raise Denied(grpc.StatusCode.PERMISSION_DENIED,
                             f"{principal.name} may not act as node {node_id!r}")
            return
        if not principal.anonymous:
            raise Denied(grpc.StatusCode.PERMISSION_DENIED,
                         f"token {principal.name!r} is a join token: it only joins (NodeService.Join), "
                         f"then the node connects with the credential it got")
        if self.tokens.credential_of(node_id) is not None:
            raise Denied(grpc.StatusCode.UNAUTHENTICATED, f"node {node_id!r} has a credential: connect with it")

    def authorize_http(self, authorization: str | None) -> int:
        """The HTTP status for a /metrics request: 200, 401 or 403 (viewer needed)."""
        try:
            metadata = [(AUTHORIZATION, authorization)] if authorization else []
            principal = self.identify(metadata, {}, "http", time.time())
            self.authorize(principal, "/metrics", VIEWER)
        except Denied as exc:
            return 401 if exc.code == grpc.StatusCode.UNAUTHENTICATED else 403
        return 200

    # -- the token table ----------------------------------------------------

    async def reload(self) -> None:
        """Read the token table again; concurrent callers share one read."""
        if self._reload is None:
            return
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self._load())
        await asyncio.shield(self._reloading)

    async def _reloaded_since(self, since: float) -> None:
        """Wait for a reload that started after ``since``: one at most every
        RELOAD_ON_MISS_EVERY, shared by every call that waits for it, so unknown
        tokens cost a query a second at most (and their callers that long)."""
        try:
            while self._reloaded_at <= since:
                wait = self._reloaded_at + RELOAD_ON_MISS_EVERY - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    await self.reload()
            if self._reloading is not None and not self._reloading.done():
                await asyncio.shield(self._reloading)
        except StoreDown:
            pass  # said once, by Coordinator.db(); the cached tokens decide
        except Exception as exc:  # the cached tokens decide
            log.warning("could not reload tokens: %s", exc)

    async def _load(self) -> None:
        assert self._reload is not None
        self._reloaded_at = time.monotonic()
        self.tokens.replace(await self._reload())

    async def keep_loaded(self, persist_used: Callable[[dict[str, float]], Awaitable[None]]) -> None:
        """Reload the table every few seconds, write last-use times every minute,
        and end open streams whose token was revoked or has expired."""
        written_at = time.monotonic()
        while True:
            await asyncio.sleep(ENFORCE_EVERY)
            if time.monotonic() - self._reloaded_at >= RELOAD_EVERY:
                try:
                    await self.reload()
                except StoreDown:
                    pass  # said once, by Coordinator.db(); the cached tokens stay
                except Exception as exc:  # the cached tokens stay
                    log.warning("could not reload tokens: %s", exc)
            self.enforce()
            if time.monotonic() - written_at >= 60:
                written_at = time.monotonic()
                used = self.tokens.take_used()
                try:
                    await persist_used(used)
                except StoreDown:
                    pass  # said once, by Coordinator.db()
                except Exception as exc:
                    log.warning("could not write tokens' last-use times: %s", exc)

    def enforce(self) -> None:
        """End the open calls whose token is no longer valid."""
        now = time.time()
        for context, (principal, task) in list(self._calls.items()):
            if principal.token_id and not self.tokens.valid(principal.token_id, now) and task is not None:
                log.info("ending a call of %s: its token was revoked or has expired", principal.actor)
                self._revoked.add(context)
                task.cancel()

    # -- calls --------------------------------------------------------------

    async def admit(self, method: str, required: int, metadata: Sequence[tuple[str, Any]] | None,
                    context: grpc.aio.ServicerContext) -> Principal:
        """Identify and authorize a call, or abort it with the reason."""
        arrived = time.monotonic()
        try:
            try:
                principal = self.identify(metadata, context.auth_context(), context.peer(), time.time())
            except Denied:
                token = _bearer(metadata)
                parts = tokens.split(token) if token else None
                if parts is None or self.tokens.known(parts[0]):
                    raise
                await self._reloaded_since(arrived)  # perhaps made since the last reload, by another process
                principal = self.identify(metadata, context.auth_context(), context.peer(), time.time())
            self.authorize(principal, method, required)
        except Denied as exc:
            message = NODE_NO_CREDENTIALS if str(exc) == NO_CREDENTIALS and required == NODE else str(exc)
            await context.abort(exc.code, message)
        return principal

    @contextmanager
    def open_call(self, context: Any, principal: Principal) -> Iterator[None]:
        self._calls[context] = (principal, asyncio.current_task())
        try:
            yield
        finally:
            self._calls.pop(context, None)
            self._revoked.discard(context)

    def principal(self, context: Any) -> Principal:
        """The caller of an open call."""
        entry = self._calls.get(context)
        if entry is None:  # not through the interceptor (in-process tests)
            return Principal(name="anonymous", role=ADMIN, peer=context.peer(), anonymous=True)
        return entry[0]

    def actor(self, context: Any) -> str:
        return self.principal(context).actor

    async def revoked(self, context: grpc.aio.ServicerContext) -> None:
        """After a cancellation: if it was a revocation, end the call with UNAUTHENTICATED."""
        if context in self._revoked:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "the call's token was revoked or has expired")


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every method's handler with Auth.admit and registers the open call."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        required = self.auth.roles.get(details.method, ADMIN)
        if required == OPEN:
            return handler
        return _guard(handler, self.auth, details.method, required, details.invocation_metadata)


def _guard(handler: Any, auth: Auth, method: str, required: int, metadata: Any) -> Any:
    """The same handler, behind authentication and authorization."""
    kind = ("stream" if handler.request_streaming else "unary") + "_" + \
           ("stream" if handler.response_streaming else "unary")
    inner = getattr(handler, kind)

    if inspect.isasyncgenfunction(inner):
        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            principal = await auth.admit(method, required, metadata, context)
            with auth.open_call(context, principal):
                try:
                    async for response in inner(request, context):
                        yield response
                except asyncio.CancelledError:
                    await auth.revoked(context)
                    raise
        return handler._replace(**{kind: streaming})

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        principal = await auth.admit(method, required, metadata, context)
        with auth.open_call(context, principal):
            try:
                return await inner(request, context)
            except asyncio.CancelledError:
                await auth.revoked(context)
                raise
    return handler._replace(**{kind: unary})
