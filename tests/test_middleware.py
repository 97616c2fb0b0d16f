"""Task middleware (octobot/middleware.py): hooks around every task, their
order, a hook that refuses a task, hooks that fail, and loading by name;
then a real node loading one with --middleware, in one process and in two."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import octobot
from support.brokers import REDIS_URL
from support.cluster import octoctl, wait_until
from support.processes import Processes
from octobot import middleware
from octobot.backends.memory import MemoryBackend
from octobot.envelope import Envelope
from octobot.middleware import Middleware, TaskInfo
from octobot.node.execute import execute
from octobot.node.metrics import QueueMetrics
from octobot.node.timeouts import TaskGuard
from octobot.v1 import queue_pb2

EVENTS: list[str] = []


@octobot.task(name="mw.ok")
def ok(x: int) -> None:
    EVENTS.append(f"run {x}")


@octobot.task(name="mw.fail")
def fail() -> None:
    raise RuntimeError("task broke")


class Recorder(Middleware):
    def __init__(self, label: str = "r") -> None:
        self.label = label

    def before_task(self, task: TaskInfo) -> None:
        task.state[self.label] = task.attempt
        EVENTS.append(f"before {self.label} {task.name} {task.args}")

    def after_task(self, task: TaskInfo) -> None:
        EVENTS.append(f"after {self.label} {task.state[self.label]}")

    def on_failure(self, task: TaskInfo, exc: BaseException, retrying: bool) -> None:
        EVENTS.append(f"failure {self.label} {type(exc).__name__}: {exc} retrying={retrying}")


class Refuser(Middleware):
    def before_task(self, task: TaskInfo) -> None:
        raise PermissionError(f"not on queue {task.queue}")


class Broken(Middleware):
    def after_task(self, task: TaskInfo) -> None:
        raise ValueError("after hook broke")

    def on_failure(self, task: TaskInfo, exc: BaseException, retrying: bool) -> None:
        raise ValueError("failure hook broke")


class NotMiddleware:
    pass


@pytest.fixture
def hooks() -> Iterator[list[Middleware]]:
    """Middleware installed for the test, uninstalled after it."""
    chosen: list[Middleware] = []
    EVENTS.clear()
    yield chosen
    middleware.uninstall(*chosen)


def _use(hooks: list[Middleware], *added: Middleware) -> None:
    hooks.extend(added)
    middleware.install(*added)


def _run(body: bytes, max_retries: int = 1) -> tuple[bool, MemoryBackend]:
    backend = MemoryBackend("q", f"memory://mw-{uuid.uuid4().hex}")
    backend.publish([body])
    [delivery] = backend.fetch(1, 1.0)
    spec = queue_pb2.QueueSpec(name="q", max_retries=max_retries, retry_backoff=0.01, max_message_bytes=1 << 20)
    return execute(delivery, spec, backend, QueueMetrics("q"), TaskGuard()), backend


def test_hooks_run_in_order_around_the_task(hooks: list[Middleware]) -> None:
    _use(hooks, Recorder("a"), Recorder("b"))
    done, _ = _run(Envelope.new("mw.ok", [7]).encode())
    assert done
    assert EVENTS == ["before a mw.ok [7]", "before b mw.ok [7]", "run 7", "after b 0", "after a 0"]


def test_a_failure_reaches_on_failure_saying_whether_it_runs_again(hooks: list[Middleware]) -> None:
    _use(hooks, Recorder())
    done, _ = _run(Envelope.new("mw.fail").encode(), max_retries=1)
    assert not done
    assert EVENTS[-1] == "failure r RuntimeError: task broke retrying=True"
    EVENTS.clear()
    done, backend = _run(Envelope.new("mw.fail").encode(), max_retries=0)
    assert not done and EVENTS[-1] == "failure r RuntimeError: task broke retrying=False"
    assert len(backend.dead_list()) == 1


def test_before_task_may_refuse_a_task(hooks: list[Middleware]) -> None:
    _use(hooks, Recorder(), Refuser())
    done, backend = _run(Envelope.new("mw.ok", [1]).encode(), max_retries=0)
    assert not done and "run 1" not in EVENTS
    assert EVENTS[-1] == "failure r PermissionError: not on queue q retrying=False"
    [dead] = backend.dead_list()
    assert dead.reason == "failed after 1 attempt(s): PermissionError: not on queue q"


def test_a_failing_after_or_failure_hook_changes_nothing(hooks: list[Middleware],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    _use(hooks, Recorder(), Broken())
    done, backend = _run(Envelope.new("mw.ok", [2]).encode())
    assert done and EVENTS[-1] == "after r 0", "the other middleware's hook still ran"
    done, backend = _run(Envelope.new("mw.fail").encode(), max_retries=0)
    assert not done and len(backend.dead_list()) == 1
    assert "after hook broke" in caplog.text and "failure hook broke" in caplog.text


@pytest.mark.parametrize(("name", "message"), [
    ("nonsense", "neither module:Class nor an entry point"),
    ("no_such_module_xyz:Thing", "cannot load middleware 'no_such_module_xyz:Thing': ModuleNotFoundError"),
    ("test_middleware:Missing", "AttributeError"),
    ("test_middleware:NotMiddleware", "is not an octobot.Middleware"),
])
def test_loading_says_what_is_wrong_in_one_line(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        middleware.load(name)
    assert isinstance(middleware.load("test_middleware:Recorder"), Recorder)


def test_a_node_with_a_bad_middleware_exits_2_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "octobot.node.main", "--tasks", "e2e_tasks", "--state-dir",
                           str(tmp_path), "--middleware", "nope:Nope"], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent)
    assert done.returncode == 2 and "cannot load middleware 'nope:Nope'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("processes", [1, 2])
def test_a_node_runs_its_tasks_through_middleware(procs: Processes, tmp_path: Path, key: str, processes: int) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    procs.node(coord.target, "m", [], extra=("--middleware", "e2e_tasks:Counting", "--processes", str(processes)),
               env={"E2E_MIDDLEWARE_KEY": key})
    octoctl(coord.target, "queue", "add", key, "--backend", "redis", "--url", REDIS_URL, "--max-retries", "0")
    with octobot.Client(REDIS_URL) as client:
        client.enqueue_many(key, [Envelope.new("e2e.record", [key, i]) for i in range(20)])
        client.enqueue(key, "e2e.fail", args=[key])
    r = redis.Redis.from_url(REDIS_URL)
    wait_until(lambda: r.get(f"{key}:mw:failed") == b"1" and r.get(f"{key}:mw:after") == b"20", timeout=30,
               what="the middleware's counts")
    assert r.get(f"{key}:mw:before") == b"21"
    assert r.hlen(f"{key}:runs") == 20
