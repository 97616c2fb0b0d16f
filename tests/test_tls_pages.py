"""The HTTP pages over real TLS, the bearer-token hook, and the rule that
plaintext listeners stay on loopback unless --insecure says otherwise."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.brokers import free_port
from support.cluster import Node, wait_until
from octobot import http_pages, rpc
from octobot.http_pages import serve_pages
from octobot.tools.pki import Pki, write_pki

PAGES = {"/metrics": lambda: (b"up 1\n", "text/plain")}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return write_pki(tmp_path_factory.mktemp("pki"), ["n1"])[0]


Serve = Callable[..., int]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """serve(**serve_pages' keywords) -> the port of PAGES served on loopback, until the test ends."""
    servers: list[ThreadingHTTPServer] = []

    def start(**kwargs: Any) -> int:
        server, port = serve_pages("127.0.0.1:0", PAGES, **kwargs)
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client_context(files: Pki, node: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(files.ca))
    if node:
        context.load_cert_chain(files.cert(f"node-{node}"), files.key(f"node-{node}"))
    return context


def get(port: int, context: ssl.SSLContext | None, headers: dict[str, str] | None = None,
        host: str = "127.0.0.1") -> http.client.HTTPResponse:
    conn = (http.client.HTTPSConnection(host, port, context=context, timeout=5) if context
            else http.client.HTTPConnection(host, port, timeout=5))
    conn.request("GET", "/metrics", headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_https_page_verified_with_the_ca(files: Pki, serve: Serve) -> None:
    port = serve(tls=files.server_tls())
    for host in ("127.0.0.1", "localhost"):
        conn = http.client.HTTPSConnection(host, port, context=client_context(files), timeout=5)
        conn.request("GET", "/metrics")
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"up 1\n")
        conn.close()
    # A client that trusts only the system's roots refuses our certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        get(port, ssl.create_default_context())


def test_plaintext_client_gets_nothing_from_the_tls_page(files: Pki, serve: Serve) -> None:
    port = serve(tls=files.server_tls())
    with pytest.raises((http.client.HTTPException, OSError)):
        get(port, None)
    assert get(port, client_context(files)).status == 200  # and the server goes on


def test_a_silent_client_blocks_nobody_and_is_dropped(files: Pki, serve: Serve,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_pages, "TIMEOUT", 2.0)
    port = serve(tls=files.server_tls())
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]  # connect, never say hello
    started = time.monotonic()
    assert get(port, client_context(files)).status == 200
    assert time.monotonic() - started < 1.5  # served while the silent ones are still waiting
    for sock in silent:
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed by the server after its timeout
        sock.close()


def test_mutual_tls_page_wants_a_client_certificate(files: Pki, serve: Serve) -> None:
    port = serve(tls=files.server_tls(mutual=True))
    assert get(port, client_context(files, node="n1")).status == 200
    with pytest.raises((ssl.SSLError, OSError)):
        get(port, client_context(files))


def test_authorize_hook(files: Pki, serve: Serve) -> None:
    seen: list[str | None] = []

    def authorize(header: str | None) -> int:
        seen.append(header)
        return 401 if header is None else 200 if header == "Bearer right" else 403

    port = serve(tls=files.server_tls(), authorize=authorize)
    context = client_context(files)
    refused = get(port, context)
    assert refused.status == 401 and refused.getheader("WWW-Authenticate", "").startswith("Bearer")
    assert get(port, context, {"Authorization": "Bearer wrong"}).status == 403
    assert get(port, context, {"Authorization": "Bearer right"}).status == 200
    assert seen == [None, "Bearer wrong", "Bearer right"]


def test_bad_certificate_files_are_one_line(tmp_path: Path, files: Pki) -> None:
    with pytest.raises(OSError, match="cannot load TLS certificate"):
        serve_pages("127.0.0.1:0", PAGES, tls=rpc.ServerTls(str(files.ca), str(tmp_path / "missing.key")))


@pytest.mark.parametrize(("listen", "tls", "insecure", "ok"), [
    ("0.0.0.0:9100", False, False, False),
    ("[::]:9100", False, False, False),
    ("coord.example:9100", False, False, False),
    ("0.0.0.0:9100", False, True, True),
    ("0.0.0.0:9100", True, False, True),
    ("127.0.0.1:9100", False, False, True),
    ("localhost:9100", False, False, True),
    ("[::1]:9100", False, False, True),
])
def test_plaintext_only_on_loopback_unless_insecure(listen: str, tls: bool, insecure: bool, ok: bool) -> None:
    server_tls = rpc.ServerTls("cert.pem", "key.pem") if tls else None
    if ok:
        rpc.require_tls_off_loopback(listen, server_tls, insecure, "--metrics-listen")
    else:
        with pytest.raises(ValueError, match=r"^--metrics-listen .* or --insecure"):
            rpc.require_tls_off_loopback(listen, server_tls, insecure, "--metrics-listen")


def test_standalone_node_serves_its_page_over_https_with_its_certificate(files: Pki, tmp_path: Path) -> None:
    config = tmp_path / "octobot.yml"
    config.write_text(f"queues:\n  - {{name: q, backend: sqlite, url: 'sqlite:///{tmp_path / 'q.db'}'}}\n")
    port = free_port()
    node = Node(None, tmp_path, "solo", [], extra=(
        "--config", str(config), "--metrics-listen", f"127.0.0.1:{port}",
        "--tls-cert", str(files.cert("node-n1")), "--tls-key", str(files.key("node-n1"))))
    try:
        def status() -> dict[str, Any] | None:
            try:
                with urllib.request.urlopen(f"https://localhost:{port}/", timeout=5,
                                            context=client_context(files)) as response:
                    return json.loads(response.read())  # type: ignore[no-any-return]
            except OSError:
                return None
        assert "queues" in wait_until(status, what=f"the node's HTTPS page (log: {node.log})")
    finally:
        assert node.terminate() == 0


def test_node_refuses_a_plaintext_page_off_loopback(tmp_path: Path) -> None:
    config = tmp_path / "octobot.yml"
    config.write_text(f"queues:\n  - {{name: q, backend: sqlite, url: 'sqlite:///{tmp_path / 'q.db'}'}}\n")
    result = subprocess.run([sys.executable, "-m", "octobot.node.main", "--config", str(config),
                             "--metrics-listen", "0.0.0.0:0", "--state-dir", str(tmp_path / "state")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--insecure" in result.stderr, result.stderr
