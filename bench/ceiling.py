"""The ceiling: how fast the tightest plain client loop drains each broker,
with batched fetch and batched ack, one connection, no task framework."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import greenstalk
import pika
import redis

BATCH = 500


def redis_drain(url: str, queue: str, n: int) -> float:
    """XREADGROUP batches, XACK+XDEL pipelined per batch."""
    r = redis.Redis.from_url(url)
    key = f"octobot:{queue}"
    r.xgroup_create(key, "ceiling", id="0", mkstream=True)
    start, done = time.perf_counter(), 0
    while done < n:
        for _, entries in r.xreadgroup("ceiling", "c", {key: ">"}, count=BATCH, block=1000) or []:
            ids = [entry_id for entry_id, _ in entries]
            pipe = r.pipeline(transaction=False)
            pipe.xack(key, "ceiling", *ids)
            pipe.xdel(key, *ids)
            pipe.execute()
            done += len(ids)
    return time.perf_counter() - start


def amqp_drain(url: str, queue: str, n: int) -> float:
    """basic_consume with a large prefetch, ack(multiple=True) every batch."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    channel.basic_qos(prefetch_count=BATCH * 2)
    done = 0
    start = time.perf_counter()
    for method, _, _ in channel.consume(queue, inactivity_timeout=5):
        if method is None:
            break
        done += 1
        if done % BATCH == 0 or done == n:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if done == n:
            break
    elapsed = time.perf_counter() - start
    channel.cancel()
    conn.close()
    return elapsed


def beanstalk_drain(url: str, queue: str, n: int) -> float:
    """reserve + delete on one connection (the protocol has no batch commands)."""
    host, port = url.split("://", 1)[1].split(":")
    client = greenstalk.Client((host, int(port)), watch=queue)
    start = time.perf_counter()
    for _ in range(n):
        client.delete(client.reserve(timeout=5))
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed


def sqlite_drain(url: str, queue: str, n: int) -> float:
    """Claim a batch and delete it, one transaction each."""
    db = sqlite3.connect(url.split("sqlite:///", 1)[1], isolation_level=None)
    start, done = time.perf_counter(), 0
    while done < n:
        db.execute("BEGIN IMMEDIATE")
        ids = [row[0] for row in db.execute(
            "SELECT id FROM messages WHERE queue = ? ORDER BY available_at, id LIMIT ?", (queue, BATCH))]
        db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
        db.execute("COMMIT")
        done += len(ids)
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


DRAIN: dict[str, Callable[[str, str, int], float]] = {
    "redis": redis_drain, "amqp": amqp_drain, "beanstalk": beanstalk_drain, "sqlite": sqlite_drain}
