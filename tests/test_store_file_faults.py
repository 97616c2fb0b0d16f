"""The coordinator's SQLite store file is deleted or replaced under it, and
the coordinator is started again over the path: calls are refused with one
line, the log says it once, and no start puts an empty store where one was
unless told to with --new-store."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support.brokers import REDIS_URL
from support.cluster import Coordinator, Process, octoctl, wait_until
from support.processes import Mount, Processes
from octobot.coordinator.auth import RELOAD_EVERY
from octobot.coordinator.store import Store


def refused(target: str) -> str:
    """The one line `octoctl queue add` fails with."""
    failed = octoctl(target, "queue", "add", "lost", "--backend", "redis", "--url", REDIS_URL, check=False)
    assert failed.returncode == 1, failed
    line = failed.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    return line


def warnings(log: str) -> list[str]:
    return [line for line in log.splitlines() if " WARNING " in line]


def coordinator_args(db: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "octobot.coordinator.main", "--listen", "127.0.0.1:0", "--db", db, *extra]


def assert_refused_and_said_once(coord: Coordinator, db: Path, how: str) -> None:
    said = f"the store file {db} was {how} while the coordinator ran"
    for _ in range(3):
        assert refused(coord.target).startswith(f"error: {said}")
    # Past a token reload, which reads the store too.
    time.sleep(RELOAD_EVERY + 1)
    assert refused(coord.target).startswith(f"error: {said}")
    log = coord.output()
    assert len(warnings(log)) == 1 and said in warnings(log)[0], log[-3000:]
    assert "Traceback" not in log and "the store is back" not in log


def test_a_deleted_store_file_is_refused_and_said_once(procs: Processes, tmp_path: Path) -> None:
    """Before: SQLite went on writing the deleted file, so `queue add` succeeded,
    nothing was logged, and the change was gone at the next start."""
    db = tmp_path / "octobot.db"
    coord = procs.coordinator(f"sqlite:///{db}")
    octoctl(coord.target, "queue", "add", "kept", "--backend", "redis", "--url", REDIS_URL)
    db.unlink()
    assert_refused_and_said_once(coord, db, "deleted")
    assert not db.exists(), "nothing made a new file in its place"


def test_a_replaced_store_file_is_refused_and_said_once(procs: Processes, tmp_path: Path) -> None:
    """Before: SQLite went on with the file it had open, so `queue add`
    succeeded and nothing was logged, and the next start served the other file."""
    db = tmp_path / "octobot.db"
    coord = procs.coordinator(f"sqlite:///{db}")
    octoctl(coord.target, "queue", "add", "kept", "--backend", "redis", "--url", REDIS_URL)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    os.replace(other, db)
    assert_refused_and_said_once(coord, db, "replaced")


def test_no_empty_store_over_a_deleted_one_without_new_store(procs: Processes, tmp_path: Path) -> None:
    """Before: the restarted coordinator made an empty store at the path and
    served it without a word, and every node, told its desired state had no
    queues, stopped consuming them."""
    db = tmp_path / "octobot.db"
    url = f"sqlite:///{db}"
    coord = procs.coordinator(url)
    octoctl(coord.target, "queue", "add", "kept", "--backend", "redis", "--url", REDIS_URL)
    coord.terminate()
    db.unlink()

    start = subprocess.run(coordinator_args(url), capture_output=True, text=True, timeout=60)
    assert start.returncode == 1, start
    line = start.stderr.strip()
    assert "\n" not in line and f"the store file {db} is missing" in line and "--new-store" in line, line
    assert not db.exists(), "the refused start made no file"

    port_file = tmp_path / "new-store.port"
    procs.started.append(started := Process(coordinator_args(url, "--new-store", "--port-file", str(port_file)),
                                            tmp_path / "new-store.log"))
    port = wait_until(lambda: port_file.exists() and port_file.read_text(), timeout=30, what="the new store")
    assert octoctl(f"127.0.0.1:{port}", "queue", "list", "-o", "json").stdout.strip() in ("[]", "")
    assert "--new-store" in "".join(warnings(started.output())), started.output()


def test_no_start_over_another_store_file_without_new_store(tmp_path: Path) -> None:
    """Before: a coordinator started over whatever SQLite file was at the path,
    migrating it into an empty store."""
    db = tmp_path / "octobot.db"
    Store.open(f"sqlite:///{db}").close()
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    os.replace(tmp_path / "other.db", db)
    start = subprocess.run(coordinator_args(f"sqlite:///{db}"), capture_output=True, text=True, timeout=60)
    assert start.returncode == 1, start
    line = start.stderr.strip()
    assert "\n" not in line and "--new-store" in line, line
    assert f"the store file {db} holds a file without a store id, not store" in line, line
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert tables == ["t"], "the refused file was left as it was"


def test_restart_and_a_restored_copy_keep_the_store(procs: Processes, tmp_path: Path) -> None:
    """A normal restart, and a start over a copy put back after the file was
    deleted, serve the store they find (its id is in the file, not its inode)."""
    db = tmp_path / "octobot.db"
    coord = procs.coordinator(f"sqlite:///{db}")
    octoctl(coord.target, "queue", "add", "kept", "--backend", "redis", "--url", REDIS_URL)
    coord.terminate()
    coord = procs.restart(coord)
    assert "kept" in octoctl(coord.target, "queue", "list").stdout
    assert stat.S_IMODE(os.stat(f"{db}.id").st_mode) == 0o600
    coord.terminate()
    shutil.copy(db, tmp_path / "backup.db")
    db.unlink()
    shutil.copy(tmp_path / "backup.db", db)
    coord = procs.restart(coord)
    assert "kept" in octoctl(coord.target, "queue", "list").stdout
    assert "WARNING" not in coord.output()


def test_a_full_disk_is_said_in_one_line_and_writes_work_once_there_is_room(
        procs: Processes, tmpfs: Callable[[str, str], Mount]) -> None:
    """Before: octoctl printed SQLAlchemy's raw text."""
    disk = tmpfs("store", "2m")
    db = disk.path / "octobot.db"
    coord = procs.coordinator(f"sqlite:///{db}")
    octoctl(coord.target, "queue", "add", "kept", "--backend", "redis", "--url", REDIS_URL)
    filler = disk.path / "filler"
    with open(filler, "wb", buffering=0) as f:  # every free block taken
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    lines = {refused(coord.target) for _ in range(3)}
    assert len(lines) == 1 and lines.pop().startswith("error: the store is full: "), lines
    assert "kept" in octoctl(coord.target, "queue", "list").stdout, "reads still work"

    filler.unlink()
    wait_until(lambda: octoctl(coord.target, "queue", "add", "later", "--backend", "redis", "--url", REDIS_URL,
                               check=False).returncode == 0, timeout=10, what="a write after room was made")
    log = coord.output()
    assert "Traceback" not in log and len([w for w in warnings(log) if "store is full" in w]) == 1, log[-3000:]
    assert "the store is back" in log
