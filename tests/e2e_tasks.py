"""Tasks the end-to-end tests run on real nodes. Each records what it did in
Redis under a key the test chose, so the test can count runs exactly."""

import os
import time

import redis

import octobot

_redis = redis.Redis.from_url(os.environ.get("OCTOBOT_TEST_REDIS", "redis://127.0.0.1:6379/0"))
NODE = os.environ.get("E2E_NODE", "?")


@octobot.task(name="e2e.record")
def record(key: str, i: int, sleep: float = 0.0) -> None:
    """Count one run of item i, note the node that ran it, and track concurrency."""
    pipe = _redis.pipeline(transaction=False)
    pipe.incr(f"{key}:running")
    running = pipe.execute()[0]
    _redis.eval("if tonumber(redis.call('get', KEYS[1]) or 0) < tonumber(ARGV[1]) then "
                "redis.call('set', KEYS[1], ARGV[1]) end", 1, f"{key}:max_running", running)
    if sleep:
        time.sleep(sleep)
    pipe.hincrby(f"{key}:runs", str(i), 1)
    pipe.hset(f"{key}:node", str(i), NODE)
    pipe.sadd(f"{key}:pids", os.getpid())
    pipe.decr(f"{key}:running")
    pipe.execute()


@octobot.task(name="e2e.sleep")
def sleep(seconds: float, fail: bool = False) -> None:
    """Known work for the stats tests: a fixed run time, and an outcome chosen by the message."""
    time.sleep(seconds)
    if fail:
        raise RuntimeError("failing on purpose")


@octobot.task(name="e2e.fail")
def fail(key: str) -> None:
    _redis.incr(f"{key}:attempts")
    raise RuntimeError("this task always fails")


@octobot.task(name="e2e.flaky")
def flaky(key: str, fail_times: int) -> None:
    """Fail the first ``fail_times`` runs, then succeed."""
    attempt = _redis.incr(f"{key}:attempts")
    if attempt <= fail_times:
        raise RuntimeError(f"run {attempt} fails on purpose")
    _redis.incr(f"{key}:succeeded")


@octobot.task(name="e2e.tick")
def tick(counter: str, sleep: float) -> None:
    """A fixed amount of work, counted: the priority tests compare completions."""
    time.sleep(sleep)
    _redis.incr(counter)


def on_start() -> None:
    """Startup hook for the standalone tests: says it ran, and when."""
    _redis.set(f"{os.environ['E2E_HOOK_KEY']}:started", time.time())


def on_stop() -> None:
    _redis.set(f"{os.environ['E2E_HOOK_KEY']}:stopped", time.time())


@octobot.task(name="e2e.spin")
def spin(key: str, seconds: float) -> None:
    """Busy Python work for ``seconds`` (a task_timeout interrupts it), counted when it completes."""
    _redis.incr(f"{key}:spinning")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    _redis.incr(f"{key}:spun")


class Unprintable(Exception):
    """What a careless or hostile task may raise: it cannot even be shown."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


@octobot.task(name="e2e.unprintable")
def unprintable(key: str) -> None:
    _redis.incr(f"{key}:attempts")
    raise Unprintable()


class Counting(octobot.Middleware):
    """Counts the hooks it saw in Redis, under E2E_MIDDLEWARE_KEY (test_middleware)."""

    def __init__(self) -> None:
        self.key = os.environ.get("E2E_MIDDLEWARE_KEY", "mw")

    def before_task(self, task: octobot.TaskInfo) -> None:
        _redis.incr(f"{self.key}:mw:before")

    def after_task(self, task: octobot.TaskInfo) -> None:
        _redis.incr(f"{self.key}:mw:after")

    def on_failure(self, task: octobot.TaskInfo, exc: BaseException, retrying: bool) -> None:
        _redis.incr(f"{self.key}:mw:failed")
