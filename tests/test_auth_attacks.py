"""Hostile callers against the Trust change (issue 11): regression tests for
what a red-team pass found. Each test names the attack and what it did before the fix."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from support.cluster import Coordinator
from support.processes import Processes
from support.trust import bootstrap, client, code_of
from octobot import rpc, secrets
from octobot.coordinator import tokens
from octobot.tools import pki as pki_tool
from octobot.v1 import admin_pb2, admin_pb2_grpc, auth_pb2, auth_pb2_grpc, node_pb2, node_pb2_grpc, queue_pb2

# -- fixtures and helpers --------------------------------------------------------


@pytest.fixture
def plain(procs: Processes, tmp_path: Path) -> Coordinator:
    """A plaintext loopback coordinator: anonymous callers are admin."""
    return procs.coordinator(f"sqlite:///{tmp_path / 'plain.db'}")


def node_client(c: Coordinator, pki: pki_tool.Pki, name: str) -> grpc.Channel:
    return rpc.make_channel(c.node_target, rpc.ClientAuth(ca=str(pki.ca), client_cert=str(pki.cert(f"node-{name}")),
                                                          client_key=str(pki.key(f"node-{name}"))))


@pytest.fixture
def cert_node_n1(secure: Coordinator, pki: pki_tool.Pki) -> Iterator[None]:
    """Node n1 connected with its certificate on the mutual-TLS port."""
    outbox: queue.Queue[node_pb2.ConnectRequest | None] = queue.Queue()
    outbox.put(node_pb2.ConnectRequest(hello=node_pb2.Hello(node_id="n1", hostname="n1-host")))

    def requests() -> Iterator[node_pb2.ConnectRequest]:
        while (msg := outbox.get()) is not None:
            yield msg

    stream = node_pb2_grpc.NodeServiceStub(node_client(secure, pki, "n1")).Connect(requests(), timeout=60)
    assert next(stream).WhichOneof("kind") == "assignment"
    yield
    outbox.put(None)
    stream.cancel()


# -- node identity -----------------------------------------------------------------


def test_join_token_cannot_claim_the_id_of_a_certificate_node(secure: Coordinator, pki: pki_tool.Pki,
                                                             cert_node_n1: None) -> None:
    """A join token holder joined as n1 (a node that proves its id with a
    certificate), got a credential bound to n1 and connected as n1 on --listen:
    it received n1's assignment (broker passwords) and replaced n1's record."""
    join = bootstrap(secure, "dc", "node")
    stub = node_pb2_grpc.NodeServiceStub(client(secure, pki, join))
    code = code_of(lambda: stub.Join(node_pb2.JoinRequest(node_id="n1"), timeout=10))
    assert code in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.FAILED_PRECONDITION)


@pytest.mark.parametrize("node_id", ["n1\n2026-01-01 00:00:00 INFO forged line", "a\x00b", " ", "../../etc"])
def test_join_refuses_node_ids_that_connect_refuses(secure: Coordinator, pki: pki_tool.Pki, node_id: str) -> None:
    """Join checked only the length of the id: newlines (log injection: the
    coordinator logs 'node <id> joined with ...'), NULs and blanks were made into
    credentials that Connect then refused."""
    join = bootstrap(secure, "dc", "node")
    stub = node_pb2_grpc.NodeServiceStub(client(secure, pki, join))
    assert code_of(lambda: stub.Join(node_pb2.JoinRequest(node_id=node_id), timeout=10)) == \
        grpc.StatusCode.INVALID_ARGUMENT


# -- secrets -------------------------------------------------------------------------


def test_references_outside_the_password_are_refused(secure: Coordinator, pki: pki_tool.Pki) -> None:
    """A reference put where the backend parses a port (or a host, or a path)
    came back resolved in the node's queue error, which every viewer reads in
    `node show`: whoever could set a URL read the node's environment or files.
    A reference may now stand only in the user or password (the node also
    resolves only what its operator allowed, and redacts what it used)."""
    admin = client(secure, pki, bootstrap(secure, "root", "admin"))
    for url in ("redis://127.0.0.1:${env:OCTOBOT_TEST_SECRET}/0", "redis://${env:OCTOBOT_TEST_SECRET}:6379/0",
                "sqlite:///${file:/etc/hostname}"):
        spec = queue_pb2.QueueSpec(name="exfil", backend=url.split(":")[0], url=url)
        create = admin_pb2_grpc.AdminServiceStub(admin).CreateQueue
        assert code_of(lambda: create(admin_pb2.CreateQueueRequest(queue=spec), timeout=10)) == \
            grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("url", [
    "redis://u:Sup3rS3cret/Sl@127.0.0.1:1/0",
    "redis://u:Sup3rS3cret#Hs@127.0.0.1:1/0",
    "redis://u:Sup3rS3cret?Qm@127.0.0.1:1/0",
    "redis://u:Sup3rS3cret Sp@127.0.0.1:1/0",
])
def test_unencoded_password_characters_never_show_the_password(plain: Coordinator, url: str) -> None:
    """A password with '/', '#', '?' (common in generated secrets) or a space,
    not percent-encoded: the coordinator either refuses the URL, or never shows
    the password (listing, audit log)."""
    channel = rpc.make_channel(plain.target)
    stub = admin_pb2_grpc.AdminServiceStub(channel)
    spec = queue_pb2.QueueSpec(name="q", backend="redis", url=url)
    try:
        stub.CreateQueue(admin_pb2.CreateQueueRequest(queue=spec), timeout=10)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "Sup3rS3cret" not in (exc.details() or "")
        return
    listed = str(stub.ListQueues(admin_pb2.ListQueuesRequest(), timeout=10))
    audit = str(stub.ListAudit(admin_pb2.ListAuditRequest(), timeout=10))
    assert "Sup3rS3cret" not in listed
    assert "Sup3rS3cret" not in audit


def test_percent_encoded_redacted_password_is_refused() -> None:
    """`password: "****"` in an apply file becomes redis://:%2A%2A%2A%2A@...:
    the guard against applying a listing's redacted password misses it, and the
    queue's password silently becomes '****'."""
    with pytest.raises(ValueError, match="redacted"):
        secrets.refuse_redacted("redis://:%2A%2A%2A%2A@127.0.0.1:6379/0")


# -- tokens ----------------------------------------------------------------------------


def test_token_names_refuse_a_trailing_newline() -> None:
    """NAME uses '$', which matches before a final newline: 'alice\\n' is a
    second token that lists and audits as 'alice'."""
    with pytest.raises(ValueError):
        tokens.check_name("alice\n")


def test_huge_ttl_is_invalid_argument_not_internal(plain: Coordinator) -> None:
    """CreateToken with a ttl beyond what timedelta holds answers INTERNAL
    'OverflowError: ...'."""
    stub = auth_pb2_grpc.TokenServiceStub(rpc.make_channel(plain.target))
    request = auth_pb2.CreateTokenRequest(name="big", role=auth_pb2.ROLE_VIEWER, ttl=Duration(seconds=2 ** 62))
    assert code_of(lambda: stub.CreateToken(request, timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
