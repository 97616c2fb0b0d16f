"""`octoctl queue` and `octoctl apply`: create, change, inspect and declare queues."""

from __future__ import annotations

import sys
from typing import IO, Any

import click
from google.protobuf.field_mask_pb2 import FieldMask

from octobot.ctl.cluster import Cluster, Refused, pass_cluster
from octobot.ctl.output import QUEUE_STATES, STATES, F, emit, fields, output_option, to_dict
from octobot.selector import parse_labels
from octobot.v1 import admin_pb2, queue_pb2


@click.group()
def queue() -> None:
    """Create, change and inspect queues."""


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    try:
        return parse_labels(list(pairs))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--option") from None


# Options shared by `queue add` and `queue set`: (flag, QueueSpec field, type, help).
SPEC_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--backend", "backend", str, "broker backend: redis, amqp, beanstalk, sqlite"),
    ("--url", "url", str, "broker URL (required unless --broker; sqlite alone defaults to a local file)"),
    ("--broker", "broker", str, "a named broker (octoctl broker add): backend and URLs come from it"),
    ("--priority", "priority", int, "1 (lowest) to 10 (highest), default 5"),
    ("--concurrency", "concurrency", int, "worker threads per node, default 4"),
    ("--selector", "selector", str, "node label selector, e.g. 'dc=us-east'"),
    ("--max-retries", "max_retries", int, "retries before dead-lettering, default 3"),
    ("--retry-backoff", "retry_backoff", float, "first retry delay in seconds, default 1"),
    ("--task-timeout", "task_timeout", float, "seconds a task may run, 0 = no limit"),
    ("--max-message-bytes", "max_message_bytes", int, "larger messages are dead-lettered, default 1 MiB"),
]


def spec_options(fn: F) -> F:
    for flag, _, kind, help_text in reversed(SPEC_OPTIONS):
        fn = click.option(flag, type=kind, default=None, help=help_text)(fn)
    fn = click.option("--tasks", help="tasks the queue carries, comma-separated names or prefixes such as "
                                      "'emails.*': it runs only on nodes that have them ('' for any node)")(fn)
    return click.option("--option", "options", multiple=True, help="backend option key=value (repeatable)")(fn)


def _spec_from(name: str, values: dict[str, Any], options: tuple[str, ...]) -> tuple[queue_pb2.QueueSpec, list[str]]:
    """The QueueSpec the flags describe and the fields they set."""
    spec = queue_pb2.QueueSpec(name=name)
    paths = []
    for _, field, _, _ in SPEC_OPTIONS:
        if values.get(field) is not None:
            setattr(spec, field, values[field])
            paths.append(field)
    if options:
        spec.options.update(_options(options))
        paths.append("options")
    if values.get("tasks") is not None:
        spec.tasks.extend(t.strip() for t in values["tasks"].split(",") if t.strip())
        paths.append("tasks")
    return spec, paths


def _where(q: queue_pb2.QueueSpec) -> str:
    """Where a queue lives, as tables show it."""
    return f"broker {q.broker}" if q.broker else q.url


def _queue_row(q: queue_pb2.QueueSpec, health: admin_pb2.QueueHealth) -> list[Any]:
    return [q.name, q.backend, _where(q), q.priority, q.concurrency, q.selector or "*", health.nodes,
            QUEUE_STATES.get(health.state, "?")]


QUEUE_COLUMNS = ["NAME", "BACKEND", "URL", "PRIORITY", "CONCURRENCY", "SELECTOR", "NODES", "STATE"]


def _queue_dict(q: queue_pb2.QueueSpec, health: admin_pb2.QueueHealth) -> dict[str, Any]:
    """A queue's settings with how it is served (JSON and field listings)."""
    return {**to_dict(q), "state": QUEUE_STATES.get(health.state, "?"), "nodes": health.nodes,
            **({"broker_error": health.error} if health.error else {})}


def _warn_unserved(health: admin_pb2.QueueHealth) -> None:
    if health.state == admin_pb2.QUEUE_STATE_UNSERVED:
        click.echo(f"warning: no node that is up runs queue {health.queue} (its selector or tasks match none); "
                   "its messages wait until one does", err=True)


