"""Trust: TLS on the coordinator's port, node identity by client certificate or
join token, roles checked on every call, tokens that can be revoked or expire.
Real processes, real TLS with certificates made here."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from support.brokers import REDIS_URL
from support.cluster import Coordinator, octoctl, wait_until
from support.processes import Processes
from support.trust import bootstrap, client, code_of, ctl_env
from octobot import rpc
from octobot.coordinator import auth, tokens
from octobot.coordinator.auth import ADMIN, NODE, OPERATOR, VIEWER, Auth, Denied, Principal, permits
from octobot.tools import pki as pki_tool
from octobot.v1 import admin_pb2, admin_pb2_grpc, auth_pb2, auth_pb2_grpc, node_pb2, node_pb2_grpc
from octobot.v1 import stats_pb2, stats_pb2_grpc

# -- pure parts ----------------------------------------------------------------


def test_roles_rank_and_node_stands_apart() -> None:
    assert permits(ADMIN, OPERATOR) and permits(ADMIN, VIEWER) and permits(OPERATOR, VIEWER)
    assert not permits(VIEWER, OPERATOR) and not permits(OPERATOR, ADMIN)
    assert permits(NODE, NODE) and not permits(ADMIN, NODE) and not permits(NODE, VIEWER)
    assert permits(VIEWER, auth.OPEN) and permits(NODE, auth.OPEN)


def test_every_rpc_declares_its_role_in_the_proto() -> None:
    from octobot.v1 import node_pb2 as n, stats_pb2 as s
    for module in (admin_pb2, n, s, auth_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                assert method.GetOptions().Extensions[auth_pb2.required_role], f"{service.name}.{method.name}"
    roles = auth.method_roles()
    assert roles["/octobot.v1.AdminService/CreateQueue"] == ADMIN
    assert roles["/octobot.v1.AdminService/PauseQueue"] == OPERATOR
    assert roles["/octobot.v1.StatsService/Watch"] == VIEWER
    assert roles["/octobot.v1.NodeService/Connect"] == NODE
    assert roles["/grpc.health.v1.Health/Check"] == auth.OPEN


def test_token_format_and_check() -> None:
    record, token = tokens.new_token("alice", VIEWER, now=1000.0, ttl=60)
    assert token.startswith("obt_") and tokens.split(token) == (record.id, token[21:])
    assert record.secret_sha256 != token and token.split("_", 2)[2] not in record.secret_sha256
    cache = auth.TokenCache()
    cache.add(record)
    assert cache.check(token, now=1001.0) == record
    with pytest.raises(Denied, match="expired"):
        cache.check(token, now=1060.0)
    for bad in ("", "obt_x", token[:-1] + ("A" if token[-1] != "A" else "B"), token + "x"):
        with pytest.raises(Denied, match="invalid token"):
            cache.check(bad, now=1001.0)
    with pytest.raises(ValueError):
        tokens.check_name("node:x")  # node credentials' names are reserved


def test_identify_anonymous_only_where_allowed() -> None:
    open_auth, closed = Auth(anonymous=True), Auth(anonymous=False)
    assert open_auth.identify([], {}, "peer", 0).anonymous
    with pytest.raises(Denied) as denied:
        closed.identify([], {}, "peer", 0)
    assert denied.value.code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(Denied):
        closed.identify([("authorization", "Basic x")], {}, "peer", 0)
    record, token = tokens.new_token("t", VIEWER, now=0)
    closed.tokens.add(record)
    assert closed.identify([("authorization", f"Bearer {token}")], {}, "peer", 1).name == "t"
    with pytest.raises(Denied, match="one authorization header"):
        closed.identify([("authorization", f"Bearer {token}"), ("authorization", "Bearer x")], {}, "peer", 1)
    node = closed.identify([], {"x509_common_name": [b"n1"]}, "peer", 0)
    assert node.role == NODE and node.node_id == "n1"


def test_check_node_binds_ids() -> None:
    a = Auth(anonymous=True)
    record, _ = tokens.new_token("node:n1", NODE, 0, node_id="n1")
    a.tokens.add(record)
    a.check_node(Principal("node:n1", NODE, "p", node_id="n1"), "n1")
    with pytest.raises(Denied) as other:
        a.check_node(Principal("node:n1", NODE, "p", node_id="n1"), "n2")
    assert other.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(Denied, match="join token"):
        a.check_node(Principal("join", NODE, "p", token_id="j"), "n3")
    anonymous = Principal("anonymous", ADMIN, "p", anonymous=True)
    a.check_node(anonymous, "n3")
    with pytest.raises(Denied, match="has a credential"):
        a.check_node(anonymous, "n1")


# -- real processes ------------------------------------------------------------


def test_plaintext_and_anonymous_callers_are_refused(secure: Coordinator, pki: pki_tool.Pki) -> None:
    plain = octoctl(secure.target, "queue", "list", check=False)
    assert plain.returncode == 3
    no_token = client(secure, pki)
    listing = lambda ch: admin_pb2_grpc.AdminServiceStub(ch).ListQueues(admin_pb2.ListQueuesRequest(), timeout=10)  # noqa: E731
    assert code_of(lambda: listing(no_token)) == grpc.StatusCode.UNAUTHENTICATED
    assert code_of(lambda: listing(client(secure, pki, "obt_0123456789abcdef_" + "x" * 43))) == \
        grpc.StatusCode.UNAUTHENTICATED
    # Health checks answer without a token (probes carry none).
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    assert health_pb2_grpc.HealthStub(no_token).Check(health_pb2.HealthCheckRequest(), timeout=10).status == \
        health_pb2.HealthCheckResponse.SERVING


def test_roles_through_octoctl(secure: Coordinator, pki: pki_tool.Pki, key: str) -> None:
    admin = bootstrap(secure, "root", "admin")
    env = ctl_env(pki, admin)
    viewer = octoctl(secure.target, "token", "create", "watcher", "--role", "viewer", env=env).stdout.strip()
    operator = octoctl(secure.target, "token", "create", "ops", "--role", "operator", env=env).stdout.strip()

    denied = octoctl(secure.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL,
                     check=False, env=ctl_env(pki, viewer))
    assert denied.returncode == 1 and "permission denied" in denied.stderr and "\n" not in denied.stderr.strip()
    octoctl(secure.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, env=env)
    octoctl(secure.target, "queue", "list", env=ctl_env(pki, viewer))
    octoctl(secure.target, "queue", "pause", key, env=ctl_env(pki, operator))
    octoctl(secure.target, "queue", "set", key, "--concurrency", "3", env=ctl_env(pki, operator))
    # Where a queue lives is what the coordinator itself connects to: an admin's choice.
    moved = octoctl(secure.target, "queue", "set", key, "--url", "redis://10.9.9.9:6379/0", check=False,
                    env=ctl_env(pki, operator))
    assert moved.returncode == 1 and "permission denied" in moved.stderr and "changing url" in moved.stderr
    made = octoctl(secure.target, "token", "create", "sneaky", "--role", "admin", check=False,
                   env=ctl_env(pki, operator))
    assert made.returncode == 1 and "permission denied" in made.stderr
    history = octoctl(secure.target, "history", "-o", "json", env=env).stdout
    assert '"actor": "root (ipv4:127.0.0.1' in history and '"actor": "ops (ipv4:127.0.0.1' in history
    listed = octoctl(secure.target, "token", "list", "-o", "json", env=env).stdout
    assert "watcher" in listed and viewer.split("_", 2)[2] not in listed


def test_revoked_token_ends_open_streams_within_a_second(secure: Coordinator, pki: pki_tool.Pki) -> None:
    admin = client(secure, pki, bootstrap(secure, "root", "admin"))
    tokens_stub = auth_pb2_grpc.TokenServiceStub(admin)
    viewer = tokens_stub.CreateToken(auth_pb2.CreateTokenRequest(name="dash", role=VIEWER), timeout=10).secret
    watch = stats_pb2_grpc.StatsServiceStub(client(secure, pki, viewer)).Watch(
        stats_pb2.WatchRequest(window="1m", interval_seconds=0.2), timeout=30)
    next(watch)
    ended: list[grpc.StatusCode] = []

    def drain() -> None:
        try:
            for _ in watch:
                pass
        except grpc.RpcError as exc:
            ended.append(exc.code())

    reader = threading.Thread(target=drain)
    reader.start()
    revoked_at = time.monotonic()
    tokens_stub.RevokeToken(auth_pb2.RevokeTokenRequest(name="dash"), timeout=10)
    reader.join(timeout=5)
    assert ended, "the Watch stream outlived its revoked token"
    assert time.monotonic() - revoked_at < 1.5
    assert ended[0] in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.CANCELLED)
    listing = admin_pb2_grpc.AdminServiceStub(client(secure, pki, viewer)).ListQueues
    assert code_of(lambda: listing(admin_pb2.ListQueuesRequest(), timeout=10)) == grpc.StatusCode.UNAUTHENTICATED


def test_expired_token_is_refused(secure: Coordinator, pki: pki_tool.Pki) -> None:
    stub = auth_pb2_grpc.TokenServiceStub(client(secure, pki, bootstrap(secure, "root", "admin")))
    short = stub.CreateToken(auth_pb2.CreateTokenRequest(name="brief", role=VIEWER, ttl=Duration(seconds=1)),
                             timeout=10).secret
    listing = admin_pb2_grpc.AdminServiceStub(client(secure, pki, short)).ListQueues
    listing(admin_pb2.ListQueuesRequest(), timeout=10)
    time.sleep(1.2)
    try:
        listing(admin_pb2.ListQueuesRequest(), timeout=10)
        raise AssertionError("an expired token was accepted")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in exc.details()


def _connect(channel: grpc.Channel, node_id: str) -> Iterator[node_pb2.ConnectResponse]:
    hello = node_pb2.ConnectRequest(hello=node_pb2.Hello(node_id=node_id, hostname="h"))
    return node_pb2_grpc.NodeServiceStub(channel).Connect(iter([hello]), timeout=10)


def test_nodes_prove_their_id_with_certificates(secure: Coordinator, pki: pki_tool.Pki, procs: Processes,
                                                tmp_path: Path) -> None:
    node = procs.node(secure.node_target, "n1", ["dc=a"], extra=(
        "--ca", str(pki.ca), "--client-cert", str(pki.cert("node-n1")), "--client-key", str(pki.key("node-n1"))))
    admin = admin_pb2_grpc.AdminServiceStub(client(secure, pki, bootstrap(secure, "root", "admin")))
    wait_until(lambda: [n.node_id for n in admin.ListNodes(admin_pb2.ListNodesRequest(), timeout=10).nodes
                        if n.state == admin_pb2.NODE_STATE_UP] == ["n1"], what="n1 up under its certificate's name")
    assert node.node_id == "n1"

    n2 = rpc.make_channel(secure.node_target, pki.node_auth("n2"))
    assert code_of(lambda: next(_connect(n2, "n1"))) == grpc.StatusCode.PERMISSION_DENIED
    no_cert = rpc.make_channel(secure.node_target, rpc.ClientAuth(ca=str(pki.ca)))
    assert code_of(lambda: next(_connect(no_cert, "n1"))) == grpc.StatusCode.UNAVAILABLE
    rogue_ca = pki_tool.make_ca("Rogue CA")
    rogue = pki_tool.issue_node(rogue_ca, "n1")
    rogue.write(tmp_path, "rogue")
    forged = rpc.make_channel(secure.node_target, rpc.ClientAuth(ca=str(pki.ca), client_cert=str(tmp_path / "rogue.pem"),
                                                                 client_key=str(tmp_path / "rogue.key")))
    assert code_of(lambda: next(_connect(forged, "n1"))) == grpc.StatusCode.UNAVAILABLE
    # A node certificate is no operator credential.
    as_operator = admin_pb2_grpc.AdminServiceStub(n2).DrainNode
    assert code_of(lambda: as_operator(admin_pb2.DrainNodeRequest(node_id="n1"), timeout=10)) == \
        grpc.StatusCode.PERMISSION_DENIED
    # The real node was never displaced.
    time.sleep(1)
    info = admin.GetNode(admin_pb2.GetNodeRequest(node_id="n1"), timeout=10).node
    assert info.state == admin_pb2.NODE_STATE_UP and not info.draining


def node_info(admin: admin_pb2_grpc.AdminServiceStub, node_id: str) -> admin_pb2.NodeInfo:
    """The node as the coordinator shows it; empty until it has registered."""
    try:
        return admin.GetNode(admin_pb2.GetNodeRequest(node_id=node_id), timeout=10).node
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return admin_pb2.NodeInfo()


def test_join_token_binds_a_node_to_its_credential(secure: Coordinator, pki: pki_tool.Pki, procs: Processes,
                                                   key: str) -> None:
    admin_token = bootstrap(secure, "root", "admin")
    env = ctl_env(pki, admin_token)
    join = octoctl(secure.target, "token", "create", "dc-a-join", "--role", "node", "--expires", "1h",
                   env=env).stdout.strip()
    octoctl(secure.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, env=env)
    node = procs.node(secure.target, "joiner", ["dc=a"], extra=("--ca", str(pki.ca), "--join-token", join))
    node_id = node.node_id
    credential_file = node.state_dir / "credential"
    wait_until(credential_file.exists, what="the node to keep its credential")
    assert stat.S_IMODE(credential_file.stat().st_mode) == 0o600
    admin = admin_pb2_grpc.AdminServiceStub(client(secure, pki, admin_token))
    wait_until(lambda: node_info(admin, node_id).applied_generation,
               what="the joined node to apply its assignment")

    join_channel = client(secure, pki, join)
    # The join token joins; it cannot connect as the node, nor join it again.
    assert code_of(lambda: next(_connect(join_channel, node_id))) == grpc.StatusCode.PERMISSION_DENIED
    rejoin = node_pb2_grpc.NodeServiceStub(join_channel).Join
    assert code_of(lambda: rejoin(node_pb2.JoinRequest(node_id=node_id), timeout=10)) == \
        grpc.StatusCode.ALREADY_EXISTS
    # Another node's credential cannot take this node's id.
    other = rejoin(node_pb2.JoinRequest(node_id="intruder"), timeout=10).credential
    assert code_of(lambda: next(_connect(client(secure, pki, other), node_id))) == grpc.StatusCode.PERMISSION_DENIED
    # A join token is no operator credential either.
    assert code_of(lambda: admin_pb2_grpc.AdminServiceStub(join_channel).ListQueues(
        admin_pb2.ListQueuesRequest(), timeout=10)) == grpc.StatusCode.PERMISSION_DENIED

    # Restarted without the join token, the node connects with its credential.
    node.terminate()
    wait_until(lambda: node_info(admin, node_id).state ==
               admin_pb2.NODE_STATE_DOWN, what="the node down")
    again = procs.node(secure.target, "joiner", ["dc=a"], extra=("--ca", str(pki.ca)))
    wait_until(lambda: node_info(admin, node_id).state ==
               admin_pb2.NODE_STATE_UP, what="the node back with its credential")
    assert again.output().count("joined the cluster") == 1  # the log is shared by the node's runs

    # Forgotten, its credential is gone; with a join token it joins again by itself.
    again.terminate()
    wait_until(lambda: node_info(admin, node_id).state ==
               admin_pb2.NODE_STATE_DOWN, what="the node down again")
    octoctl(secure.target, "node", "forget", node_id, env=env)
    rejoined = procs.node(secure.target, "joiner", ["dc=a"], extra=("--ca", str(pki.ca), "--join-token", join))
    wait_until(lambda: rejoined.output().count("joined the cluster") == 2, what="the forgotten node to join again")
    wait_until(lambda: node_info(admin, node_id).state ==
               admin_pb2.NODE_STATE_UP, what="the node up after joining again")
    assert "refused the node's credential" in rejoined.output()


def test_anonymous_loopback_cannot_take_a_joined_nodes_id(procs: Processes, tmp_path: Path) -> None:
    c = procs.coordinator(f"sqlite:///{tmp_path / 'plain.db'}")
    channel = rpc.make_channel(c.target)
    credential = node_pb2_grpc.NodeServiceStub(channel).Join(node_pb2.JoinRequest(node_id="bound"), timeout=10)
    assert credential.credential.startswith("obt_")
    assert code_of(lambda: next(_connect(channel, "bound"))) == grpc.StatusCode.UNAUTHENTICATED
    assert next(_connect(rpc.make_channel(c.target, rpc.ClientAuth(token=credential.credential)), "bound"))
    assert next(_connect(channel, "free"))  # anonymous nodes still work on a loopback coordinator


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0"])
def test_refuses_plaintext_off_loopback(listen: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "octobot.coordinator.main", "--listen", listen,
                             "--db", f"sqlite:///{tmp_path / 'x.db'}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--insecure" in result.stderr and "Traceback" not in result.stderr


def test_metrics_need_a_viewer_token_over_tls(secure: Coordinator, pki: pki_tool.Pki) -> None:
    import http.client
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=str(pki.ca))

    def status(token: str | None) -> int:
        request = urllib.request.Request(secure.metrics_url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    viewer = bootstrap(secure, "scraper", "viewer")
    assert status(None) == 401
    assert status("obt_0123456789abcdef_" + "y" * 43) == 401
    # A token made by another process is known after the next reload (seconds).
    wait_until(lambda: status(viewer) == 200, timeout=10, what="the scraper's token to be accepted")
    node_join = bootstrap(secure, "j", "node")
    wait_until(lambda: status(node_join) == 403, timeout=10, what="a node token to be refused as a scraper")
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        urllib.request.urlopen(secure.metrics_url.replace("https", "http"), timeout=10)


def test_bootstrap_refuses_duplicates_in_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'b.db'}"
    cmd = [sys.executable, "-m", "octobot.coordinator.main", "token", "create", "root", "--role", "admin", "--db", db]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and first.stdout.startswith("obt_")
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and "already exists" in second.stderr and "Traceback" not in second.stderr
    assert os.path.exists(tmp_path / "b.db")


def test_grpcurl_with_ca_and_token(secure: Coordinator, pki: pki_tool.Pki) -> None:
    """The README's secured grpcurl line: reflection and calls need a viewer token."""
    viewer = bootstrap(secure, "curl", "viewer")
    grpcurl = ["grpcurl", "-cacert", str(pki.ca)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*grpcurl, *args], capture_output=True, text=True, timeout=60)

    wait_until(lambda: run("-H", f"authorization: Bearer {viewer}", secure.target, "list").returncode == 0,
               timeout=10, what="grpcurl list with a viewer token")
    listed = run("-H", f"authorization: Bearer {viewer}", secure.target, "list").stdout
    assert "octobot.v1.StatsService" in listed and "octobot.v1.TokenService" in listed
    cluster = run("-H", f"authorization: Bearer {viewer}", "-d", '{"window": "1m"}', secure.target,
                  "octobot.v1.StatsService/GetCluster")
    assert cluster.returncode == 0, cluster.stderr
    anonymous = run(secure.target, "list")
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr


