"""`octoctl enqueue` and `octoctl dead`: put task messages on a queue, and handle its dead letters."""

from __future__ import annotations

import json
from typing import IO, Any

import click

from octobot.ctl.cluster import Cluster, Refused, pass_cluster
from octobot.ctl.output import F, emit, output_option, to_dict, when
from octobot.envelope import BadMessage, Envelope
from octobot.v1 import admin_pb2


# Messages sent to the coordinator in one Enqueue call.
ENQUEUE_BATCH = 1000


def _json_arg(text: str, kind: type, flag: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=flag) from None
    if not isinstance(value, kind):
        raise click.BadParameter(f"must be a JSON {'list' if kind is list else 'object'}", param_hint=flag)
    return value


def _read_envelopes(lines: IO[str], max_bytes: int) -> list[bytes]:
    """Every non-blank line, checked before anything is sent, so a bad line
    enqueues nothing and is named by its line number."""
    messages = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            body = line.strip().encode()
            try:
                Envelope.parse(body, max_bytes)
            except BadMessage as exc:
                raise Refused(f"line {number}: {exc.reason}") from None
            messages.append(body)
    return messages


def endpoint_option(fn: F) -> F:
    return click.option("--endpoint", default="", metavar="SELECTOR",
                        help="on a named broker: the endpoint to act on, by its selector (default: the default URL)")(fn)


@click.command()
@click.argument("queue_name", metavar="QUEUE")
@click.argument("task", required=False)
@click.option("--args", "args_json", default="[]", help="positional arguments as a JSON list")
@click.option("--kwargs", "kwargs_json", default="{}", help="keyword arguments as a JSON object")
@click.option("--max-retries", type=int, default=None, help="override the queue's max retries for this message")
@click.option("-f", "--file", "file", type=click.File("r"), default=None,
              help="enqueue one JSON envelope per line from FILE ('-' for stdin)")
@endpoint_option
@pass_cluster
def enqueue(cluster: Cluster, queue_name: str, task: str | None, args_json: str, kwargs_json: str,
            max_retries: int | None, file: IO[str] | None, endpoint: str) -> None:
    """Put a task message (or a file of them) on a queue."""
    if (task is None) == (file is None):
        raise click.UsageError("give either TASK or -f FILE")
    if file is not None:
        spec = cluster.call(cluster.admin.GetQueue, admin_pb2.GetQueueRequest(name=queue_name)).queue
        messages = _read_envelopes(file, spec.max_message_bytes)
        for start in range(0, len(messages), ENQUEUE_BATCH):
            batch = messages[start:start + ENQUEUE_BATCH]
            cluster.call(cluster.admin.Enqueue, admin_pb2.EnqueueRequest(queue=queue_name, messages=batch,
                                                                         endpoint=endpoint))
        click.echo(f"enqueued {len(messages)} messages on {queue_name}")
        return
    envelope: dict[str, Any] = {"task": task, "args": _json_arg(args_json, list, "--args"),
                                "kwargs": _json_arg(kwargs_json, dict, "--kwargs")}
    if max_retries is not None:
        envelope["max_retries"] = max_retries
    resp = cluster.call(cluster.admin.Enqueue,
                        admin_pb2.EnqueueRequest(queue=queue_name, messages=[json.dumps(envelope).encode()],
                                                 endpoint=endpoint))
    click.echo(resp.ids[0])


# -- dead letters -------------------------------------------------------------

@click.group()
def dead() -> None:
    """Inspect, replay and purge a queue's dead letters."""


@dead.command("list")
@click.argument("queue_name", metavar="QUEUE")
@click.option("--limit", default=100, show_default=True, help="oldest letters to show")
@endpoint_option
@output_option
@pass_cluster
def dead_list(cluster: Cluster, queue_name: str, limit: int, endpoint: str, output: str) -> None:
    """List dead letters, oldest first, with why each failed (bodies over 64 KiB are cut)."""
    letters: list[admin_pb2.DeadLetter] = []
    token = ""
    while len(letters) < limit:
        page = cluster.call(cluster.admin.ListDeadLetters, admin_pb2.ListDeadLettersRequest(
            queue=queue_name, limit=limit - len(letters), page_token=token, endpoint=endpoint))
        letters += page.letters
        token = page.next_page_token
        if not token or not page.letters:
            break
    emit(output, [{**to_dict(d), "body": d.body.decode(errors="replace")} for d in letters],
         ["ID", "FAILED AT", "REASON", "BODY"],
         [[d.id, when(d.failed_at), d.reason, _shown_body(d)]
          for d in letters])


def _shown_body(letter: admin_pb2.DeadLetter) -> str:
    text = letter.body[:80].decode(errors="replace")
    return text if letter.body_size <= 80 else f"{text}... ({letter.body_size:,} bytes)"


@dead.command("retry")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="retry every dead letter of the queue")
@endpoint_option
@pass_cluster
def dead_retry(cluster: Cluster, queue_name: str, ids: tuple[str, ...], retry_all: bool, endpoint: str) -> None:
    """Put dead letters back on their queue (attempts start over)."""
    if retry_all == bool(ids):
        raise click.UsageError("give dead-letter IDs or --all")
    resp = cluster.call(cluster.admin.RetryDeadLetters,
                        admin_pb2.RetryDeadLettersRequest(queue=queue_name, ids=ids, all=retry_all, endpoint=endpoint))
    missing = len(set(ids)) - resp.retried
    if missing > 0:
        raise Refused(f"retried {resp.retried} dead letters on {queue_name}; {missing} of the ids given are not "
                      f"dead letters of it (see `octoctl dead list {queue_name}`)")
    click.echo(f"retried {resp.retried} dead letters on {queue_name}")


@dead.command("purge")
@click.argument("queue_name", metavar="QUEUE")
@endpoint_option
@pass_cluster
def dead_purge(cluster: Cluster, queue_name: str, endpoint: str) -> None:
    """Delete every dead letter of a queue."""
    resp = cluster.call(cluster.admin.PurgeDeadLetters,
                        admin_pb2.PurgeDeadLettersRequest(queue=queue_name, endpoint=endpoint))
    click.echo(f"purged {resp.purged} dead letters from {queue_name}")
