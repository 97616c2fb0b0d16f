"""The coordinator's store goes away and comes back (a real PostgreSQL behind
a TCP relay the test cuts): clients get one line and UNAVAILABLE, the log
says it once when lost and once when back, and nothing is lost."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from support.brokers import REDIS_URL
from support.cluster import octoctl, wait_until
from support.processes import Processes


class Relay:
    """Forwards TCP connections to ``target``; ``cut()`` drops them all and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.open = False
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def relay() -> Iterator[Relay]:
    r = Relay(("127.0.0.1", 5432))
    yield r
    r.close()


def test_a_lost_store_is_said_once_and_nothing_is_lost(procs: Processes, pg_url: str, relay: Relay,
                                                       key: str) -> None:
    url = pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{relay.port}/").replace(
        "@localhost:5432/", f"@127.0.0.1:{relay.port}/")
    assert f":{relay.port}/" in url, url
    coord = procs.coordinator(url)
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL)
    relay.cut()
    for _ in range(5):
        failed = octoctl(coord.target, "queue", "add", f"{key}-x", "--backend", "redis", "--url", REDIS_URL,
                         check=False)
        assert failed.returncode == 1, failed
        line = failed.stderr.strip()
        assert "\n" not in line and line.startswith("error: the store is unavailable: "), line
        assert "sqlalchemy" not in line.lower() and "Background on this error" not in line
    relay.restore()
    wait_until(lambda: octoctl(coord.target, "queue", "add", f"{key}-y", "--backend", "redis", "--url", REDIS_URL,
                               check=False).returncode == 0, timeout=30, what="the store to come back")
    names = octoctl(coord.target, "queue", "list").stdout
    assert key in names and f"{key}-y" in names and f"{key}-x " not in names
    log = coord.output()
    assert log.count("the store is unavailable") == 1, log[-3000:]
    assert log.count("the store is back") == 1 and "Traceback" not in log
