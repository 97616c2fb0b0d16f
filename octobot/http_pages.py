"""A few read-only HTTP(S) pages (metrics, a JSON status) served by a daemon thread.

    server, port = serve_pages("127.0.0.1:0", {"/metrics": lambda: (b"up 1\\n", "text/plain")})

Each connection gets a thread of its own, and with TLS the handshake happens
in that thread, not in the accepting one: a client that stalls or fails its
handshake holds up nobody else, and the socket timeout ends it.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from octobot.rpc import ServerTls

# A page: its body (or the body's parts) and content type, made per request.
Page = Callable[[], tuple[bytes | list[bytes], str]]
# The Authorization header's value (None if absent) -> 200, 401 or 403.
Authorize = Callable[[str | None], int]
# A client silent this long (handshake, request or reading the reply) is dropped.
TIMEOUT = 10.0


def server_context(tls: ServerTls) -> ssl.SSLContext:
    """TLS 1.2+ with the listener's certificate; client certificates required when it names a client CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert, tls.key)
        if tls.client_ca:
            context.load_verify_locations(tls.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except OSError as exc:  # ssl.SSLError included: not PEM, or a key that is not the certificate's
        raise OSError(f"cannot load TLS certificate {tls.cert} with key {tls.key}: {exc.strerror or exc}") from None
    return context


def serve_pages(listen: str, pages: Mapping[str, Page], tls: ServerTls | None = None,
                authorize: Authorize | None = None) -> tuple[ThreadingHTTPServer, int]:
    """Serve ``pages`` by path on ``listen`` (host:port, port 0 picks one; [::1]:port for IPv6),
    over HTTPS with ``tls``, to the requests ``authorize`` lets through."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    context = server_context(tls) if tls else None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            status = authorize(self.headers.get("Authorization")) if authorize else HTTPStatus.OK
            if status != HTTPStatus.OK:
                self._refuse(HTTPStatus(status))
                return
            page = pages.get(self.path.split("?", 1)[0])
            if page is None:
                self.send_error(404, f"try {' or '.join(pages)}")
                return
            try:
                body, kind = page()
            except Exception as exc:  # e.g. a store that is down: say so instead of dropping the connection
                self.send_error(503, f"cannot make {self.path}: {' '.join(str(exc).split())}")
                return
            parts = [body] if isinstance(body, bytes) else body
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(sum(len(p) for p in parts)))
            self.end_headers()
            for part in parts:
                self.wfile.write(part)

        def _refuse(self, status: HTTPStatus) -> None:
            body = f"{status.value} {status.phrase}\n".encode()
            self.send_response(status)
            if status == HTTPStatus.UNAUTHORIZED:
                self.send_header("WWW-Authenticate", 'Bearer realm="octobot"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # scrapes every few seconds would flood the log

    class Server(ThreadingHTTPServer):
        address_family = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][0]
        daemon_threads = True

        def get_request(self) -> tuple[Any, Any]:
            # In the accepting thread: no I/O with the client here, only wrapping.
            sock, address = super().get_request()
            sock.settimeout(TIMEOUT)
            if context is not None:
                sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            return sock, address

        def finish_request(self, request: Any, client_address: Any) -> None:
            # In the connection's own thread.
            try:
                if isinstance(request, ssl.SSLSocket):
                    request.do_handshake()
                super().finish_request(request, client_address)
            except OSError:  # plaintext to TLS, a bad certificate, a timeout, a client gone: not our traceback
                pass

    server = Server((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, name="http-pages", daemon=True).start()
    return server, server.server_address[1]
