"""octobot-coordinator: serve the Admin, Node, Stats and Token APIs over one store.

    octobot-coordinator --listen 127.0.0.1:7400 --db sqlite:///octobot.db
    octobot-coordinator --listen 0.0.0.0:7400 --tls-cert coord.pem --tls-key coord.key \
        --node-listen 0.0.0.0:7401 --client-ca ca.pem
    octobot-coordinator token create alice --role admin --db sqlite:///octobot.db
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from dataclasses import dataclass

import click

import octobot
from octobot import rpc
from octobot.coordinator.admin_service import AdminService
from octobot.coordinator.app import Coordinator
from octobot.coordinator.auth import AuthInterceptor
from octobot.coordinator.errors import MalformedRequests
from octobot.coordinator.node_service import NodeService
from octobot.coordinator.prometheus import serve_metrics
from octobot.coordinator.sessions import Liveness
from octobot.coordinator.stats.series import RETENTION
from octobot.coordinator.stats_service import StatsService
from octobot.coordinator.records import AlreadyExists
from octobot.coordinator.store import Store
from octobot.coordinator.token_service import TokenService
from octobot.coordinator import tokens
from octobot.durations import parse_duration
from octobot.logs import setup_logging
from octobot.v1 import (admin_pb2, admin_pb2_grpc, auth_pb2, auth_pb2_grpc, node_pb2, node_pb2_grpc, stats_pb2,
                        stats_pb2_grpc)

log = logging.getLogger("octobot.coordinator")

SERVICE_NAMES = [
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    node_pb2.DESCRIPTOR.services_by_name["NodeService"].full_name,
    stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name,
    auth_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name,
]


@dataclass(slots=True)
class Options:
    listen: str
    db: str
    liveness: Liveness
    port_file: str | None
    metrics_listen: str | None
    metrics_port_file: str | None
    retention: int
    # TLS on every listener; with a client CA, the node listener's mutual TLS.
    tls: rpc.ServerTls | None = None
    node_listen: str | None = None
    node_port_file: str | None = None
    # The only directory whose SQLite queue files the coordinator opens (enqueue, dead letters).
    sqlite_queue_dir: str | None = None
    # Take a missing or other SQLite store file where a store was made (see StoreFile).
    new_store: bool = False


def _write_port(path: str | None, port: int) -> None:
    if path:
        with open(path, "w") as f:
            f.write(str(port))


async def serve(opts: Options) -> None:
    listen, db = opts.listen, opts.db
    try:
        store = Store.open(db, opts.new_store)
    except Exception as exc:  # bad URL, unreachable database, a missing store file: one line, not a traceback
        raise click.ClickException(f"cannot open store {db}: {exc}") from None
    # Without TLS (loopback, or --insecure) callers need no credentials.
    app = Coordinator(store, opts.liveness, opts.retention, anonymous=opts.tls is None)
    await app.auth.reload()
    admin = AdminService(app, opts.sqlite_queue_dir)
    stats = StatsService(app)
    server_tls = None if opts.tls is None else rpc.ServerTls(opts.tls.cert, opts.tls.key)
    server, port = await rpc.make_server(listen, [
        lambda s: admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, s),
        lambda s: node_pb2_grpc.add_NodeServiceServicer_to_server(NodeService(app), s),
        lambda s: stats_pb2_grpc.add_StatsServiceServicer_to_server(stats, s),
        lambda s: auth_pb2_grpc.add_TokenServiceServicer_to_server(TokenService(app), s),
    ], SERVICE_NAMES, tls=server_tls, interceptors=[AuthInterceptor(app.auth), MalformedRequests()],
        max_connections=max(64, rpc.raise_fd_limit() - rpc.RESERVED_FDS))
    host = listen.rsplit(":", 1)[0]
    if opts.node_listen:
        node_port = rpc.add_port(server, opts.node_listen, opts.tls)
        log.info("nodes with client certificates on %s:%d (mutual TLS)", opts.node_listen.rsplit(":", 1)[0],
                 node_port)
        _write_port(opts.node_port_file, node_port)
    await server.start()
    log.info("coordinator listening on %s:%d (%s), store %s", host, port,
             "TLS, tokens required" if opts.tls else "plaintext, no credentials needed",
             store.engine.url.render_as_string(hide_password=True))
    loop = asyncio.get_running_loop()
    metrics = None
    if opts.metrics_listen:
        metrics, metrics_port = serve_metrics(app, opts.metrics_listen, loop, server_tls, app.auth.authorize_http)
        log.info("Prometheus metrics on %s://%s:%d/metrics", "https" if server_tls else "http",
                 opts.metrics_listen.rsplit(":", 1)[0], metrics_port)
        _write_port(opts.metrics_port_file, metrics_port)
    _write_port(opts.port_file, port)
    # Thousands of node messages a second keep the default collector doing a
    # full pass (100+ ms over every object) every couple of seconds: leave the
    # start-up objects out of it and collect young objects in larger batches
    # (not too large: at 50,000 a young collection paused the loop 50-80 ms).
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)
    # Each time the loop thread blocks briefly (a socket, a gRPC call) the busy
    # store thread takes the GIL, and by default keeps it 5 ms
    # before the loop may have it back: RPC latency would pay that many times over.
    sys.setswitchinterval(0.0005)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    persist_used = lambda used: app.db(store.touch_tokens, used)  # noqa: E731
    background = [asyncio.create_task(app.persist_last_seen(every=5.0)),
                  asyncio.create_task(app.auth.keep_loaded(persist_used)),
                  asyncio.create_task(app.stats.maintain()), asyncio.create_task(app.keep_stats()),
                  asyncio.create_task(app.reports.run()), asyncio.create_task(app.pushes()),
                  asyncio.create_task(stats.refresh()),
                  asyncio.create_task(app.backlogs.run(admin.brokers, lambda: app.db(store.list_queues)))]
    await stop.wait()
    log.info("shutting down")
    for task in background:
        task.cancel()
    await server.stop(grace=2.0)
    await app.flush_stats(final=True)
    await persist_used(app.auth.tokens.take_used())
    if metrics is not None:
        metrics.shutdown()
    admin.close()
    app.close()


def _server_tls(tls_cert: str | None, tls_key: str | None, client_ca: str | None, node_listen: str | None,
                listens: list[tuple[str, str]], insecure: bool) -> rpc.ServerTls | None:
    """The listeners' TLS from the flags; a one-line error for a setup that
    would expose plaintext or lacks a part."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together")
    if (client_ca is None) != (node_listen is None):
        raise click.UsageError("--node-listen (mutual TLS for nodes) and --client-ca go together")
    if client_ca is not None and tls_cert is None:
        raise click.UsageError("--node-listen needs --tls-cert and --tls-key")
    tls = rpc.ServerTls(tls_cert, tls_key, client_ca) if tls_cert and tls_key else None
    for flag, address in listens:
        try:
            rpc.require_tls_off_loopback(address, tls, insecure, flag)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    return tls


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(octobot.__version__, "--version", prog_name="octobot-coordinator",
                      message="%(prog)s %(version)s")
