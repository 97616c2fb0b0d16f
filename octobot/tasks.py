"""Task registry: only registered callables run; a message never picks code to import.

    import octobot

    @octobot.task
    def send(to): ...                      # registered as "<module>.send"

    @octobot.task(name="billing.charge")
    def charge(customer_id, cents): ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

_registry: dict[str, Callable[..., Any]] = {}


@overload
def task(fn: F) -> F: ...
@overload
def task(*, name: str | None = None) -> Callable[[F], F]: ...


def task(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Register ``fn`` under ``name`` (default ``module.function``)."""

    def register(f: F) -> F:
        key = name or f"{f.__module__}.{f.__qualname__}"
        existing = _registry.get(key)
        if existing is not None and existing is not f:
            raise ValueError(f"task {key!r} is registered twice")
        _registry[key] = f
        return f

    return register(fn) if fn is not None else register


def lookup(name: str) -> Callable[..., Any] | None:
    return _registry.get(name)


def names() -> list[str]:
    return sorted(_registry)


def import_modules(modules: Iterable[str]) -> None:
    """Import the operator's task modules so their @task decorators run."""
    for module in modules:
        importlib.import_module(module)
