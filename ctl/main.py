"""octoctl: drive an Octobot cluster through the coordinator.

    octoctl queue add emails --backend redis --url redis://127.0.0.1:6379/0 --priority 8
    octoctl apply -f queues.yaml --dry-run
    octoctl enqueue emails emails.send --args '["a@example.com"]'
    octoctl stats
    octoctl top
    octoctl config set-context prod --coordinator coord.example:7400 --ca ca.pem --token-file prod.token
    octoctl --context prod token create ci --role operator --expires 30d

Exit codes: 0 success, 1 the coordinator refused the request (invalid,
not found, already exists, no valid token, role not allowed), 2 bad usage
(a bad config file or unknown context too), 3 coordinator unreachable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO, Any

import click
from google.protobuf.field_mask_pb2 import FieldMask

import octobot
# Every command starts a Python process: what only some commands need (queue
# specs and files, which load every broker's library) is imported where used.
from octobot.ctl import brokers, config, tokens
from octobot.ctl.cluster import Cluster, Refused, pass_cluster
from octobot.ctl.output import F, emit, fields, ms, output_option, to_dict, when, window_line
from octobot.ctl.top import every_queue, run_top
from octobot.envelope import BadMessage, Envelope
from octobot.selector import parse_labels
from octobot.v1 import admin_pb2, queue_pb2, stats_pb2

ENQUEUE_BATCH = 1000
STATES = {admin_pb2.NODE_STATE_UP: "up", admin_pb2.NODE_STATE_SUSPECT: "suspect", admin_pb2.NODE_STATE_DOWN: "down"}
QUEUE_STATES = {admin_pb2.QUEUE_STATE_SERVING: "serving", admin_pb2.QUEUE_STATE_UNSERVED: "unserved",
                admin_pb2.QUEUE_STATE_PAUSED: "paused", admin_pb2.QUEUE_STATE_BROKER_ERROR: "broker error"}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(octobot.__version__, "--version", prog_name="octoctl", message="%(prog)s %(version)s")
@click.option("--context", "context_name", default=None,
              help="context of the config file to use (default: its current-context)")
@click.option("--coordinator", default=None,
              help="coordinator host:port, several comma-separated: the first that answers is used "
              f"(env OCTOBOT_COORDINATOR; default {config.DEFAULT_COORDINATOR})")
@click.option("--ca", default=None, help="CA certificate (PEM) of the coordinator's TLS (env OCTOBOT_CA; "
              "default: the system's roots)")
@click.option("--token", default=None, help="bearer token (env OCTOBOT_TOKEN)")
@click.option("--token-file", default=None, help="file holding the bearer token")
@click.option("--insecure", is_flag=True, help="plaintext to a coordinator off this machine")
@click.pass_context
def cli(ctx: click.Context, context_name: str | None, coordinator: str | None, ca: str | None, token: str | None,
        token_file: str | None, insecure: bool) -> None:
    """Operate an Octobot cluster."""
    if token is not None and token_file is not None:
        raise click.UsageError("give --token or --token-file, not both")
    flags = config.Settings(config.split_addresses([coordinator or ""]), ca, token, token_file, insecure or None)
    ctx.obj = Cluster(flags, context_name)


cli.add_command(config.group)
cli.add_command(tokens.group)
cli.add_command(brokers.group)


# -- queues -----------------------------------------------------------------

@cli.group()
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


@cli.command()
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


# -- nodes ------------------------------------------------------------------

@cli.group()
def node() -> None:
    """Inspect, drain, cordon and forget worker nodes."""


NODE_COLUMNS = ["NODE", "STATE", "LABELS", "QUEUES", "IN-FLIGHT", "GENERATION", "LAST SEEN"]


def _node_row(n: admin_pb2.NodeInfo) -> list[Any]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(n.labels.items()))
    flags = [f for f, on in (("cordoned", n.cordoned), ("drained", n.drained),
                             ("draining", n.draining and not n.drained)) if on]
    state = STATES.get(n.state, "?") + (f" ({', '.join(flags)})" if flags else "")
    return [n.node_id, state, labels, ",".join(q.queue for q in n.queues), sum(q.in_flight for q in n.queues),
            n.applied_generation, when(n.last_seen)]


@node.command("list")
@output_option
@pass_cluster
def node_list(cluster: Cluster, output: str) -> None:
    """List nodes and their liveness."""
    nodes = cluster.call(cluster.admin.ListNodes, admin_pb2.ListNodesRequest()).nodes
    emit(output, [to_dict(n) for n in nodes], NODE_COLUMNS, [_node_row(n) for n in nodes])


@node.command("show")
@click.argument("node_id", metavar="NODE_ID")
@output_option
@pass_cluster
def node_show(cluster: Cluster, node_id: str, output: str) -> None:
    """Show one node, with what each of its queues is doing."""
    info = cluster.call(cluster.admin.GetNode, admin_pb2.GetNodeRequest(node_id=cluster.node_id(node_id))).node
    data = to_dict(info)
    if output == "table":
        data["state"] = STATES.get(info.state, "?")
    fields(output, data)


def _node_verb(verb: str, rpc_name: str, request_type: Any, done: Callable[[Any], str], help_text: str) -> None:
    """A `node VERB NODE_ID` command: one RPC, one line saying what it did."""
    @node.command(verb, help=help_text)
    @click.argument("node_id")
    @pass_cluster
    def command(cluster: Cluster, node_id: str) -> None:
        node_id = cluster.node_id(node_id)
        response = cluster.call(getattr(cluster.admin, rpc_name), request_type(node_id=node_id))
        click.echo(f"node {node_id} {done(response)}")


_node_verb("drain", "DrainNode", admin_pb2.DrainNodeRequest, lambda _: "draining",
           "Stop fetching on a node; running tasks finish.")
_node_verb("cordon", "CordonNode", admin_pb2.CordonNodeRequest,
           lambda r: f"cordoned; it keeps {', '.join(r.node.cordoned_queues) or 'no queues'}",
           "Place no new queues on a node; it keeps running the ones it has.")
_node_verb("uncordon", "UncordonNode", admin_pb2.UncordonNodeRequest, lambda _: "uncordoned",
           "Place queues on a node again (ends a cordon and a drain).")
_node_verb("forget", "ForgetNode", admin_pb2.ForgetNodeRequest, lambda _: "forgotten",
           "Remove a down node's record (refused while it is up).")


# -- messages ---------------------------------------------------------------

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


@cli.command()
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

@cli.group()
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


# -- stats and history ------------------------------------------------------

STATS_COLUMNS = ["QUEUE", "STATE", "GROUP", "RATE/S", "SUCCEEDED", "FAILED", "RETRIED", "DEAD", "REJECTED", "IN-FLIGHT",
                 "BUSY", "BACKLOG", "RUN P50", "RUN P99", "WAIT P99", "E2E P50", "E2E P99"]


def _queue_states(cluster: Cluster) -> dict[str, str]:
    """Each queue's state (serving, unserved, paused, broker error), by name."""
    resp = cluster.call(cluster.admin.ListQueues, admin_pb2.ListQueuesRequest())
    return {h.queue: QUEUE_STATES.get(h.state, "?") for h in resp.health}


