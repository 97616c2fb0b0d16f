"""Tasks per second through one Octobot node, beside the broker's ceiling.

    python bench/throughput.py --backend redis --concurrency 32
    python bench/throughput.py --backend amqp --concurrency 64
    python bench/throughput.py --backend redis --task cpu --processes 2
    python bench/throughput.py --backend redis --concurrency 32 --tls

For the chosen backend it prints:
- node: N tasks pre-filled, then drained by one real node process (coordinator
  and node as subprocesses; t0 when the queue is resumed, t1 when the broker
  has nothing left to hand out: the last in-flight tasks, at most the
  concurrency, are noise at these N);
- stats cost: the same with the node's stats recording off (--no-stats), and
  the on/off ratio (goal >= 0.97). Single runs on a shared VM differ by more
  than what recording costs, and drift over minutes, so each of --rounds
  rounds drains once with and once without, in alternating order (on/off,
  off/on, ...), and the ratio printed is the median of the rounds' ratios;
  beside it, the node's CPU time per task (its processes' user + system
  time over the drain), on and off, and what recording costs a task
  in-process (QueueMetrics.finished plus its share of take, best of 5), as
  a share of that CPU time: the ratio it implies, free of the VM's noise;
- ceiling: the same N drained by the tightest plain client loop (bench/ceiling.py);
- latency: enqueue -> finish p50/p99 at a steady 1,000 tasks/s for 5 s (a queue of its own).
With `--tls` the rounds compare TLS with credentials against plaintext instead
(stats on in both): the coordinator serves TLS with tokens (octoctl and the
bench use an admin token) and the node connects with its certificate over
mutual TLS, against the usual loopback plaintext (goal >= 0.95).
With `--task cpu` every task burns 1 ms of CPU holding the GIL: compare
`--processes 1` with `--processes 2` for the speed-up of worker processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]
from support.brokers import cleanup, queue_url  # noqa: E402
from ceiling import DRAIN  # noqa: E402
from support.cluster import Coordinator, Node, octoctl, wait_until  # noqa: E402
from procstat import cpu_seconds  # noqa: E402
from secure import Secure, admin_token  # noqa: E402

from octobot import Envelope, rpc  # noqa: E402
from octobot.backends import open_backend  # noqa: E402
from octobot.node.metrics import QueueMetrics  # noqa: E402
from octobot.tools import pki  # noqa: E402
from octobot.v1 import stats_pb2, stats_pb2_grpc  # noqa: E402

PUBLISH_BATCH = 1000
TASKS = {"noop": ("demo.noop", []), "cpu": ("demo.burn", [1.0])}
NODE = "bench-node"  # the node's certificate's CN, so its id, with --tls


def prefill(backend: str, url: str, queue: str, n: int, task: str = "noop") -> None:
    name, args = TASKS[task]
    producer = open_backend(backend, queue, url)
    body = Envelope.new(name, args).encode()
    for start in range(0, n, PUBLISH_BATCH):
        producer.publish([body] * min(PUBLISH_BATCH, n - start))
    producer.close()


def queue_report(stub: stats_pb2_grpc.StatsServiceStub, queue: str, window: str) -> stats_pb2.QueueReport | None:
    try:
        return stub.GetQueueStats(stats_pb2.GetQueueStatsRequest(queue=queue, window=window), timeout=5).total
    except grpc.RpcError:
        return None


class Variant(NamedTuple):
    """What a drain runs: stats recording on or off; TLS and credentials from ``pki``, or plaintext."""

    name: str
    record_stats: bool = True
    pki: pki.Pki | None = None


class Drain(NamedTuple):
    rate: float  # tasks/s
    cpu: float  # node CPU seconds per task
    p50: float = 0.0  # e2e seconds at a steady 1,000/s, when asked for
    p99: float = 0.0


def drain_rate(opts: argparse.Namespace, work: Path, url: str, variant: Variant, latency: bool = False) -> Drain:
    """Draining a pre-filled queue; with ``latency`` (needs stats), also e2e p50/p99 at a
    steady 1,000/s."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    # A fresh coordinator store and node state per drain: nothing of an earlier round runs along.
    db = f"sqlite:///{work / f'{queue}.db'}"
    secure = Secure(variant.pki, admin_token(db)) if variant.pki else None
    coord = Coordinator(db, work, pki=variant.pki)
    extra = ("--processes", str(opts.processes), "--stats" if variant.record_stats else "--no-stats",
             *(secure.node_args(NODE) if secure else ()))
    node = Node(coord.node_target if secure else coord.target, work, queue, [], tasks="octobot.demo", interval=1.0,
                extra=extra)
    env = secure.ctl_env() if secure else None
    producer = open_backend(opts.backend, queue, url)
    try:
        octoctl(coord.target, "queue", "add", queue, "--backend", opts.backend, "--url", url, "--paused",
                "--concurrency", str(opts.concurrency), env=env)
        prefill(opts.backend, url, queue, opts.n, opts.task)
        cpu0, t0 = cpu_seconds(node.proc.pid, children=True), time.perf_counter()
        octoctl(coord.target, "queue", "resume", queue, env=env)
        wait_until(lambda: producer.depth() == 0, timeout=900, interval=0.02, what="the node to drain the queue")
        rate = opts.n / (time.perf_counter() - t0)
        cpu = (cpu_seconds(node.proc.pid, children=True) - cpu0) / opts.n
        if not latency:
            return Drain(rate, cpu)

        # Steady load on a queue of its own: 1,000 tasks/s for 5 s, then the
        # end-to-end percentiles of exactly those tasks, once all are reported.
        steady = f"{queue}-steady"
        octoctl(coord.target, "queue", "add", steady, "--backend", opts.backend, "--url", url,
                "--concurrency", str(opts.concurrency), env=env)
        stub = stats_pb2_grpc.StatsServiceStub(rpc.make_channel(coord.target, secure.auth() if secure
                                                                else rpc.ClientAuth()))
        steady_producer = open_backend(opts.backend, steady, url)
        start, sent = time.perf_counter(), 0
        while (elapsed := time.perf_counter() - start) < 5:
            due = int(elapsed * 1000) - sent
            if due > 0:
                steady_producer.publish([Envelope.new("demo.noop").completed().encode() for _ in range(due)])
                sent += due
            time.sleep(0.001)
        steady_producer.close()
        report = wait_until(lambda: (r := queue_report(stub, steady, "15m")) and r.succeeded >= sent and r,
                            timeout=60, what="the steady tasks to be reported")
        cleanup(opts.backend, url, steady)
        return Drain(rate, cpu, report.end_to_end.p50, report.end_to_end.p99)
    finally:
        producer.close()
        node.terminate()
        coord.terminate()
        cleanup(opts.backend, url, queue)


