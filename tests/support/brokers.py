"""The real brokers the tests use, and how to leave them clean."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import redis

from octobot.backends import open_backend

REDIS_URL = os.environ.get("OCTOBOT_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("OCTOBOT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
BEANSTALK_URL = os.environ.get("OCTOBOT_TEST_BEANSTALK", "beanstalk://127.0.0.1:11300")
SERVER_URLS = {"redis": REDIS_URL, "amqp": AMQP_URL, "beanstalk": BEANSTALK_URL}
BACKENDS = ["redis", "sqlite", "amqp", "beanstalk"]


def queue_url(kind: str, tmp_dir: object) -> str:
    """The URL a test queue of this backend lives at (SQLite: a file in the test's dir; memory: this process)."""
    if kind == "memory":
        return f"memory://{tmp_dir}"
    return SERVER_URLS.get(kind) or f"sqlite:///{tmp_dir}/queues.db"


def cleanup(kind: str, url: str, queue: str) -> None:
    """Drop a test queue's messages, dead letters and broker objects."""
    backend = open_backend(kind, queue, url)
    try:
        backend.purge()
        backend.dead_purge()
    finally:
        backend.close()
    if kind == "redis":
        key = f"octobot:{queue}"
        redis.Redis.from_url(url).delete(key, f"{key}:delayed", f"{key}:dead")
    elif kind == "amqp":
        import pika

        with pika.BlockingConnection(pika.URLParameters(url)) as conn:
            channel = conn.channel()
            for name in (queue, f"{queue}.dead"):
                channel.queue_delete(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateBroker:
    """A broker process of the test's own, on a free port, with durable storage
    in ``workdir``, so it can be stopped and started again without touching
    the shared servers. RabbitMQ is too heavy to run twice: its shared server
    is restarted with stop_app/start_app instead (see restart_rabbitmq)."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind, self.workdir, self.port = kind, workdir, free_port()
        self.url = {"redis": f"redis://127.0.0.1:{self.port}/0", "beanstalk": f"beanstalk://127.0.0.1:{self.port}"}[kind]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def _args(self) -> list[str]:
        if self.kind == "redis":
            # Every write is in the append-only file before the reply: a restart loses nothing.
            return ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                    "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.workdir)]
        return ["beanstalkd", "-l", "127.0.0.1", "-p", str(self.port), "-b", str(self.workdir)]

    def start(self) -> None:
        self.proc = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


def restart_rabbitmq(down_for: float) -> None:
    """Stop the shared RabbitMQ's application (every connection drops, durable
    queues and persistent messages stay), wait, and start it again."""
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    time.sleep(down_for)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
    wait_for_port(5672)
