"""Map domain errors to precise gRPC statuses, so no traceback (nor a broker
password quoted in an error) reaches a client."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from octobot.backends import BrokerUnavailable
from octobot.coordinator.auth import Denied
from octobot.coordinator.store import AlreadyExists, FailedPrecondition, NotFound
from octobot.secrets import redact_text

log = logging.getLogger("octobot.coordinator")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_STATUS: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (BrokerUnavailable, grpc.StatusCode.UNAVAILABLE),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
]


def rpc_errors(method: F) -> F:
    """Turn known exceptions of a unary handler into statuses; log unknown ones."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Denied as exc:
            await context.abort(exc.code, str(exc))
        except Exception as exc:
            for kind, code in _STATUS:
                if isinstance(exc, kind):
                    await context.abort(code, redact_text(str(exc)))
            log.exception("%s failed", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, redact_text(f"{type(exc).__name__}: {exc}"))

    return wrapper  # type: ignore[return-value]
