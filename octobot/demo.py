"""Sample tasks, and `python -m octobot.demo`: the whole system on one laptop
with no server installed — a coordinator on SQLite, one node, a queue on the
`sqlite` backend, a producer, and live stats from the coordinator.

    python -m octobot.demo --seconds 20
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

import octobot


@octobot.task(name="demo.noop")
def noop(*args: object, **kwargs: object) -> None:
    """Does nothing: benchmarks measure Octobot itself with it."""


@octobot.task(name="demo.burn")
def burn(ms: float = 1.0) -> int:
    """CPU-bound work holding the GIL for ``ms`` milliseconds: what --processes is for."""
    end, spins = time.perf_counter() + ms / 1000, 0
    while time.perf_counter() < end:
        spins += 1
    return spins


@octobot.task(name="demo.resize_image")
def resize_image(width: int, height: int) -> int:
    """Pretend work: 5-30 ms."""
    time.sleep(random.uniform(0.005, 0.03))
    return width * height


@octobot.task(name="demo.send_email")
def send_email(to: str) -> None:
    """Fails now and then, to show retries and dead letters."""
    time.sleep(0.002)
    if random.random() < 0.05:
        raise ConnectionError(f"SMTP server refused {to}")


def _octoctl(target: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "octobot.ctl.main", "--coordinator", target, *args],
                          check=True, capture_output=True, text=True).stdout


def _wait_for_port(file: Path, proc: subprocess.Popen[bytes]) -> int:
    for _ in range(300):
        if file.exists() and file.read_text():
            return int(file.read_text())
        if proc.poll() is not None:
            raise SystemExit("the coordinator exited during start-up; see its log above")
        time.sleep(0.05)
    raise SystemExit("the coordinator did not start within 15 s")


@click.command()
@click.option("--seconds", default=20.0, show_default=True, help="how long to run")
@click.option("--rate", default=200, show_default=True, help="tasks enqueued per second")
@click.option("--keep", is_flag=True, help="keep the demo's files (printed at the end)")
def main(seconds: float, rate: int, keep: bool) -> None:
    """Run a coordinator, a node and a producer, printing live stats."""
    work = Path(tempfile.mkdtemp(prefix="octobot-demo-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        port_file = work / "port"
        coordinator = subprocess.Popen([sys.executable, "-m", "octobot.coordinator.main", "--listen", "127.0.0.1:0",
                                        "--db", f"sqlite:///{work / 'octobot.db'}", "--port-file", str(port_file),
                                        "--sqlite-queue-dir", str(work), "--log-level", "warning"])
        procs.append(coordinator)
        target = f"127.0.0.1:{_wait_for_port(port_file, coordinator)}"
        print(f"coordinator on {target} (for {seconds:g} s); watch it from another shell with:\n"
              f"  octoctl --coordinator {target} top", flush=True)
        procs.append(subprocess.Popen([sys.executable, "-m", "octobot.node.main", "--coordinator", target,
                                       "--tasks", "octobot.demo", "--label", "dc=laptop",
                                       "--state-dir", str(work / "node"), "--log-level", "warning"]))
        for _ in range(300):  # the node up first, so the queue is served from its start
            if '"NODE_STATE_UP"' in _octoctl(target, "node", "list", "-o", "json"):
                break
            time.sleep(0.1)
        queue_url = f"sqlite:///{work / 'queues.db'}"
        print(_octoctl(target, "queue", "add", "demo", "--backend", "sqlite", "--url", queue_url,
                       "--concurrency", "8", "--max-retries", "2", "--retry-backoff", "0.2"))
        client = octobot.Client(queue_url)
        start = last_print = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < seconds:
            due = int((now - start) * rate) - sent
            batch = [octobot.Envelope.new("demo.resize_image", [640, 480]) if i % 4 else
                     octobot.Envelope.new("demo.send_email", [f"user{sent + i}@example.com"]) for i in range(due)]
            client.enqueue_many("demo", batch)
            sent += due
            if now - last_print >= 2:
                last_print = now
                print(f"--- {now - start:4.0f}s, {sent} enqueued")
                print(_octoctl(target, "stats", "--window", "10s"))
            time.sleep(0.05)
        client.close()
        print(_octoctl(target, "node", "list"))
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=40)
        if keep:
            print(f"demo files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