@queue.command("add")
@click.argument("name")
@spec_options
@click.option("--paused", is_flag=True, help="create the queue paused")
@output_option
@pass_cluster
def queue_add(cluster: Cluster, name: str, options: tuple[str, ...], paused: bool, output: str, **values: Any) -> None:
    """Create a queue; nodes matching its selector start consuming it."""
    if values.get("backend") is None and values.get("broker") is None:
        raise click.UsageError("--backend is required (redis, amqp, beanstalk, sqlite), or --broker")
    spec, _ = _spec_from(name, values, options)
    spec.paused = paused
    resp = cluster.call(cluster.admin.CreateQueue, admin_pb2.CreateQueueRequest(queue=spec))
    emit(output, _queue_dict(resp.queue, resp.health), QUEUE_COLUMNS, [_queue_row(resp.queue, resp.health)])
    _warn_unserved(resp.health)


@queue.command("set")
@click.argument("name")
@spec_options
@output_option
@pass_cluster
def queue_set(cluster: Cluster, name: str, options: tuple[str, ...], output: str, **values: Any) -> None:
    """Change a queue; running nodes apply it without restart."""
    spec, paths = _spec_from(name, values, options)
    if not paths:
        raise click.UsageError("nothing to change: give at least one option such as --concurrency")
    resp = cluster.call(cluster.admin.UpdateQueue, admin_pb2.UpdateQueueRequest(queue=spec, update_mask=FieldMask(paths=paths)))
    emit(output, _queue_dict(resp.queue, resp.health), QUEUE_COLUMNS, [_queue_row(resp.queue, resp.health)])
    _warn_unserved(resp.health)


@queue.command("list")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True,
              help="output format; yaml is the format `octoctl apply -f` reads")
@pass_cluster
def queue_list(cluster: Cluster, output: str) -> None:
    """List queues."""
    resp = cluster.call(cluster.admin.ListQueues, admin_pb2.ListQueuesRequest())
    queues = list(resp.queues)
    if output == "yaml":
        from octobot import queue_file  # see the note on imports at the top

        click.echo(queue_file.dump(queues), nl=False)
        return
    health = list(resp.health) or [admin_pb2.QueueHealth(queue=q.name) for q in queues]  # an older coordinator
    emit(output, [_queue_dict(q, h) for q, h in zip(queues, health)], QUEUE_COLUMNS,
         [_queue_row(q, h) for q, h in zip(queues, health)])


@queue.command("show")
@click.argument("name")
@output_option
@pass_cluster
def queue_show(cluster: Cluster, name: str, output: str) -> None:
    """Show a queue and the nodes running it."""
    resp = cluster.call(cluster.admin.GetQueue, admin_pb2.GetQueueRequest(name=name))
    data = _queue_dict(resp.queue, resp.health)
    data["nodes"] = [{"node": p.node_id, "state": STATES.get(p.state, "?"), "applied_generation": p.applied_generation,
                      "workers": p.status.workers, "in_flight": p.status.in_flight,
                      "connected": p.status.connected, "handed_back": p.status.handed_back,
                      "missing_tasks": list(p.status.missing_tasks)} for p in resp.placements]
    if resp.endpoint_backlogs:
        data["endpoint_backlogs"] = [to_dict(e) for e in resp.endpoint_backlogs]
    fields(output, data)


def _queue_verb(verb: str, rpc_name: str, request_type: Any, done: str, help_text: str) -> None:
    @queue.command(verb, help=help_text)
    @click.argument("name")
    @pass_cluster
    def command(cluster: Cluster, name: str) -> None:
        cluster.call(getattr(cluster.admin, rpc_name), request_type(name=name))
        click.echo(f"queue {name} {done}")


@queue.command("rm")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--purge-broker", is_flag=True,
              help="also delete the queue's waiting messages and dead letters in its broker")
