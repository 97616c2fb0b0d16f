"""The coordinator as octoctl's commands see it: stubs on one channel, made
on first use (so `octoctl config` works whatever the config says), and gRPC
errors turned into one line and an exit code."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any

import click
import grpc

from octobot import rpc
from octobot.ctl import config
from octobot.v1 import admin_pb2, admin_pb2_grpc, auth_pb2_grpc, stats_pb2, stats_pb2_grpc

TIMEOUT = 15.0
# How long each of several coordinator addresses may take to answer before the next is tried.
PROBE_TIMEOUT = 5.0
UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class Refused(click.ClickException):
    exit_code = 1


class Unreachable(click.ClickException):
    exit_code = 3


class Cluster:
    """Stubs for the coordinator that the command line, the environment and
    the context name."""

    def __init__(self, flags: config.Settings, context: str | None) -> None:
        self.flags, self.context = flags, context
        self.target = ""

    @cached_property
    def _channel(self) -> grpc.Channel:
        targets, auth = config.connection(self.flags, self.context, os.environ)
        try:
            return self._connect(targets, auth)
        except OSError as exc:  # an unreadable CA file
            raise config.ConfigError(str(exc)) from None

    def _connect(self, targets: tuple[str, ...], auth: rpc.ClientAuth) -> grpc.Channel:
        """A channel to the first of ``targets`` that answers a health check.
        One target is not probed: its first call says whether it answers."""
        if len(targets) == 1:
            self.target = targets[0]
            return rpc.make_channel(self.target, auth)
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # only to choose among several

        details = ""
        for target in targets:
            self.target = target
            channel = rpc.make_channel(target, auth)
            try:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=PROBE_TIMEOUT)
                return channel
            except grpc.RpcError as exc:
                if exc.code() not in UNREACHABLE:  # type: ignore[attr-defined]
                    return channel  # it answered, if only to refuse: the command's own call will say why
                details = exc.details()  # type: ignore[attr-defined]
            channel.close()
        raise Unreachable(f"cannot reach any coordinator of {', '.join(targets)}: {details}")

    @cached_property
    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(self._channel)

    @cached_property
    def stats(self) -> stats_pb2_grpc.StatsServiceStub:
        return stats_pb2_grpc.StatsServiceStub(self._channel)

    @cached_property
    def tokens(self) -> auth_pb2_grpc.TokenServiceStub:
        return auth_pb2_grpc.TokenServiceStub(self._channel)

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request, timeout=TIMEOUT)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def node_id(self, given: str) -> str:
        """The node id ``given`` names: itself, or the one registered id it is a prefix of."""
        ids = [n.node_id for n in self.call(self.admin.ListNodes, admin_pb2.ListNodesRequest()).nodes]
        if given in ids:
            return given
        matches = [i for i in ids if i.startswith(given)]
        if len(matches) > 1:
            raise Refused(f"node id prefix {given!r} is ambiguous: {', '.join(matches[:5])}"
                          f"{' ...' if len(matches) > 5 else ''}")
        return matches[0] if matches else given  # none: the coordinator says NOT_FOUND

    def watch(self, request: stats_pb2.WatchRequest) -> Iterator[stats_pb2.WatchResponse]:
        """Snapshots from StatsService.Watch until the caller stops; the stream is cancelled then."""
        stream = self.stats.Watch(request, wait_for_ready=False)
        try:
            yield from stream
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        finally:
            stream.cancel()

    def _error(self, exc: grpc.RpcError) -> click.ClickException:
        code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
        cause = tuple(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
        if rpc.BROKER_CAUSE in cause:
            return Refused(f"the queue's broker is unavailable: {details}")
        if rpc.STORE_CAUSE in cause:
            return Refused(details)  # "the store is unavailable: ...": the coordinator is up
        if code in UNREACHABLE:
            return Unreachable(f"cannot reach coordinator at {self.target}: {details}")
        # Refusals include UNAUTHENTICATED and PERMISSION_DENIED, whose details
        # say what is missing ("permission denied: role viewer may not call CreateQueue").
        return Refused(details or code.name.lower().replace("_", " "))


pass_cluster = click.make_pass_decorator(Cluster)
