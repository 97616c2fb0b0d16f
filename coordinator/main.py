"""octobot-coordinator: serve the Admin, Node and Stats APIs over one store.

    octobot-coordinator --listen 127.0.0.1:7400 --db sqlite:///octobot.db
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from dataclasses import dataclass

import click

from octobot import rpc
from octobot.coordinator.admin_service import AdminService
from octobot.coordinator.app import Coordinator
from octobot.coordinator.node_service import NodeService
from octobot.coordinator.prometheus import serve_metrics
from octobot.coordinator.sessions import Liveness
from octobot.coordinator.stats import parse_duration
from octobot.coordinator.stats_series import RETENTION
from octobot.coordinator.stats_service import StatsService
from octobot.coordinator.store import Store
from octobot.logs import setup_logging
from octobot.v1 import admin_pb2, admin_pb2_grpc, node_pb2, node_pb2_grpc, stats_pb2, stats_pb2_grpc

log = logging.getLogger("octobot.coordinator")

SERVICE_NAMES = [
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    node_pb2.DESCRIPTOR.services_by_name["NodeService"].full_name,
    stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name,
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


def _write_port(path: str | None, port: int) -> None:
    if path:
        with open(path, "w") as f:
            f.write(str(port))


async def serve(opts: Options) -> None:
    listen, db = opts.listen, opts.db
    try:
        store = Store.open(db)
    except Exception as exc:  # bad URL, unreachable database: one line, not a traceback
        raise click.ClickException(f"cannot open store {db}: {exc}") from None
    app = Coordinator(store, opts.liveness, opts.retention)
    admin = AdminService(app)
    stats = StatsService(app)
    server, port = await rpc.make_server(listen, [
        lambda s: admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, s),
        lambda s: node_pb2_grpc.add_NodeServiceServicer_to_server(NodeService(app), s),
        lambda s: stats_pb2_grpc.add_StatsServiceServicer_to_server(stats, s),
    ], SERVICE_NAMES)
    await server.start()
    host = listen.rsplit(":", 1)[0]
    log.info("coordinator listening on %s:%d, store %s", host, port, store.engine.url.render_as_string(hide_password=True))
    loop = asyncio.get_running_loop()
    metrics = None
    if opts.metrics_listen:
        metrics, metrics_port = serve_metrics(app, opts.metrics_listen, loop)
        log.info("Prometheus metrics on http://%s:%d/metrics", opts.metrics_listen.rsplit(":", 1)[0], metrics_port)
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
    background = [asyncio.create_task(app.persist_last_seen(every=5.0)),
                  asyncio.create_task(app.stats.maintain()), asyncio.create_task(app.keep_stats()),
                  asyncio.create_task(stats.refresh())]
    await stop.wait()
    log.info("shutting down")
    for task in background:
        task.cancel()
    await server.stop(grace=2.0)
    await app.flush_stats(final=True)
    if metrics is not None:
        metrics.shutdown()
    admin.close()
    app.close()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def main(listen: str, db: str, suspect_after: float, down_after: float, port_file: str | None,
         metrics_listen: str | None, metrics_port_file: str | None, stats_retention: str, log_level: str) -> None:
    """Run the Octobot coordinator."""
    setup_logging(log_level)
    if down_after <= suspect_after:
        raise click.BadParameter("--down-after must be larger than --suspect-after")
    try:
        retention = parse_duration(stats_retention, "retention")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--stats-retention") from None
    if retention < RETENTION:
        raise click.BadParameter(f"keep at least {RETENTION // 60}m", param_hint="--stats-retention")
    opts = Options(listen, db, Liveness(suspect_after, down_after), port_file, metrics_listen, metrics_port_file,
                   retention)
    try:
        asyncio.run(serve(opts))
    except OSError as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
