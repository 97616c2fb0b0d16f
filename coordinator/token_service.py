"""TokenService: admins make, list and revoke bearer tokens."""

from __future__ import annotations

import time

import grpc

from octobot.coordinator import limits, tokens
from octobot.coordinator.app import Coordinator
from octobot.coordinator.errors import rpc_errors
from octobot.v1 import auth_pb2, auth_pb2_grpc

Ctx = grpc.aio.ServicerContext


class TokenService(auth_pb2_grpc.TokenServiceServicer):
    def __init__(self, app: Coordinator) -> None:
        self.app = app

    @rpc_errors
    async def CreateToken(self, request: auth_pb2.CreateTokenRequest, context: Ctx) -> auth_pb2.CreateTokenResponse:
        tokens.check_name(request.name)
        if request.role not in tokens.ROLE_NAMES:
            raise ValueError(f"role must be one of {', '.join(tokens.ROLES_BY_NAME)}")
        # Not ToTimedelta(): a Duration of any int64 seconds would overflow it (INTERNAL).
        ttl = request.ttl.seconds + request.ttl.nanos / 1e9 if request.HasField("ttl") else 0.0
        tokens.check_ttl(ttl)
        record, secret = tokens.new_token(request.name, request.role, time.time(), ttl or None)
        await self.app.db(self.app.store.create_token, record, self.app.auth.actor(context))
        self.app.auth.tokens.add(record)
        return auth_pb2.CreateTokenResponse(token=record.to_proto(), secret=secret)

    @rpc_errors
    async def ListTokens(self, request: auth_pb2.ListTokensRequest, context: Ctx) -> auth_pb2.ListTokensResponse:
        records = await self.app.db(self.app.store.list_tokens)
        return auth_pb2.ListTokensResponse(tokens=[self.app.auth.tokens.last_used(r).to_proto() for r in records])

    @rpc_errors
    async def RevokeToken(self, request: auth_pb2.RevokeTokenRequest, context: Ctx) -> auth_pb2.RevokeTokenResponse:
        limits.check_text(request.name, "token name", limits.MAX_TOKEN_NAME)  # a NUL fails the query on PostgreSQL
        await self.app.db(self.app.store.revoke_token, request.name, self.app.auth.actor(context))
        self.app.auth.tokens.drop(name=request.name)
        self.app.auth.enforce()
        return auth_pb2.RevokeTokenResponse()
