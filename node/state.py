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
        # Its files hold broker passwords (the assignment): for this node's user only.
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def node_id(self) -> str:
        """Read the node id, creating it (hostname plus a random suffix) on first start."""
        file = self.path / "node-id"
        if file.exists():
            return file.read_text().strip()
        node_id = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._write(file, node_id.encode())
        return node_id

    def set_node_id(self, node_id: str) -> None:
        self._write(self.path / "node-id", node_id.encode())

    def credential(self) -> str | None:
        """The credential the coordinator gave this node when it joined, if any."""
        file = self.path / "credential"
        return file.read_text().strip() or None if file.exists() else None

    def save_credential(self, credential: str) -> None:
        self._write(self.path / "credential", credential.encode())

    def forget_credential(self) -> None:
        (self.path / "credential").unlink(missing_ok=True)

    def load_assignment(self) -> queue_pb2.Assignment | None:
        file = self.path / "assignment.pb"
        if not file.exists():
            return None
        return queue_pb2.Assignment.FromString(file.read_bytes())

    def save_assignment(self, assignment: queue_pb2.Assignment) -> None:
        self._write(self.path / "assignment.pb", assignment.SerializeToString())

    @staticmethod
    def _write(file: Path, data: bytes) -> None:
        # Write then rename: a crash never leaves a half-written file. Readable by
        # this node's user only, from the first byte: the assignment holds broker passwords.
        tmp = file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # a tmp file left by an older version may have wider modes
            out.write(data)
        os.replace(tmp, file)
