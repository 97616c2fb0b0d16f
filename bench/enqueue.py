"""How fast a producer puts messages on each broker, beside the raw client loop.

    python bench/enqueue.py -n 50000 --backend redis amqp beanstalk

For each backend, on a fresh queue, prints messages per second of:

- raw: the broker client's own one-call-per-message loop (redis-py XADD,
  pika basic_publish with no confirms at all, greenstalk put): the baseline;
- enqueue: ``Client.enqueue`` one call per message, confirmed in the
  background, timed until ``flush()`` returned (every message confirmed);
- enqueue wait=True: one call per message, each returning after its confirm;
- enqueue_many: batches of 1,000;
- dramatiq: ``actor.send`` on Dramatiq's broker for the backend, if Dramatiq
  is installed (``pip install dramatiq``).

Messages carry one small argument, as a no-op task would. Queues are purged
and deleted afterwards.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import uuid
from collections.abc import Callable

import octobot
from octobot import backends
from octobot.envelope import Envelope

URLS = {"redis": "redis://127.0.0.1:6379/0", "amqp": "amqp://guest:guest@127.0.0.1:5672/%2F",
        "beanstalk": "beanstalk://127.0.0.1:11300"}
TASK = "bench.noop"


def raw_loop(backend: str, queue: str, n: int) -> None:
    """The broker client's plain loop, one message per call."""
    body = Envelope.new(TASK, [0]).encode()
    if backend == "redis":
        import redis
        r = redis.Redis.from_url(URLS["redis"])
        for _ in range(n):
            r.xadd(f"octobot:{queue}", {"body": body})
        r.close()
    elif backend == "amqp":
        import pika
        connection = pika.BlockingConnection(pika.URLParameters(URLS["amqp"]))
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        persistent = pika.BasicProperties(delivery_mode=2)
        for _ in range(n):
            channel.basic_publish("", queue, body, persistent)
        connection.close()
    else:
        import greenstalk
        with greenstalk.Client(("127.0.0.1", 11300), use=queue) as client:
            for _ in range(n):
                client.put(body)


def single(wait: bool) -> Callable[[str, str, int], None]:
    def run(backend: str, queue: str, n: int) -> None:
        with octobot.Client(URLS[backend]) as client:
            for i in range(n):
                client.enqueue(queue, TASK, args=[i], wait=wait)
            client.flush()
    return run


def many(backend: str, queue: str, n: int) -> None:
    with octobot.Client(URLS[backend]) as client:
        for start in range(0, n, 1000):
            client.enqueue_many(queue, [Envelope.new(TASK, [i]) for i in range(start, min(n, start + 1000))])
        client.flush()


def dramatiq_send(backend: str, queue: str, n: int) -> None:
    import dramatiq
    if backend == "redis":
        from dramatiq.brokers.redis import RedisBroker
        broker = RedisBroker(url=URLS["redis"])
    elif backend == "amqp":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker
        broker = RabbitmqBroker(url=URLS["amqp"])
    else:
        raise LookupError("no beanstalk broker")
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name=queue, broker=broker)
    def noop(i: int) -> None: ...

    for i in range(n):
        noop.send(i)
    broker.flush(queue)
    broker.close()


def cleanup(backend: str, queue: str) -> None:
    if backend == "amqp":  # deleted, with Octobot's and Dramatiq's side queues
        import pika
        connection = pika.BlockingConnection(pika.URLParameters(URLS["amqp"]))
        channel = connection.channel()
        for name in (queue, f"{queue}.dead", f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        connection.close()
    else:
        emptied = backends.open_backend(backend, queue, URLS[backend])
        emptied.purge()
        emptied.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000)
    parser.add_argument("--backend", nargs="+", default=list(URLS), choices=list(URLS))
    opts = parser.parse_args()
    has_dramatiq = importlib.util.find_spec("dramatiq") is not None
    runs: list[tuple[str, Callable[[str, str, int], None]]] = [
        ("raw loop", raw_loop), ("enqueue", single(False)), ("enqueue wait=True", single(True)),
        ("enqueue_many", many)]
    if has_dramatiq:
        runs.append(("dramatiq send", dramatiq_send))
    print(f"{'backend':10} {'producer':18} {'messages':>9} {'msg/s':>9} {'x raw':>6}")
    for backend in opts.backend:
        raw_rate = 0.0
        for name, run in runs:
            if backend == "beanstalk" and run is dramatiq_send:
                continue
            queue = f"bench-{uuid.uuid4().hex[:8]}"
            # wait=True pays a round trip per message: a tenth of n says as much in less time.
            n = opts.n // 10 if name.endswith("wait=True") else opts.n
            start = time.perf_counter()
            run(backend, queue, n)
            rate = n / (time.perf_counter() - start)
            raw_rate = raw_rate or rate
            print(f"{backend:10} {name:18} {n:9,} {rate:9,.0f} {rate / raw_rate:6.2f}", flush=True)
            cleanup(backend, queue)


if __name__ == "__main__":
    main()
