"""The node's state dir: its stable id, the last assignment it applied (so a
restarted node keeps working while the coordinator is unreachable) and the
credential it got by joining.

The directory may turn read-only or fill up under a running node. The node
then works on from memory: a write the directory refuses is said once, kept,
and tried again by retry() until it is taken, and that is said once too.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from pathlib import Path

from octobot.v1 import queue_pb2

log = logging.getLogger("octobot.node.state")


class StateDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Its files hold broker passwords (the assignment): for this node's user only.
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # What files should hold but the directory refused so far (None: the file should go).
        self._pending: dict[str, bytes | None] = {}
        self._refusing = False

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
        data = self._read("credential")
        return data.decode().strip() or None if data is not None else None

    def save_credential(self, credential: str) -> None:
        self._save("credential", credential.encode())

    def forget_credential(self) -> None:
        self._save("credential", None)

    def load_assignment(self) -> queue_pb2.Assignment | None:
        data = self._read("assignment.pb")
        return queue_pb2.Assignment.FromString(data) if data is not None else None

    def save_assignment(self, assignment: queue_pb2.Assignment) -> None:
        self._save("assignment.pb", assignment.SerializeToString())

    def retry(self) -> None:
        """Write what the directory refused so far; never raises OSError."""
        with self._lock:
            written = []
            for name, data in list(self._pending.items()):
                try:
                    if data is None:
                        (self.path / name).unlink(missing_ok=True)
                    else:
                        self._write(self.path / name, data)
                except OSError as exc:
                    if not self._refusing:
                        log.warning("state dir %s: cannot write %s (%s); working on from memory, retrying",
                                    self.path, name, exc.strerror or exc)
                        self._refusing = True
                    return
                del self._pending[name]
                written.append(name)
            if self._refusing:
                log.info("state dir %s writable again: %s written", self.path, ", ".join(written))
                self._refusing = False

    def _save(self, name: str, data: bytes | None) -> None:
        """Set a file's content: on disk now or, if the directory refuses, by a later retry()."""
        with self._lock:
            self._pending[name] = data
        self.retry()

    def _read(self, name: str) -> bytes | None:
        """A file's content as the node last set it, written yet or not."""
        with self._lock:
            if name in self._pending:
                return self._pending[name]
        file = self.path / name
        return file.read_bytes() if file.exists() else None

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
