"""No-op tasks per second through one Octobot node, beside the broker's ceiling.

    python bench/throughput.py --backend redis
    python bench/throughput.py --backend amqp --concurrency 32

For the chosen backend it prints:
- node: N no-op tasks pre-filled, then drained by one real node process
  (coordinator and node as subprocesses, the queue resumed at t0; t1 is when
  the coordinator's stats count N successes — stats arrive every 0.2 s);
- ceiling: the same N drained by the tightest plain client loop (bench/ceiling.py);
- latency: enqueue -> finish p50/p99 at a steady 1,000 tasks/s for 5 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]
from brokers import cleanup, queue_url  # noqa: E402
from ceiling import DRAIN  # noqa: E402
from cluster import Coordinator, Node, octoctl, wait_until  # noqa: E402

from octobot import Envelope, rpc  # noqa: E402
from octobot.backends import open_backend  # noqa: E402
from octobot.v1 import stats_pb2, stats_pb2_grpc  # noqa: E402

PUBLISH_BATCH = 1000


def prefill(backend: str, url: str, queue: str, n: int) -> None:
    producer = open_backend(backend, queue, url)
    bodies = [Envelope.new("demo.noop", [i]).encode() for i in range(n)]
    for start in range(0, n, PUBLISH_BATCH):
        producer.publish(bodies[start:start + PUBLISH_BATCH])
    producer.close()


def queue_report(stub: stats_pb2_grpc.StatsServiceStub, queue: str, window: str) -> stats_pb2.QueueReport | None:
    try:
        return stub.GetQueue(stats_pb2.GetQueueStatsRequest(queue=queue, window=window), timeout=5).total
    except grpc.RpcError:
        return None


def through_node(opts: argparse.Namespace, work: Path, url: str) -> tuple[float, float, float]:
    """Drain rate through a node, and e2e latency p50/p99 at a steady 1,000/s."""
    coord = Coordinator(f"sqlite:///{work / 'octobot.db'}", work)
    node = Node(coord.target, work, "bench", [], tasks="octobot.demo",
                interval=0.2)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    stub = stats_pb2_grpc.StatsServiceStub(rpc.make_channel(coord.target))
    try:
        octoctl(coord.target, "queue", "add", queue, "--backend", opts.backend, "--url", url, "--paused",
                "--concurrency", str(opts.concurrency))
        prefill(opts.backend, url, queue, opts.n)
        t0 = time.perf_counter()
        octoctl(coord.target, "queue", "resume", queue)
        wait_until(lambda: (r := queue_report(stub, queue, "15m")) and r.succeeded >= opts.n,
                   timeout=600, interval=0.05, what="the node to drain the queue")
        rate = opts.n / (time.perf_counter() - t0)

        # Steady load: 1,000 tasks/s for 5 s, then the window's end-to-end percentiles.
        producer = open_backend(opts.backend, queue, url)
        start = time.perf_counter()
        sent = 0
        while (elapsed := time.perf_counter() - start) < 5:
            due = int(elapsed * 1000) - sent
            if due > 0:
                producer.publish([Envelope.new("demo.noop").completed().encode() for _ in range(due)])
                sent += due
            time.sleep(0.001)
        producer.close()
        time.sleep(1)
        report = queue_report(stub, queue, "5s")
        return rate, report.end_to_end.p50 if report else 0.0, report.end_to_end.p99 if report else 0.0
    finally:
        node.terminate()
        coord.terminate()
        cleanup(opts.backend, url, queue)


def ceiling(opts: argparse.Namespace, url: str) -> float:
    queue = f"ceiling-{uuid.uuid4().hex[:8]}"
    try:
        prefill(opts.backend, url, queue, opts.n)
        return opts.n / DRAIN[opts.backend](url, queue, opts.n)
    finally:
        cleanup(opts.backend, url, queue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="redis", choices=sorted(DRAIN))
    parser.add_argument("-n", type=int, default=200_000, help="tasks (large, so the 0.2 s stats granularity is noise)")
    parser.add_argument("--concurrency", type=int, default=16, help="worker threads for the queue")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = queue_url(opts.backend, work)
        rate, p50, p99 = through_node(opts, work, url)
        top = ceiling(opts, url)
    print(f"{opts.backend}: node {rate:,.0f} tasks/s | ceiling {top:,.0f} msg/s | ratio {rate / top:.2f} | "
          f"enqueue->finish at 1,000/s: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
          f"(n={opts.n}, concurrency {opts.concurrency})")


if __name__ == "__main__":
    main()