@pass_cluster
def queue_rm(cluster: Cluster, name: str, yes: bool, purge_broker: bool) -> None:
    """Delete a queue; nodes stop consuming it. Its messages stay in the broker unless --purge-broker."""
    what = f"queue {name}" + (" and its messages and dead letters in the broker" if purge_broker else "")
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"deleting {what} needs confirmation: give --yes")
        click.confirm(f"Delete {what}?", abort=True, err=True)
    resp = cluster.call(cluster.admin.DeleteQueue, admin_pb2.DeleteQueueRequest(name=name, purge_broker=purge_broker))
    purged = f" ({resp.purged} messages and {resp.dead_purged} dead letters deleted)" if purge_broker else ""
    click.echo(f"queue {name} removed{purged}")
_queue_verb("pause", "PauseQueue", admin_pb2.PauseQueueRequest, "paused",
            "Stop fetching from a queue (messages stay in the broker).")
_queue_verb("resume", "ResumeQueue", admin_pb2.ResumeQueueRequest, "resumed", "Resume fetching from a paused queue.")


# -- declarative state ------------------------------------------------------

def _value(spec: queue_pb2.QueueSpec, field: str) -> str:
    """A setting as the diff shows it."""
    from octobot import queue_specs  # see the note on imports at the top

    value = queue_specs.field_value(spec, field)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value != "" else '""'


def _change_line(change: admin_pb2.QueueChange) -> str:
    """One line of the diff: + create, ~ update (each field before -> after), - delete."""
    from octobot import queue_specs  # see the note on imports at the top

    if change.kind == admin_pb2.QUEUE_CHANGE_KIND_CREATE:
        after = change.after
        defaults = queue_specs.with_defaults(queue_pb2.QueueSpec(backend=after.backend))
        settings = [f"{f} {_value(after, f)}" for f in queue_specs.UPDATABLE
                    if f not in queue_specs.WHERE and queue_specs.field_value(after, f) != queue_specs.field_value(defaults, f)]
        return f"+ create {change.name}: {after.backend} {_where(after)}" + "".join(f", {s}" for s in settings)
    if change.kind == admin_pb2.QUEUE_CHANGE_KIND_UPDATE:
        fields = ", ".join(f"{f} {_value(change.before, f)} -> {_value(change.after, f)}" for f in change.fields)
        return f"~ update {change.name}: {fields}"
    return f"- delete {change.name}"


APPLY_COUNTS = [(admin_pb2.QUEUE_CHANGE_KIND_CREATE, "created", "to create"),
                (admin_pb2.QUEUE_CHANGE_KIND_UPDATE, "updated", "to update"),
                (admin_pb2.QUEUE_CHANGE_KIND_DELETE, "deleted", "to delete")]


@click.command()
@click.option("-f", "--file", "file", type=click.File("r"), required=True,
              help="YAML file of queues, as `queue list -o yaml` writes it ('-' for stdin)")
@click.option("--prune", is_flag=True, help="delete queues the file does not declare")
@click.option("--dry-run", is_flag=True, help="print the changes without making them")
@pass_cluster
def apply(cluster: Cluster, file: IO[str], prune: bool, dry_run: bool) -> None:
    """Make the cluster's queues match a file: create, update and (--prune) delete,
    in one change. A setting the file leaves out takes its default."""
    from octobot import queue_file  # see the note on imports at the top

    try:
        queues = queue_file.load(file)
    except queue_file.FileError as exc:
        raise Refused(str(exc)) from None
    resp = cluster.call(cluster.admin.ApplyQueues,
                        admin_pb2.ApplyQueuesRequest(queues=queues, prune=prune, dry_run=dry_run))
    for change in resp.changes:
        click.echo(_change_line(change))
    for name in resp.unserved:
        _warn_unserved(admin_pb2.QueueHealth(queue=name, state=admin_pb2.QUEUE_STATE_UNSERVED))
    if not resp.changes:
        click.echo(f"no changes: the cluster already matches the {len(queues)} queues")
        return
    summary = ", ".join(f"{sum(c.kind == kind for c in resp.changes)} {verb if dry_run else done}"
                        for kind, done, verb in APPLY_COUNTS)
    click.echo(f"dry run, nothing changed: {summary}" if dry_run else
               f"applied: {summary} (generation {resp.generation})")
