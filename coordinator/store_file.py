"""A SQLite store's file, and the faults of a store that callers see as
StoreDown: the database gone or full, or its file gone from under a running
coordinator."""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, make_url

log = logging.getLogger("octobot.coordinator")


class StoreDown(Exception):
    """The store cannot be reached: a fault of the environment, said in one
    line, not a bug with a traceback."""


class StoreFull(StoreDown):
    """The store's disk is full."""


class WrongStore(Exception):
    """The store file is missing, or is not the store made at its path."""


class StoreFile:
    """A SQLite store's file, which, unlike a PostgreSQL database, can vanish
    under a running coordinator: SQLite goes on with the deleted (or replaced)
    file, so changes would be accepted and then lost, and the next start would
    make an empty store there, whose desired state stops every node's queues.
    So a store file has an id, kept in its header's user_version (which copies
    and backups keep) and in ``<file>.id`` beside it: a start refuses a missing
    or other file where that id was, and the running coordinator checks that
    the path still holds the file it opened.

    PostgreSQL needs neither: a dropped or unreachable database fails to
    connect (an outage), and nothing makes an empty one in its place."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sidecar = path + ".id"
        # (st_dev, st_ino) of the file opened; set by mark().
        self._identity = (0, 0)

    @classmethod
    def of(cls, url: str) -> StoreFile | None:
        """The file of a SQLite URL; None for PostgreSQL, in-memory and URI-named databases."""
        parsed = make_url(url)
        name = parsed.database or ""
        if parsed.get_backend_name() != "sqlite" or name in ("", ":memory:") or name.startswith("file:"):
            return None
        return cls(os.path.abspath(name))

    def _claimed(self) -> int | None:
        """The id of the store made at the path, if one was."""
        try:
            return int(Path(self.sidecar).read_text())
        except FileNotFoundError:
            return None

    def _found(self) -> int | None:
        """The id in the file at the path (0: none yet), read without changing
        the file; None when there is no file."""
        if not os.path.exists(self.path):
            return None
        with closing(sqlite3.connect(Path(self.path).as_uri() + "?mode=ro", uri=True)) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def admit(self, new_store: bool) -> None:
        """Refuse, before anything touches it, a missing or other file where a
        store was made; with ``new_store``, take it (said in the log)."""
        claimed = self._claimed()
        if claimed is None:
            return
        found = self._found()
        if found == claimed:
            return
        what = "no file" if found is None else f"store {found}" if found else "a file without a store id"
        if new_store:
            log.warning("--new-store: %s at %s replaces store %d", what, self.path, claimed)
        elif found is None:
            raise WrongStore(f"the store file {self.path} is missing, but {self.sidecar} says store {claimed} "
                             "was made there: restore it, or start the coordinator with --new-store to make an "
                             "empty one")
        else:
            raise WrongStore(f"the store file {self.path} holds {what}, not store {claimed} that {self.sidecar} "
                             "names: restore it, or start the coordinator with --new-store to use this one")

    def mark(self, engine: Engine) -> None:
        """Give the file an id if it has none, name it beside the file, and
        remember which file this is."""
        with engine.begin() as conn:
            store_id = conn.exec_driver_sql("PRAGMA user_version").scalar()
            if not store_id:
                store_id = secrets.randbelow(2**31 - 1) + 1
                conn.exec_driver_sql(f"PRAGMA user_version = {store_id}")
        if self._claimed() != store_id:
            temp = self.sidecar + ".tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"{store_id}\n")
            os.replace(temp, self.sidecar)  # never half written
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino)

    def check(self) -> None:
        """StoreDown unless the path still holds the file opened (one stat)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise StoreDown(self._gone("deleted")) from None
        except OSError as exc:
            raise StoreDown(f"the store file {self.path} cannot be checked: {exc.strerror}") from None
        if (st.st_dev, st.st_ino) != self._identity:
            raise StoreDown(self._gone("replaced"))

    def _gone(self, how: str) -> str:
        return (f"the store file {self.path} was {how} while the coordinator ran: refusing reads and changes, "
                "which would be lost; restore it and restart the coordinator")
