"""`python -m octobot.tools.pki`: the files it writes, and a real gRPC TLS handshake with them."""

from __future__ import annotations

import asyncio
import socket
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from octobot import rpc
from octobot.tools import pki


def pki_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "octobot.tools.pki", *args], capture_output=True, text=True,
                          timeout=60)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def san_names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))}


def test_init_writes_a_ca_the_coordinator_and_each_node(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    result = pki_cli("init", str(d), "--node", "web-1", "--node", "web-2", "--coordinator-host", "coord.example",
                     "--coordinator-host", "10.1.2.3")
    assert result.returncode == 0, result.stderr
    stems = ["ca", "coordinator", "node-web-1", "node-web-2"]
    assert sorted(p.name for p in d.iterdir()) == sorted(f"{s}.{e}" for s in stems for e in ("pem", "key"))
    for s in stems:  # every file written is named, and so are the commands using them
        assert f"{d / s}.pem" in result.stdout and f"{d / s}.key" in result.stdout
        assert stat.S_IMODE((d / f"{s}.key").stat().st_mode) == 0o600
    assert "--client-cert" in result.stdout and "--tls-cert" in result.stdout

    ca = load(d / "ca.pem")
    coordinator = load(d / "coordinator.pem")
    coordinator.verify_directly_issued_by(ca)
    assert usages(coordinator) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert san_names(coordinator) >= {"localhost", "127.0.0.1", "::1", socket.gethostname(), "coord.example",
                                      "10.1.2.3"}
    for name in ("web-1", "web-2"):
        node = load(d / f"node-{name}.pem")
        node.verify_directly_issued_by(ca)
        assert node.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        assert usages(node) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
        assert san_names(node) >= {name, "localhost", "127.0.0.1"}

    again = pki_cli("init", str(d), "--node", "x")
    assert again.returncode == 1 and "pki node" in again.stderr  # the CA is never replaced by mistake


def test_node_adds_a_certificate_from_the_existing_ca(tmp_path: Path) -> None:
    pki.write_pki(tmp_path, ["a"])
    result = pki_cli("node", str(tmp_path), "b")
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'node-b.pem'}" in result.stdout and "--client-key" in result.stdout
    load(tmp_path / "node-b.pem").verify_directly_issued_by(load(tmp_path / "ca.pem"))
    assert stat.S_IMODE((tmp_path / "node-b.key").stat().st_mode) == 0o600
    assert pki_cli("node", str(tmp_path), "b").returncode == 1  # not replaced
    bad = pki_cli("node", str(tmp_path), "../escape")
    assert bad.returncode == 1 and "node name" in bad.stderr


def health_check(target: str, auth: rpc.ClientAuth, tls: rpc.ServerTls) -> str:
    """Serve health checks over ``tls`` and call one with ``auth``: the status, or the error code's name."""
    async def run() -> str:
        server, port = await rpc.make_server("127.0.0.1:0", [], [], tls=tls)
        await server.start()
        try:
            async with rpc.make_aio_channel(target.format(port=port), auth) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
                return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        finally:
            await server.stop(None)

    return asyncio.run(run())


@pytest.mark.parametrize("target", ["127.0.0.1:{port}", "localhost:{port}"])
def test_grpc_mutual_tls_with_the_generated_certificates(tmp_path: Path, target: str) -> None:
    files, _ = pki.write_pki(tmp_path, ["n1"])
    assert health_check(target, files.node_auth("n1"), files.server_tls(mutual=True)) == "SERVING"
    # Server-side TLS only: a client with just the CA (octoctl) gets through.
    assert health_check(target, rpc.ClientAuth(ca=str(files.ca)), files.server_tls()) == "SERVING"


def test_grpc_refuses_a_client_of_another_ca_and_an_expired_one(tmp_path: Path) -> None:
    files, _ = pki.write_pki(tmp_path / "ours", ["n1"])
    other = pki.make_ca("Someone else's CA")
    pki.issue(other, "n1", ["n1"]).write(tmp_path, "stranger")
    pki.issue(pki.Issued.load(files.directory, "ca"), "n1", ["n1"], expired=True).write(tmp_path, "expired")
    for stem in ("stranger", "expired"):
        auth = rpc.ClientAuth(ca=str(files.ca), client_cert=str(tmp_path / f"{stem}.pem"),
                              client_key=str(tmp_path / f"{stem}.key"))
        assert health_check("127.0.0.1:{port}", auth, files.server_tls(mutual=True)) == "UNAVAILABLE", stem
    # And a client trusting another CA does not accept the coordinator.
    other.write(tmp_path, "other-ca")
    assert health_check("127.0.0.1:{port}", rpc.ClientAuth(ca=str(tmp_path / "other-ca.pem")),
                        files.server_tls()) == "UNAVAILABLE"
