"""How long one `octoctl queue list` takes, wall clock, against a local
coordinator, beside what any Python gRPC client pays before its first call.

    python bench/ctl_start.py             # 15 runs of each, medians printed
    python bench/ctl_start.py --runs 30

Baselines, each a fresh process like octoctl: `python -c pass` (the
interpreter and site), and `python -c "import grpc"` (the gRPC library
alone). Goal: octoctl queue list <= 150 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall_ms(args: list[str], runs: int) -> float:
    """The median wall time of ``args`` over ``runs`` runs, in ms."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        port_file = Path(work) / "port"
        coordinator = subprocess.Popen([sys.executable, "-m", "octobot.coordinator.main", "--listen", "127.0.0.1:0",
                                        "--db", f"sqlite:///{work}/octobot.db", "--port-file", str(port_file),
                                        "--log-level", "warning"])
        try:
            while not (port_file.exists() and port_file.read_text()):
                time.sleep(0.05)
            target = f"127.0.0.1:{port_file.read_text()}"
            ctl = [sys.executable, "-m", "octobot.ctl.main", "--coordinator", target]
            subprocess.run([*ctl, "queue", "add", "bench", "--backend", "redis", "--url", "redis://127.0.0.1:6379/0"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            figures = {
                "python -c pass": wall_ms([sys.executable, "-c", "pass"], opts.runs),
                "python -c 'import grpc'": wall_ms([sys.executable, "-c", "import grpc"], opts.runs),
                "octoctl --version": wall_ms([*ctl, "--version"], opts.runs),
                "octoctl queue list": wall_ms([*ctl, "queue", "list"], opts.runs),
                "octoctl queue list -o json": wall_ms([*ctl, "queue", "list", "-o", "json"], opts.runs),
            }
        finally:
            coordinator.terminate()
            coordinator.wait()
    print(f"median wall time of {opts.runs} runs each, {os.cpu_count()} CPUs:")
    for name, ms in figures.items():
        print(f"  {name:<28} {ms:6.0f} ms")


if __name__ == "__main__":
    main()
