"""The node's state dir: its stable id and the last assignment it applied, so
a restarted node keeps working while the coordinator is unreachable."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from octobot.v1 import queue_pb2


class StateDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def node_id(self) -> str:
        """Read the node id, creating it (hostname plus a random suffix) on first start."""
        file = self.path / "node-id"
        if file.exists():
            return file.read_text().strip()
        node_id = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._write(file, node_id.encode())
        return node_id

    def load_assignment(self) -> queue_pb2.Assignment | None:
        file = self.path / "assignment.pb"
        if not file.exists():
            return None
        return queue_pb2.Assignment.FromString(file.read_bytes())

    def save_assignment(self, assignment: queue_pb2.Assignment) -> None:
        self._write(self.path / "assignment.pb", assignment.SerializeToString())

    @staticmethod
    def _write(file: Path, data: bytes) -> None:
        # Write then rename: a crash never leaves a half-written file.
        tmp = file.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, file)