def test_octoctl_says_what_is_wrong_in_one_line(procs: Processes, tmp_path: Path, key: str) -> None:
    """No gRPC core dump before the line: a file that is no CA, a token pasted
    with a space, and a broker that is down (not the coordinator)."""
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate")
    c = procs.coordinator(f"sqlite:///{tmp_path / 'o.db'}")
    for flags, code, words in ((["--ca", str(bad_ca)], 2, "is not a PEM certificate"),
                               (["--token", "obt_é x"], 2, "characters no token has")):
        result = subprocess.run([sys.executable, "-m", "octobot.ctl.main", "--coordinator", c.target, *flags,
                                 "queue", "list"], capture_output=True, text=True, timeout=60)
        assert result.returncode == code and words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    octoctl(c.target, "queue", "add", key, "--backend", "redis", "--url", "redis://127.0.0.1:1/0")
    down = octoctl(c.target, "enqueue", key, "t", check=False)
    assert down.returncode == 1 and "broker is unavailable" in down.stderr and "coordinator" not in down.stderr


def test_one_join_token_cannot_flood_the_store(procs: Processes, tmp_path: Path) -> None:
    """A leaked join token makes a fleet's worth of credentials, then a few a second."""
    from octobot.coordinator import limits

    c = procs.coordinator(f"sqlite:///{tmp_path / 'o.db'}")
    join = node_pb2_grpc.NodeServiceStub(rpc.make_channel(c.target)).Join
    codes = [code_of(lambda: join(node_pb2.JoinRequest(node_id=f"flood-{i}"), timeout=10))
             for i in range(int(limits.JOIN_BURST) + 20)]
    assert codes.count(grpc.StatusCode.OK) <= limits.JOIN_BURST + 20 * limits.JOINS_PER_SECOND
    assert codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
