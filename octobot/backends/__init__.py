"""Broker backends, found through the ``octobot.backends`` entry-point group."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points

from octobot.backends.base import Backend, BrokerUnavailable, DeadLetter, Delivery

__all__ = ["Backend", "BrokerUnavailable", "DeadLetter", "Delivery", "available", "backend_class",
           "backend_for_url", "open_backend"]


@cache
def _entry_points() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group="octobot.backends")}


def available() -> list[str]:
    return sorted(_entry_points())


def backend_class(name: str) -> type[Backend]:
    """The backend registered as ``name``; ValueError naming the known ones if there is none."""
    ep = _entry_points().get(name)
    if ep is None:
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(available())})")
    return ep.load()  # type: ignore[attr-defined, no-any-return]


def backend_for_url(url: str) -> str:
    """The backend name whose schemes include the URL's scheme."""
    scheme = url.split("://", 1)[0]
    for name in available():
        try:
            cls = backend_class(name)
        except ImportError:
            continue  # a backend whose library is missing cannot be the one meant
        if scheme in cls.schemes:
            return name
    raise ValueError(f"no backend handles URLs like {url!r}")


def open_backend(name: str, queue: str, url: str, options: Mapping[str, str] | None = None,
                 **kwargs: object) -> Backend:
    cls = backend_class(name)
    if not (url or cls.default_url):
        raise ValueError(f"the {name} backend needs a broker URL")
    return cls(queue, url or cls.default_url, options, **kwargs)  # type: ignore[arg-type]
