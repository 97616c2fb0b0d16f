"""Shared fixtures: real Redis and PostgreSQL, and real Octobot processes."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from octobot.tools import pki as pki_tool

from support.cluster import Coordinator
from support.processes import Mount, Processes

from support.brokers import REDIS_URL
PG_ADMIN_URL = os.environ.get("OCTOBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def key(redis_client: redis.Redis) -> Iterator[str]:
    """A unique name for queues and Redis keys; everything under it is deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    for pattern in (f"{name}*", f"octobot:{name}*"):
        for k in redis_client.scan_iter(pattern):
            redis_client.delete(k)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    name = f"octobot_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'octobot.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def procs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    yield p
    for proc in reversed(p.started):
        proc.terminate()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for proc in p.started:
            print(f"===== {proc.log.name}\n{proc.output()[-6000:]}")


@pytest.fixture
def coord(procs: Processes, tmp_path: Path) -> Coordinator:
    """A loopback coordinator on a SQLite store."""
    return procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")


@pytest.fixture
def pki(tmp_path: Path) -> "pki_tool.Pki":
    """A CA, the coordinator's certificate and nodes n1 and n2's."""
    made, _ = pki_tool.write_pki(tmp_path / "pki", nodes=["n1", "n2"])
    return made


@pytest.fixture
def secure(procs: Processes, tmp_path: Path, pki: "pki_tool.Pki") -> Coordinator:
    """A coordinator with TLS (tokens required), mutual TLS for nodes and HTTPS metrics."""
    return procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}", metrics=True, pki=pki)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Mount]]:
    """Mounts a tmpfs at tmp_path/<name> of a given size ("4m"); unmounted at the end."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Mount:
        path = tmp_path / name
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): {done.stderr.strip()}")
        mounted.append(path)
        return Mount(path)

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=True)
