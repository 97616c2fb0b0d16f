"""Real coordinator and node processes a test starts, and tmpfs mounts it makes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.cluster import Coordinator, Node, Process, wait_until


class Processes:
    """Starts coordinator and node processes and stops them all at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Process] = []

    def coordinator(self, db: str, metrics: bool = False, pki: object = None) -> Coordinator:
        c = Coordinator(db, self.workdir, metrics=metrics, pki=pki)
        self.started.append(c)
        return c

    def restart(self, c: Coordinator) -> Coordinator:
        c2 = c.restart()
        self.started.append(c2)
        return c2

    def node(self, coordinator: str, name: str, labels: list[str], **kwargs: object) -> Node:
        n = Node(coordinator, self.workdir, name, labels, **kwargs)  # type: ignore[arg-type]
        self.started.append(n)
        return n


class Mount:
    """A small tmpfs of the test's own: remounted read-only to fail writes
    (being root, a chmod would not stop the test's processes), or filled up."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def remount(self, mode: str) -> None:
        # A file open for writing makes a read-only remount busy for a moment.
        wait_until(lambda: subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)]).returncode == 0,
                   timeout=10, what=f"{self.path} remounted {mode}")