@click.option("--listen", default="127.0.0.1:7400", show_default=True, help="host:port for gRPC (port 0 picks one)")
@click.option("--db", default="sqlite:///octobot.db", show_default=True, envvar="OCTOBOT_DB",
              help="store URL: sqlite:///file.db or postgresql+psycopg://user@host/db")
@click.option("--suspect-after", default=5.0, show_default=True, help="seconds without heartbeat before a node is suspect")
@click.option("--down-after", default=15.0, show_default=True, help="seconds without heartbeat before a node is down")
@click.option("--port-file", default=None, help="write the bound port here once listening")
@click.option("--metrics-listen", default=None, help="host:port for Prometheus /metrics (port 0 picks one); off if unset")
@click.option("--metrics-port-file", default=None, help="write the bound metrics port here once listening")
@click.option("--stats-retention", default="7d", show_default=True,
              help="how long the store keeps 1 minute stats rollups (like 24h or 30d)")
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None,
              help="PEM certificate for every listener (with --tls-key); callers then need tokens")
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None, help="PEM private key of --tls-cert")
@click.option("--node-listen", default=None,
              help="host:port where nodes connect with client certificates (mutual TLS; needs --client-ca)")
@click.option("--client-ca", type=click.Path(dir_okay=False), default=None,
              help="CA (PEM) that signs node certificates; a node's id is its certificate's common name")
@click.option("--node-port-file", default=None, help="write the bound --node-listen port here once listening")
@click.option("--insecure", is_flag=True,
              help="serve plaintext, without credentials, on a non-loopback address (trusted networks only)")
@click.option("--sqlite-queue-dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="the directory whose sqlite queue files enqueue and dead-letter calls may open (none if unset)")
@click.option("--new-store", is_flag=True,
              help="start although the SQLite store file made at --db is missing (an empty store is made) "
                   "or another file is there (it is used)")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_context
def main(ctx: click.Context, listen: str, db: str, suspect_after: float, down_after: float, port_file: str | None,
         metrics_listen: str | None, metrics_port_file: str | None, stats_retention: str, tls_cert: str | None,
         tls_key: str | None, node_listen: str | None, client_ca: str | None, node_port_file: str | None,
         insecure: bool, sqlite_queue_dir: str | None, new_store: bool, log_level: str) -> None:
    """Run the Octobot coordinator."""
    if ctx.invoked_subcommand is not None:
        return
    setup_logging(log_level)
    listens = [("--listen", listen)] + ([("--metrics-listen", metrics_listen)] if metrics_listen else [])
    tls = _server_tls(tls_cert, tls_key, client_ca, node_listen, listens, insecure)
    if down_after <= suspect_after:
        raise click.BadParameter("--down-after must be larger than --suspect-after")
    try:
        retention = parse_duration(stats_retention, "retention")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--stats-retention") from None
    if retention < RETENTION:
        raise click.BadParameter(f"keep at least {RETENTION // 60}m", param_hint="--stats-retention")
    opts = Options(listen, db, Liveness(suspect_after, down_after), port_file, metrics_listen, metrics_port_file,
                   retention, tls, node_listen, node_port_file, sqlite_queue_dir, new_store)
    try:
        asyncio.run(serve(opts))
    except OSError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def token() -> None:
    """Make a token straight in the store: the first admin token, before any exists."""


@token.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(list(tokens.ROLES_BY_NAME)), help="what the token may do")
@click.option("--db", default="sqlite:///octobot.db", show_default=True, envvar="OCTOBOT_DB", help="store URL")
@click.option("--expires", default=None, help="lifetime such as 30d or 12h (default: never)")
def token_create(name: str, role: str, db: str, expires: str | None) -> None:
    """Print a new token's secret (once)."""
    try:
        tokens.check_name(name)
        ttl = parse_duration(expires, "expires") if expires else None
        tokens.check_ttl(ttl or 0)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    try:
        store = Store.open(db)
    except Exception as exc:
        raise click.ClickException(f"cannot open store {db}: {exc}") from None
    try:
        record, secret = tokens.new_token(name, tokens.ROLES_BY_NAME[role], time.time(), ttl)
        store.create_token(record, actor="octobot-coordinator token create")
    except AlreadyExists as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(secret)


if __name__ == "__main__":
    sys.exit(main())
