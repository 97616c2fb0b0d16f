"""Map domain errors to precise gRPC statuses, so no traceback (nor a broker
password quoted in an error) reaches a client."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from octobot import rpc
from octobot.backends import BrokerUnavailable
from octobot.coordinator.auth import Denied
from octobot.coordinator.records import AlreadyExists, FailedPrecondition, NotFound, TooMany
from octobot.coordinator.store import StoreDown, StoreFull
from octobot.secrets import redact_text

log = logging.getLogger("octobot.coordinator")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
# Characters of an error message sent back: one quoting a huge argument would
# pass gRPC's metadata limit (16 KiB, percent-encoded) and reach the client as
# RESOURCE_EXHAUSTED instead of its status.
MAX_DETAILS = 500

_STATUS: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (TooMany, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (BrokerUnavailable, grpc.StatusCode.UNAVAILABLE),
    (StoreFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StoreDown, grpc.StatusCode.UNAVAILABLE),
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
            await context.abort(exc.code, details(str(exc)))
        except Exception as exc:
            for kind, code in _STATUS:
                if isinstance(exc, kind):
                    if isinstance(exc, BrokerUnavailable):
                        # UNAVAILABLE, but from the broker: clients must not take it for the coordinator.
                        context.set_trailing_metadata((rpc.BROKER_CAUSE,))
                    elif isinstance(exc, StoreDown):
                        context.set_trailing_metadata((rpc.STORE_CAUSE,))
                    await context.abort(code, details(redact_text(str(exc))))
            log.exception("%s failed", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, details(redact_text(f"{type(exc).__name__}: {exc}")))

    return wrapper  # type: ignore[return-value]


def details(message: str) -> str:
    """An error message cut to what a status may carry."""
    return message if len(message) <= MAX_DETAILS else message[:MAX_DETAILS] + "..."


class _Malformed:
    """What a request that does not parse becomes, for the handler's wrapper to refuse."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class MalformedRequests(grpc.aio.ServerInterceptor):
    """Requests whose bytes do not parse as their message get INVALID_ARGUMENT
    (gRPC itself answers UNKNOWN with the parser's exception), on every
    method, streams included."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], call: Any) -> Any:
        handler = await continuation(call)
        if handler is None or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer
        kind = ("stream" if handler.request_streaming else "unary") + "_" + \
               ("stream" if handler.response_streaming else "unary")
        inner = getattr(handler, kind)

        def tolerant(data: bytes) -> Any:
            try:
                return parse(data)
            except Exception as exc:
                return _Malformed(details(f"the request does not parse: {type(exc).__name__}: {exc}"))

        async def checked(arg: Any, context: grpc.aio.ServicerContext) -> Any:
            """The request, or for a stream the requests, refused if they do not parse."""
            if not handler.request_streaming:
                if isinstance(arg, _Malformed):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, arg.message)
                return arg

            async def requests() -> AsyncIterator[Any]:
                async for request in arg:
                    if isinstance(request, _Malformed):
                        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                    yield request
            return requests()

        if inspect.isasyncgenfunction(inner):
            async def streaming(arg: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                async for response in inner(await checked(arg, context), context):
                    yield response
            return handler._replace(request_deserializer=tolerant, **{kind: streaming})

        async def behavior(arg: Any, context: grpc.aio.ServicerContext) -> Any:
            return await inner(await checked(arg, context), context)
        return handler._replace(request_deserializer=tolerant, **{kind: behavior})
