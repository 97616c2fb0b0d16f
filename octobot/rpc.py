"""The one place gRPC servers and channels are made, so TLS and auth
interceptors plug in here and nowhere else.

Secure by default: a channel is plaintext only to a loopback address (or when
the caller says ``insecure``); anywhere else it speaks TLS, verified against
``ca`` or the system's roots. Tokens travel as ``authorization: Bearer``
metadata on every call.
"""

from __future__ import annotations

import ipaddress
import re
import resource
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

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
AUTHORIZATION = "authorization"
BEARER = "Bearer "
# Trailing metadata on an UNAVAILABLE that a queue's broker or the coordinator's
# store caused: clients must not take it for the coordinator being down.
BROKER_CAUSE = ("octobot-cause", "broker")
STORE_CAUSE = ("octobot-cause", "store")

Registrar = Callable[[grpc.aio.Server], None]


def split_host_port(address: str) -> tuple[str, str]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), port


def is_loopback(address: str) -> bool:
    """Whether ``host:port`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    host = split_host_port(address)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_tls_off_loopback(listen: str, tls: ServerTls | None, insecure: bool, flag: str) -> None:
    """Refuse to serve plaintext where other machines can reach it, unless the
    operator said ``--insecure``: one rule for every listener (``flag`` names it)."""
    if tls is None and not insecure and not is_loopback(listen):
        raise ValueError(f"{flag} {listen} is reachable from other machines: give --tls-cert and --tls-key, "
                         "or --insecure to serve plaintext")


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _read_certificates(path: str | Path, what: str) -> bytes:
    """A PEM file of certificates; OSError naming it when it holds none (gRPC
    would only log its own errors, then fail to connect)."""
    from cryptography import x509  # here: every octoctl command would pay for the import (40 ms)

    data = _read(path, what)
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise OSError(f"{what} {path} is not a PEM certificate") from None
    return data


# What a bearer token may hold: printable ASCII, no spaces (HTTP/2 header values).
_TOKEN_TEXT = re.compile(r"[\x21-\x7e]+")


def check_token(token: str) -> str:
    """ValueError, quoting nothing of it, for a token no coordinator could have made."""
    if not _TOKEN_TEXT.fullmatch(token):
        raise ValueError("the token holds spaces or characters no token has (a copy-paste error?)")
    return token


@dataclass(frozen=True, slots=True)
class ServerTls:
    """A listener's certificate and key (PEM files) and, for mutual TLS, the CA
    that must have signed every client's certificate."""

    cert: str
    key: str
    client_ca: str | None = None

    def credentials(self) -> grpc.ServerCredentials:
        ca = _read_certificates(self.client_ca, "client CA") if self.client_ca else None
        return grpc.ssl_server_credentials([(_read(self.key, "TLS key"), _read_certificates(self.cert, "TLS certificate"))],
                                           root_certificates=ca, require_client_auth=ca is not None)


def add_port(server: grpc.aio.Server, listen: str, tls: ServerTls | None) -> int:
    """Bind ``listen`` (TLS when given); return the port bound."""
    port = server.add_secure_port(listen, tls.credentials()) if tls else server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    return port


# A connection that has not finished its TLS or HTTP/2 handshake by then is
# closed (gRPC's default, 120 s, lets idle sockets hold descriptors).
HANDSHAKE_TIMEOUT_MS = 10_000
# Descriptors kept back from gRPC's connections: the store, brokers, log files,
# the /metrics listener.
RESERVED_FDS = 256


def raise_fd_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (the
    usual soft limit, 1,024, is a few hundred idle connections from running
    out); return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass  # a container may refuse; the cap below still keeps room
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


async def make_server(listen: str, registrars: Iterable[Registrar], service_names: Iterable[str],
                      tls: ServerTls | None = None, interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
                      max_connections: int | None = None) -> tuple[grpc.aio.Server, int]:
    """An asyncio gRPC server on ``listen`` with our services, health checking and
    reflection. Returns the server (not started) and the port it bound.
    ``max_connections``: connections open at once (more are closed at accept)."""
    # Imported here: clients (octoctl) import this module too, and never serve.
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    options = [*_OPTIONS, ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS)]
    if max_connections is not None:
        options.append(("grpc.max_allowed_incoming_connections", max_connections))
    server = grpc.aio.server(options=options, interceptors=list(interceptors))
    for register in registrars:
        register(server)
    names = list(service_names)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    return server, add_port(server, listen, tls)


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """How a client reaches the coordinator: the CA that signed its certificate
    (PEM file; unset: the system's roots), a bearer token, a client certificate
    and key for mutual TLS (nodes), and ``insecure`` for plaintext off loopback."""

    ca: str | None = None
    token: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = False

    def plaintext(self, target: str) -> bool:
        return self.ca is None and self.client_cert is None and (self.insecure or is_loopback(target))

    def channel_credentials(self) -> grpc.ChannelCredentials:
        ca = _read_certificates(self.ca, "CA") if self.ca else None
        if self.client_cert and self.client_key:
            return grpc.ssl_channel_credentials(ca, _read(self.client_key, "client key"),
                                                _read_certificates(self.client_cert, "client certificate"))
        return grpc.ssl_channel_credentials(ca)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((AUTHORIZATION, BEARER + self.token),) if self.token else ()


class _Metadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds fixed metadata (the bearer token) to every call of a blocking channel."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=[*(details.metadata or ()), *self._metadata])

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    intercept_unary_stream = intercept_unary_unary

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    intercept_stream_stream = intercept_stream_unary


def make_channel(target: str, auth: ClientAuth = ClientAuth()) -> grpc.Channel:
    """A blocking channel to the coordinator (octoctl, nodes)."""
    if auth.plaintext(target):
        channel = grpc.insecure_channel(target, options=_OPTIONS)
    else:
        channel = grpc.secure_channel(target, auth.channel_credentials(), options=_OPTIONS)
    metadata = auth.metadata()
    return grpc.intercept_channel(channel, _Metadata(metadata)) if metadata else channel


class _AioMetadata(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor,
                   grpc.aio.StreamUnaryClientInterceptor, grpc.aio.StreamStreamClientInterceptor):
    """The same for an asyncio channel."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=grpc.aio.Metadata(*(details.metadata or ()), *self._metadata))

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    intercept_unary_stream = intercept_unary_unary

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)

    intercept_stream_stream = intercept_stream_unary


def make_aio_channel(target: str, auth: ClientAuth = ClientAuth()) -> grpc.aio.Channel:
    """An asyncio channel to the coordinator (load simulators, async clients)."""
    metadata = auth.metadata()
    interceptors = [_AioMetadata(metadata)] if metadata else None
    if auth.plaintext(target):
        return grpc.aio.insecure_channel(target, options=_OPTIONS, interceptors=interceptors)
    return grpc.aio.secure_channel(target, auth.channel_credentials(), options=_OPTIONS, interceptors=interceptors)
