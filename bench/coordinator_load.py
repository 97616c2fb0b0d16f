"""One coordinator under the stats load of a large cluster.

    python bench/coordinator_load.py                       # 1,000 nodes x 20 queues, 60 s measured
    python bench/coordinator_load.py --nodes 200 --seconds 30
    python bench/coordinator_load.py --tls                 # plaintext, then TLS with credentials: side by side

Simulated nodes (several client processes, grpc.aio, one connection and one
Connect stream per node, labels dc=dc0..dc2) say Hello, then every second
send a Heartbeat and a StatsReport with one QueueSample per queue: a few
tasks each, with run, wait and end-to-end histograms of realistic spread.
After a warm-up the coordinator subprocess is measured: CPU (from
/proc/PID/stat), RSS, samples ingested per second (its Prometheus counter),
and the latency of GetCluster (window 1m) and GetCluster by dc, queried
four times a second while the load runs and Prometheus scrapes /metrics
every --scrape-every seconds (from a process of its own, as Prometheus
would).

With --tls the same load runs twice, plaintext then TLS with credentials:
each simulated node connects over mutual TLS with a certificate of its own
(CN = its node id), GetCluster and the scrapes carry an admin token over
TLS. Printed last: the coordinator's CPU and the p99s side by side (goals:
CPU at most 1.2x plaintext's, GetCluster p99 under 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]
from support.cluster import Coordinator  # noqa: E402
from procstat import cpu_seconds, rss_mib  # noqa: E402
from secure import Secure, admin_token, fetch  # noqa: E402

from octobot import rpc  # noqa: E402
from octobot.histogram import Histogram  # noqa: E402
from octobot.tools import pki  # noqa: E402
from octobot.v1 import node_pb2, node_pb2_grpc, stats_pb2, stats_pb2_grpc  # noqa: E402

VARIANTS = 8


def sample_pool(queues: int, seed: int) -> list[list[stats_pb2.QueueSample]]:
    """VARIANTS samples per queue: 1-15 tasks with log-normal latencies, now and then a failure."""
    rng = random.Random(seed)
    pool = []
    for q in range(queues):
        variants = []
        median = 0.005 * (1 + q % 7)
        for _ in range(VARIANTS):
            n = rng.randint(1, 15)
            run, wait, e2e = Histogram(), Histogram(), Histogram()
            for _ in range(n):
                r, w = rng.lognormvariate(0, 0.6) * median, rng.lognormvariate(0, 1.0) * 0.02
                run.record(r)
                wait.record(w)
                e2e.record(r + w)
            failed = 1 if rng.random() < 0.1 else 0
            variants.append(stats_pb2.QueueSample(
                queue=f"queue-{q:02d}", succeeded=n - failed, failed=failed, retried=failed,
                in_flight=rng.randint(0, 4), busy_slots=rng.randint(0, 4), backlog=rng.randint(0, 500),
                run_time=run.to_proto(), wait_time=wait.to_proto(), end_to_end=e2e.to_proto()))
        pool.append(variants)
    return pool


def node_name(index: int) -> str:
    return f"sim-{index:04d}"


async def simulated_node(target: str, index: int, pool: list[list[stats_pb2.QueueSample]],
                         stop_at: float, files: pki.Pki | None) -> None:
    channel = rpc.make_aio_channel(target, files.node_auth(node_name(index)) if files else rpc.ClientAuth())
    rng = random.Random(index)
    call = node_pb2_grpc.NodeServiceStub(channel).Connect()
    await call.write(node_pb2.ConnectRequest(hello=node_pb2.Hello(
        node_id=node_name(index), hostname=f"host-{index:04d}", labels={"dc": f"dc{index % 3}"},
        version="bench", pid=index)))

    async def read() -> None:
        async for _ in call:  # assignments: nothing to do with them
            pass

    reader = asyncio.create_task(read())
    heartbeat = node_pb2.ConnectRequest(heartbeat=node_pb2.Heartbeat())
    await asyncio.sleep(rng.random())  # spread the nodes over the second
    next_at = time.time()
    try:
        while next_at < stop_at:
            report = node_pb2.StatsReport(samples=[rng.choice(v) for v in pool])
            report.at.FromNanoseconds(int(next_at * 1e9))
            await call.write(heartbeat)
            await call.write(node_pb2.ConnectRequest(stats=report))
            next_at += 1.0
            await asyncio.sleep(max(0.0, next_at - time.time()))
    finally:
        reader.cancel()
        await call.done_writing()
        await channel.close()


def run_simulator(target: str, first: int, count: int, queues: int, stop_at: float, files: pki.Pki | None) -> None:
    # The simulators share the machine with the coordinator: let it have the CPU first.
    os.nice(19)
    pool = sample_pool(queues, first)

    async def main() -> None:
        await asyncio.gather(*(simulated_node(target, i, pool, stop_at, files) for i in range(first, first + count)),
                             return_exceptions=True)

    asyncio.run(main())


def samples_ingested(metrics_url: str, secure: Secure | None) -> float:
    """The coordinator's own count (one scrape: its per-node series are many)."""
    for line in fetch(metrics_url, secure).decode().splitlines():
        if line.startswith("octobot_stats_samples_total "):
            return float(line.split()[1])
    return 0.0


