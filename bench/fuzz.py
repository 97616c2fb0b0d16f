"""The API fuzz (tests/test_fuzz_api.py) at length, with a random seed.

    python bench/fuzz.py                    # 1,000 examples per method (about 30,000 calls)
    python bench/fuzz.py --examples 2000

The tests run it with a fixed seed and 330 examples per method; here each run
draws new requests. It fails on any UNKNOWN or INTERNAL status, a coordinator
that stops answering or aggregating, a stored queue spec that fails
validation, or a traceback in the coordinator's log. Prints the examples per
method, the methods, and how long it took.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000, help="requests per method")
    opts = parser.parse_args()
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz_api.py"],
                         cwd=ROOT, env={**os.environ, "OCTOBOT_FUZZ_EXAMPLES": str(opts.examples)},
                         capture_output=True, text=True)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr.strip()[-500:]
    print(f"fuzz: {opts.examples} examples per method (Connect: {3 * opts.examples} streams), random seed, "
          f"{time.monotonic() - started:.0f} s: {summary}")
    if run.returncode:
        print(run.stdout[-6000:])
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
