"""The real brokers the tests use, and how to leave them clean."""

from __future__ import annotations

import os

import redis

from octobot.backends import open_backend

REDIS_URL = os.environ.get("OCTOBOT_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("OCTOBOT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
BEANSTALK_URL = os.environ.get("OCTOBOT_TEST_BEANSTALK", "beanstalk://127.0.0.1:11300")
SERVER_URLS = {"redis": REDIS_URL, "amqp": AMQP_URL, "beanstalk": BEANSTALK_URL}
BACKENDS = ["redis", "sqlite", "amqp", "beanstalk"]


def queue_url(kind: str, tmp_dir: object) -> str:
    """The URL a test queue of this backend lives at (SQLite: a file in the test's dir)."""
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
