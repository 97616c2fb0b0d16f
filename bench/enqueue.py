"""How fast `octoctl enqueue -f` puts messages on a queue through the coordinator.

    python bench/enqueue.py -n 50000 --backend redis

Starts a coordinator on a temporary SQLite store, adds a queue, writes N
envelopes to a file, times `octoctl enqueue QUEUE -f FILE`, and prints the
rate. The queue is purged afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cluster import Coordinator, octoctl  # noqa: E402

from octobot import backends  # noqa: E402

URLS = {"redis": "redis://127.0.0.1:6379/0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000)
    parser.add_argument("--backend", default="redis", choices=["redis", "sqlite"])
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        coord = Coordinator(f"sqlite:///{work / 'octobot.db'}", work)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        url = URLS.get(opts.backend, f"sqlite:///{work / 'queues.db'}")
        try:
            octoctl(coord.target, "queue", "add", queue, "--backend", opts.backend, "--url", url)
            file = work / "messages.jsonl"
            with file.open("w") as f:
                for i in range(opts.n):
                    f.write(json.dumps({"task": "bench.noop", "args": [i]}) + "\n")
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "octobot.ctl.main", "--coordinator", coord.target,
                            "enqueue", queue, "-f", str(file)], check=True, capture_output=True)
            elapsed = time.perf_counter() - start
            print(f"octoctl enqueue -f: {opts.n} messages on {opts.backend} in {elapsed:.2f}s "
                  f"= {opts.n / elapsed:,.0f} msg/s (including octoctl start-up)")
        finally:
            backends.open_backend(opts.backend, queue, url).purge()
            coord.terminate()


if __name__ == "__main__":
    main()
