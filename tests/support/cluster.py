"""Real processes for tests: a coordinator, nodes and octoctl as subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from octobot.v1 import queue_pb2

TESTS = Path(__file__).resolve().parents[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll until predicate() is truthy; fail the test with ``what`` if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class Process:
    """A child process whose output goes to a log file shown when a test fails."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args, self.log = args, log
        self._log_file = open(log, "ab")
        self.proc = subprocess.Popen(args, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, cwd=TESTS)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout: float = 40) -> int:
        if self.alive():
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _read_port(port_file: Path, what: str) -> int:
    return wait_until(lambda: port_file.exists() and port_file.read_text() and int(port_file.read_text()),
                      timeout=30, what=what)


class Coordinator(Process):
    """A coordinator process; with ``pki`` (octobot.tools.pki) it serves TLS on
    its port and mutual TLS for nodes on ``node_target``."""

    def __init__(self, db: str, workdir: Path, port: int = 0, metrics: bool = False, pki: Any = None) -> None:
        self.db, self.workdir, self.metrics, self.pki = db, workdir, metrics, pki
        stamp = time.monotonic_ns()
        port_file, metrics_file = workdir / f"coordinator-{stamp}.port", workdir / f"coordinator-{stamp}.metrics"
        node_file = workdir / f"coordinator-{stamp}.nodeport"
        args = [sys.executable, "-m", "octobot.coordinator.main", "--listen", f"127.0.0.1:{port}",
                "--db", db, "--port-file", str(port_file), "--suspect-after", "2", "--down-after", "4",
                "--sqlite-queue-dir", str(workdir)]
        if metrics:
            args += ["--metrics-listen", "127.0.0.1:0", "--metrics-port-file", str(metrics_file)]
        if pki is not None:
            args += ["--tls-cert", str(pki.cert("coordinator")), "--tls-key", str(pki.key("coordinator")),
                     "--node-listen", "127.0.0.1:0", "--client-ca", str(pki.ca), "--node-port-file", str(node_file)]
        super().__init__(args, workdir / "coordinator.log")
        self.port = _read_port(port_file, f"coordinator to listen (log: {self.log})")
        self.target = f"127.0.0.1:{self.port}"
        self.node_target = f"127.0.0.1:{_read_port(node_file, 'node port')}" if pki is not None else ""
        scheme = "https" if pki is not None else "http"
        self.metrics_url = f"{scheme}://127.0.0.1:{_read_port(metrics_file, 'metrics port')}/metrics" if metrics else ""

    def restart(self) -> Coordinator:
        """A new coordinator process on the same port and store."""
        return Coordinator(self.db, self.workdir, self.port, self.metrics, self.pki)


class Node(Process):
    """A node process; ``coordinator=None`` with ``--config`` in ``extra`` runs it standalone."""

    def __init__(self, coordinator: str | None, workdir: Path, name: str, labels: list[str],
                 tasks: str = "e2e_tasks", env: dict[str, str] | None = None, interval: float = 0.5,
                 extra: tuple[str, ...] = ()) -> None:
        self.name = name
        self.state_dir = workdir / f"node-{name}"
        args = [sys.executable, "-m", "octobot.node.main", "--tasks", tasks,
                "--state-dir", str(self.state_dir), "--interval", str(interval), "--drain-timeout", "10"]
        if coordinator is not None:
            args += ["--coordinator", coordinator]
        for label in labels:
            args += ["--label", label]
        args += extra
        super().__init__(args, workdir / f"node-{name}.log", {"E2E_NODE": name, **(env or {})})

    @property
    def node_id(self) -> str:
        file = self.state_dir / "node-id"
        wait_until(file.exists, what=f"node {self.name} to write its id")
        return file.read_text().strip()


def octoctl(target: str, *args: str, check: bool = True, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "octobot.ctl.main", "--coordinator", target, *args],
                            capture_output=True, text=True, timeout=60, input=input, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"octoctl {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def octoctl_json(target: str, *args: str) -> Any:
    return json.loads(octoctl(target, *args, "-o", "json").stdout)


# -- what a test asks of a running cluster --------------------------------------

def node_info(target: str, node_id: str) -> dict:
    return octoctl_json(target, "node", "show", node_id)


def queue_status(target: str, node_id: str, queue: str) -> dict | None:
    return next((q for q in node_info(target, node_id).get("queues", []) if q["queue"] == queue), None)


def all_up(target: str, count: int) -> bool:
    nodes = octoctl_json(target, "node", "list")
    return len(nodes) == count and all(n["state"] == "NODE_STATE_UP" for n in nodes)


def write_envelopes(path: Path, key: str, items: range, sleep: float = 0.0) -> Path:
    with path.open("w") as f:
        for i in items:
            f.write(json.dumps({"task": "e2e.record", "args": [key, i, sleep]}) + "\n")
    return path


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single 'error: ...' line octoctl must print on failure, and nothing else."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), result.stderr
    assert result.stdout == ""
    return lines[0]


def cached(state_dir: Path) -> queue_pb2.Assignment | None:
    file = state_dir / "assignment.pb"
    return queue_pb2.Assignment.FromString(file.read_bytes()) if file.exists() else None