def recording_cost(tasks: int = 100_000) -> float:
    """Seconds per task that recording stats costs a worker and the stats thread, in-process."""
    now = time.time()

    def per_task(metrics: QueueMetrics) -> float:  # best of 5
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(tasks):
                metrics.finished(True, now - 0.01, now, now + 0.001)
            metrics.take(in_flight=0, busy_slots=0, backlog=0)
            best = min(best, (time.perf_counter() - started) / tasks)
        return best

    # Less the call and an empty take, which stats off pays too.
    return per_task(QueueMetrics("bench")) - per_task(QueueMetrics("bench", enabled=False))


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
    parser.add_argument("-n", type=int, default=200_000, help="tasks to drain")
    parser.add_argument("--concurrency", type=int, default=32, help="worker threads for the queue")
    parser.add_argument("--processes", type=int, default=1, help="node worker processes")
    parser.add_argument("--task", choices=sorted(TASKS), default="noop")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of a stats on and a stats off drain (with --tls: a TLS and a plaintext one)")
    parser.add_argument("--tls", action="store_true",
                        help="rounds of a TLS-with-credentials and a plaintext drain (stats on) instead")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = queue_url(opts.backend, work)
        if opts.tls:
            a, b = Variant("TLS", pki=pki.write_pki(work / "pki", [NODE])[0]), Variant("plaintext")
        else:
            a, b = Variant("stats on"), Variant("stats off", record_stats=False)
        first = drain_rate(opts, work, url, a, latency=True)
        what = f"{opts.backend}, {opts.task} tasks, concurrency {opts.concurrency}, {opts.processes} process(es), n={opts.n}"
        if opts.task == "cpu":
            print(f"{what}: node {first.rate:,.0f} tasks/s ({a.name})")
            return
        on, off = [first], [drain_rate(opts, work, url, b)]
        for i in range(1, opts.rounds):
            a_first = i % 2 == 0  # b first in every other round, so a drift favours neither
            for is_a in (a_first, not a_first):
                (on if is_a else off).append(drain_rate(opts, work, url, a if is_a else b))
        ratios = sorted(x.rate / y.rate for x, y in zip(on, off))
        cpu_ratios = sorted(y.cpu / x.cpu for x, y in zip(on, off))
        rate, rate_off = statistics.median(d.rate for d in on), statistics.median(d.rate for d in off)
        cpu, cpu_off = statistics.median(d.cpu for d in on), statistics.median(d.cpu for d in off)
        top = ceiling(opts, url)
    print(f"{what}:\n  node {rate:,.0f} tasks/s {a.name}, median of {opts.rounds} ({b.name} {rate_off:,.0f}/s; "
          f"{a.name}/{b.name} ratio {statistics.median(ratios):.3f}, median of the rounds' "
          f"{' '.join(f'{r:.3f}' for r in ratios)}; runs {' '.join(f'{d.rate:,.0f}' for d in on)} / "
          f"{' '.join(f'{d.rate:,.0f}' for d in off)})\n"
          f"  node CPU per task {cpu * 1e6:.2f} µs {a.name}, {cpu_off * 1e6:.2f} µs {b.name} (medians; "
          f"{b.name}/{a.name} {statistics.median(cpu_ratios):.3f}, median of the rounds' "
          f"{' '.join(f'{r:.3f}' for r in cpu_ratios)})")
    if not opts.tls:
        cost = recording_cost()
        print(f"  recording costs {cost * 1e9:.0f} ns a task in-process, {cost / cpu_off:.1%} of the node's CPU per "
              f"task (implied on/off ratio {cpu_off / (cpu_off + cost):.3f})")
    print(f"  ceiling {top:,.0f} msg/s | node/ceiling {rate / top:.2f}"
          f" | enqueue->finish at 1,000/s: p50 {first.p50 * 1000:.1f} ms, p99 {first.p99 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
