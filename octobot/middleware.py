"""Task middleware: code of your own around every task a node runs.

    class Timing(octobot.Middleware):
        def before_task(self, task):
            task.state["started"] = time.perf_counter()

        def after_task(self, task):
            log.info("%s took %.3fs", task.name, time.perf_counter() - task.state["started"])

        def on_failure(self, task, exc, retrying):
            sentry_sdk.capture_exception(exc)

    octobot-node --tasks myapp.tasks --middleware myapp.middleware:Timing

A node loads each ``--middleware`` (``module:Class``, or the name of an entry
point in the ``octobot.middleware`` group) once, makes one instance, and
calls its hooks on the worker thread that runs the task, in the order given
(after hooks in reverse order). ``before_task`` may refuse a task by raising:
the task then fails with that error and is retried or dead-lettered as any
failure is. An error in ``after_task`` or ``on_failure`` is logged and
changes nothing: the task's outcome is already decided.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("octobot.middleware")


@dataclass(slots=True)
class TaskInfo:
    """The task being run, as middleware sees it."""

    queue: str
    name: str
    id: str
    attempt: int
    args: list[Any]
    kwargs: dict[str, Any]
    #: Shared by the hooks of one run (each middleware's own keys).
    state: dict[str, Any] = field(default_factory=dict)


class Middleware:
    """Override the hooks you need; each runs on the task's worker thread."""

    def before_task(self, task: TaskInfo) -> None:
        """Before the task runs. Raising fails the task with that error."""

    def after_task(self, task: TaskInfo) -> None:
        """The task returned; its message is acked next."""

    def on_failure(self, task: TaskInfo, exc: BaseException, retrying: bool) -> None:
        """The task (or a before_task hook) raised; ``retrying`` says whether it runs again."""


_installed: tuple[Middleware, ...] = ()


def installed() -> tuple[Middleware, ...]:
    """The middleware every task of this process runs through, in order."""
    return _installed


def install(*middleware: Middleware) -> None:
    """Add middleware for every task this process runs from now on."""
    global _installed
    _installed = (*_installed, *middleware)


def uninstall(*middleware: Middleware) -> None:
    global _installed
    _installed = tuple(m for m in _installed if m not in middleware)


def load(name: str) -> Middleware:
    """``module:Class`` or an ``octobot.middleware`` entry point's name, as one instance;
    ValueError saying why it cannot be."""
    from importlib.metadata import entry_points  # only when asked: it costs every process that imports this

    found = {ep.name: ep for ep in entry_points(group="octobot.middleware")}
    try:
        if name in found:
            cls = found[name].load()
        else:
            module, sep, attr = name.partition(":")
            if not sep or not module or not attr:
                known = ", ".join(sorted(found)) or "none installed"
                raise ValueError(f"middleware {name!r} is neither module:Class nor an entry point ({known})")
            cls = getattr(importlib.import_module(module), attr)
        instance = cls()
    except Exception as exc:  # an import, a name or a constructor that fails: one line, not a traceback
        raise ValueError(f"cannot load middleware {name!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(instance, Middleware):
        raise ValueError(f"middleware {name!r} is not an octobot.Middleware")
    return instance


def after(middleware: tuple[Middleware, ...], task: TaskInfo) -> None:
    for m in reversed(middleware):
        try:
            m.after_task(task)
        except Exception:
            log.exception("middleware %s failed after task %s (%s)", type(m).__name__, task.name, task.id)


def failed(middleware: tuple[Middleware, ...], task: TaskInfo, exc: BaseException, retrying: bool) -> None:
    for m in reversed(middleware):
        try:
            m.on_failure(task, exc, retrying)
        except Exception:
            log.exception("middleware %s failed on the failure of task %s (%s)", type(m).__name__, task.name, task.id)
