"""Printing results as a table (rich) or JSON, the same way for every command."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import click
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from octobot.v1 import admin_pb2

if TYPE_CHECKING:
    from rich.console import Console


F = TypeVar("F", bound=Callable[..., Any])

# How states read in tables.
STATES = {admin_pb2.NODE_STATE_UP: "up", admin_pb2.NODE_STATE_SUSPECT: "suspect", admin_pb2.NODE_STATE_DOWN: "down"}
QUEUE_STATES = {admin_pb2.QUEUE_STATE_SERVING: "serving", admin_pb2.QUEUE_STATE_UNSERVED: "unserved",
                admin_pb2.QUEUE_STATE_PAUSED: "paused", admin_pb2.QUEUE_STATE_BROKER_ERROR: "broker error"}


@cache
def console() -> Console:
    """Where tables go (rich, imported on first use)."""
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        # Piped output (scripts, the demo) should not wrap at 80 columns.
        out.width = 200
    return out


def output_option(fn: F) -> F:
    return click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table",
                        show_default=True, help="output format")(fn)


def _dump(output: str, data: Any) -> bool:
    """Print ``data`` as JSON or YAML if that is the format asked for."""
    if output == "json":
        print(json.dumps(data, indent=2, sort_keys=True))
    elif output == "yaml":
        import yaml  # only for -o yaml: every command starts a process

        print(yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True), end="")
    else:
        return False
    return True


def to_dict(msg: Message) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def emit(output: str, data: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print ``data`` as JSON or YAML, or ``rows`` under ``columns`` as a table."""
    if _dump(output, data):
        return
    from rich.table import Table  # only for tables

    table = Table(box=None, pad_edge=False, show_edge=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


def fields(output: str, data: dict[str, Any]) -> None:
    """Print one object: JSON, YAML, or key/value lines."""
    if _dump(output, data):
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        console().print(f"{key + ':':<{width + 1}} {value}", markup=False)


def when(ts: Timestamp) -> str:
    """The one way a time is shown in tables: RFC 3339 in UTC, to the second (JSON adds the fraction)."""
    return ts.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")


def window_line(window: float, covered: float) -> str:
    """What a stats table covers: its window, and less when the figures began within it."""
    return f"last {window:g}s" + (f", covering {covered:g}s" if covered < window else "")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"
