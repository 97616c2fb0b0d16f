"""The one place gRPC servers and channels are made, so TLS and auth
interceptors plug in here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

MAX_MESSAGE_BYTES = 64 << 20
_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Pings find a dead peer on an idle stream (a node whose host vanished).
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
]

Registrar = Callable[[grpc.aio.Server], None]


async def make_server(listen: str, registrars: Iterable[Registrar],
                      service_names: Iterable[str]) -> tuple[grpc.aio.Server, int]:
    """An asyncio gRPC server on ``listen`` with our services, health checking and
    reflection. Returns the server (not started) and the port it bound."""
    server = grpc.aio.server(options=_OPTIONS)
    for register in registrars:
        register(server)
    names = list(service_names)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    return server, port


def make_channel(target: str) -> grpc.Channel:
    """A blocking channel to the coordinator (octoctl, nodes)."""
    return grpc.insecure_channel(target, options=_OPTIONS)


def make_aio_channel(target: str) -> grpc.aio.Channel:
    """An asyncio channel to the coordinator (load simulators, async clients)."""
    return grpc.aio.insecure_channel(target, options=_OPTIONS)