def scrape_every(metrics_url: str, secure: Secure | None, every: float, stop: Any, t0: float, took: Any) -> None:
    """Scrape like Prometheus, from a process of its own; puts (seconds it took,
    when it began since t0) in ``took``."""
    while not stop.wait(every):
        started = time.perf_counter()
        at = time.monotonic() - t0
        fetch(metrics_url, secure)
        took.put((time.perf_counter() - started, at))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Result(NamedTuple):
    cpu: float  # share of one core
    p99: float  # GetCluster 1m, seconds
    p99_by_dc: float


def measure(opts: argparse.Namespace, files: pki.Pki | None) -> Result:
    """One coordinator under the load; plaintext, or TLS with credentials from ``files``."""
    work = Path(tempfile.mkdtemp(prefix="octobot-load-"))
    db = f"sqlite:///{work / 'octobot.db'}"
    secure = Secure(files, admin_token(db)) if files else None
    coord = Coordinator(db, work, metrics=True, pki=files)
    pid = coord.proc.pid
    stop_at = time.time() + opts.warmup + opts.seconds + 5
    per_client = -(-opts.nodes // opts.clients)
    clients = [multiprocessing.Process(target=run_simulator, daemon=True,
                                       args=(coord.node_target if files else coord.target, first,
                                             min(per_client, opts.nodes - first), opts.queues, stop_at, files))
               for first in range(0, opts.nodes, per_client)]
    for c in clients:
        c.start()
    channel = rpc.make_channel(coord.target, secure.auth() if secure else rpc.ClientAuth())
    stats = stats_pb2_grpc.StatsServiceStub(channel)
    print(f"{'TLS' if files else 'plaintext'}: {opts.nodes} nodes x {opts.queues} queues, 1 report/s each, "
          f"{len(clients)} simulator processes, {os.cpu_count()} CPUs; warming up {opts.warmup:.0f} s")
    time.sleep(opts.warmup)

    cpu0, t0, ingested0 = cpu_seconds(pid), time.monotonic(), samples_ingested(coord.metrics_url, secure)
    stop_scraping, scraped = multiprocessing.Event(), multiprocessing.Queue()
    scraper = multiprocessing.Process(target=scrape_every, daemon=True, args=(
        coord.metrics_url, secure, opts.scrape_every, stop_scraping, t0, scraped))
    scraper.start()
    latencies: dict[str, list[float]] = {"": [], "dc": []}
    slowest: list[tuple[float, float, str]] = []  # (latency, when since t0, by)
    rows = 0
    while time.monotonic() - t0 < opts.seconds:
        for by, seen in latencies.items():
            started = time.perf_counter()
            resp = stats.GetCluster(stats_pb2.GetClusterRequest(window="1m", by=by), timeout=30)
            seen.append(time.perf_counter() - started)
            slowest.append((seen[-1], time.monotonic() - t0, by))
            rows = len(resp.queues)
        time.sleep(0.25)
    stop_scraping.set()
    scraper.join()
    scrapes = [scraped.get() for _ in range(scraped.qsize())]
    elapsed = time.monotonic() - t0
    cpu = (cpu_seconds(pid) - cpu0) / elapsed
    ingest = (samples_ingested(coord.metrics_url, secure) - ingested0) / elapsed
    rss = rss_mib(pid)
    print(f"coordinator CPU {cpu * 100:.0f} % of one core (average over {elapsed:.0f} s), RSS {rss:.0f} MiB, "
          f"ingest {ingest:,.0f} samples/s ({ingest / opts.queues:,.0f} reports/s)")
    if scrapes:
        print(f"/metrics scrape every {opts.scrape_every:.0f} s: {len(scrapes)} taking "
              f"{', '.join(f'{took * 1000:.0f} ms at +{at:.1f} s' for took, at in scrapes)}")
    for by, seen in latencies.items():
        name = f"GetCluster window 1m{' by ' + by if by else ''} ({rows} queues)"
        print(f"{name}: p50 {quantile(seen, 0.5) * 1000:.1f} ms, "
              f"p99 {quantile(seen, 0.99) * 1000:.1f} ms, max {max(seen) * 1000:.1f} ms over {len(seen)} calls")
    print("slowest calls: " + ", ".join(f"{took * 1000:.0f} ms at +{at:.1f} s{' by ' + by if by else ''}"
                                        for took, at, by in sorted(slowest, reverse=True)[:5]))
    channel.close()
    for c in clients:
        c.join(timeout=30)
    coord.terminate()
    return Result(cpu, quantile(latencies[""], 0.99), quantile(latencies["dc"], 0.99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4, help="simulator processes")
    parser.add_argument("--warmup", type=float, default=70.0, help="seconds before measuring (1m windows in memory)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time")
    parser.add_argument("--scrape-every", type=float, default=15.0, help="seconds between /metrics scrapes")
    parser.add_argument("--tls", action="store_true", help="plaintext, then TLS with credentials, side by side")
    opts = parser.parse_args()
    plain = measure(opts, None)
    if not opts.tls:
        return
    files = pki.write_pki(tempfile.mkdtemp(prefix="octobot-pki-"), [node_name(i) for i in range(opts.nodes)])[0]
    tls = measure(opts, files)
    print(f"side by side, plaintext / TLS: coordinator CPU {plain.cpu * 100:.0f} % / {tls.cpu * 100:.0f} % "
          f"({tls.cpu / plain.cpu:.2f}x), GetCluster 1m p99 {plain.p99 * 1000:.1f} / {tls.p99 * 1000:.1f} ms, "
          f"by dc p99 {plain.p99_by_dc * 1000:.1f} / {tls.p99_by_dc * 1000:.1f} ms")


if __name__ == "__main__":
    main()