def _stats_row(r: stats_pb2.QueueReport, states: dict[str, str]) -> list[Any]:
    return [r.queue or "(all)", states.get(r.queue, "-"), r.group or "-", f"{r.rate:.1f}", r.succeeded, r.failed, r.retried, r.dead_lettered,
            r.rejected, r.in_flight, r.busy_slots, r.backlog, ms(r.run_time.p50), ms(r.run_time.p99),
            ms(r.wait_time.p99), ms(r.end_to_end.p50), ms(r.end_to_end.p99)]


@cli.command()
@click.option("--queue", "queue_name", default=None, help="only this queue")
@click.option("--by", default="", help="group rows by 'node' or a node label such as 'dc'")
@click.option("--window", default="1m", show_default=True, help="time window: 10s, 1m, 15m, 1h, 24h")
@output_option
@pass_cluster
def stats(cluster: Cluster, queue_name: str | None, by: str, window: str, output: str) -> None:
    """Throughput, outcomes and latency per queue (JSON: the window, a row per
    queue or group, and the totals)."""
    if queue_name:
        resp = cluster.call(cluster.stats.GetQueueStats, stats_pb2.GetQueueStatsRequest(queue=queue_name, window=window,
                                                                                    by=by))
        rows, totals = (list(resp.groups) if by else [resp.total]), []
        seconds, covered = resp.window_seconds, resp.covered_seconds
    else:
        cluster_resp = cluster.call(cluster.stats.GetCluster, stats_pb2.GetClusterRequest(window=window, by=by))
        rows, totals = list(cluster_resp.groups if by else cluster_resp.queues), list(cluster_resp.totals)
        seconds, covered = cluster_resp.window_seconds, cluster_resp.covered_seconds
    states = _queue_states(cluster)
    rows = [r for r in rows if r.queue in states] if queue_name or by else every_queue(rows, states)
    data = {"window_seconds": seconds, "covered_seconds": covered,
            "rows": [{**to_dict(r), "state": states[r.queue]} for r in rows], "totals": [to_dict(r) for r in totals]}
    if output == "table":
        click.echo(window_line(seconds, covered))
    emit(output, data, STATS_COLUMNS, [_stats_row(r, states) for r in rows + totals])


@cli.command()
@click.option("--by", default=None, help="node label (or 'node') for the totals [default: dc, if nodes have it]")
@click.option("--window", default="1m", show_default=True, help="window of the figures")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="print this many frames to stdout and exit, instead of a live view")
@pass_cluster
def top(cluster: Cluster, by: str | None, window: str, iterations: int | None) -> None:
    """A live view of the cluster, refreshed every second; Ctrl-C quits."""
    if by is None:
        nodes = cluster.call(cluster.admin.ListNodes, admin_pb2.ListNodesRequest()).nodes
        by = "dc" if any("dc" in n.labels for n in nodes) else ""
    watch = stats_pb2.WatchRequest(window=window, by=by, interval_seconds=1.0, recent="1m")
    run_top(cluster.watch(watch), by, iterations, lambda: _queue_states(cluster))


@cli.command()
@click.option("--limit", default=50, show_default=True, help="newest entries to show")
@output_option
@pass_cluster
def history(cluster: Cluster, limit: int, output: str) -> None:
    """The audit log of admin changes, newest first."""
    entries = cluster.call(cluster.admin.ListAudit, admin_pb2.ListAuditRequest(limit=limit)).entries
    emit(output, [to_dict(e) for e in entries], ["AT", "ACTOR", "ACTION", "TARGET", "DETAIL"],
         [[when(e.at), e.actor, e.action, e.target, e.detail] for e in entries])


def main() -> None:
    """Entry point: every error is one line on stderr and a trustworthy exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)


if __name__ == "__main__":
    main()
