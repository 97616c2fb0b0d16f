"""A few read-only HTTP pages (metrics, a JSON status) served by a daemon thread.

    server, port = serve_pages("127.0.0.1:0", {"/metrics": lambda: (b"up 1\\n", "text/plain")})
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A page: its body (or the body's parts) and content type, made per request.
Page = Callable[[], tuple[bytes | list[bytes], str]]


def serve_pages(listen: str, pages: Mapping[str, Page]) -> tuple[ThreadingHTTPServer, int]:
    """Serve ``pages`` by path on ``listen`` (host:port, port 0 picks one; [::1]:port for IPv6)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
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

        def log_message(self, *args: object) -> None:
            pass  # scrapes every few seconds would flood the log

    family = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][0]
    server_class = type("PagesServer", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
    server = server_class((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, name="http-pages", daemon=True).start()
    return server, server.server_address[1]
