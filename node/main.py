"""octobot-node: run queues as the coordinator assigns them, or standalone
from a YAML file as the original Octobot did.

    octobot-node --coordinator 127.0.0.1:7400 --label dc=us-east --tasks myapp.tasks --state-dir /var/lib/octobot
    octobot-node --coordinator coord:7401 --ca ca.pem --client-cert node.pem --client-key node.key ...
    octobot-node --coordinator coord:7400 --ca ca.pem --join-token obt_... ...
    octobot-node --config octobot.yml --tasks myapp.tasks --metrics-listen 127.0.0.1:1228
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import click
from cryptography import x509
from cryptography.x509.oid import NameOID

import octobot
from octobot import middleware, queue_specs, rpc, tasks
from octobot.node import notify
from octobot.logs import setup_logging
from octobot.node import config as node_config
from octobot.node.agent import Agent
from octobot.node.local_metrics import LocalStats, serve
from octobot.node.processes import ProcessPool
from octobot.node.session import CoordinatorSession
from octobot.node.state import StateDir
from octobot.node.stats_buffer import StatsBuffer
from octobot.secrets import EVERYTHING, SecretSources
from octobot.selector import parse_labels

log = logging.getLogger("octobot.node")
DEFAULT_COORDINATOR = "127.0.0.1:7400"


def load_hook(spec: str | None, option: str) -> Callable[[], object] | None:
    """``module:function`` -> the function; a one-line error if it is not there."""
    if not spec:
        return None
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise click.BadParameter(f"{spec!r}: expected module:function", param_hint=option)
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"{spec!r}: {exc}", param_hint=option) from None
    if not callable(fn):
        raise click.BadParameter(f"{spec!r} is not callable", param_hint=option)
    return fn  # type: ignore[no-any-return]


def run_hook(hook: Callable[[], object] | None, what: str) -> None:
    if hook is None:
        return
    try:
        hook()
    except Exception as exc:
        raise click.ClickException(f"{what} hook failed: {type(exc).__name__}: {exc}") from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(octobot.__version__, "--version", prog_name="octobot-node", message="%(prog)s %(version)s")
@click.option("--coordinator", envvar="OCTOBOT_COORDINATOR", default=None,
              help=f"coordinator host:port [default: {DEFAULT_COORDINATOR}]")
@click.option("--ca", type=click.Path(dir_okay=False), default=None, envvar="OCTOBOT_CA",
              help="CA (PEM) that signed the coordinator's certificate; TLS is used off loopback regardless")
@click.option("--client-cert", type=click.Path(dir_okay=False), default=None,
              help="this node's certificate for the coordinator's --node-listen port (mutual TLS); "
                   "its common name is the node id")
@click.option("--client-key", type=click.Path(dir_okay=False), default=None, help="private key of --client-cert")
@click.option("--join-token", envvar="OCTOBOT_JOIN_TOKEN", default=None,
              help="join token (octoctl token create NAME --role node) for the coordinator's --listen port: "
                   "used once, to get the node's own credential, kept in --state-dir")
@click.option("--insecure", is_flag=True,
              help="plaintext to a non-loopback coordinator, and for a non-loopback --metrics-listen")
@click.option("--secrets-dir", "secrets_dirs", multiple=True, type=click.Path(file_okay=False),
              help="a directory whose files broker URLs may reference as ${file:/path} (repeatable); none by default")
@click.option("--secret-env", "secret_env", multiple=True,
              help="an environment variable broker URLs may reference as ${env:NAME} (repeatable); none by default")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="standalone: run the queues of this YAML file, with no coordinator")
@click.option("--label", "labels", multiple=True, help="node label key=value, e.g. dc=us-east (repeatable)")
@click.option("--tasks", "task_modules", multiple=True,
              help="module(s) defining @octobot.task functions; repeatable or comma-separated")
@click.option("--state-dir", default="./octobot-node", show_default=True,
              help="where the node id and the last assignment are kept")
@click.option("--max-workers", type=click.IntRange(min=1), default=None,
              help="slot budget shared by all queues by priority (default: no limit, each queue at its concurrency)")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="worker processes sharing each queue's concurrency (for CPU-bound tasks)")
@click.option("--metrics-listen", default=None,
              help="standalone: serve /metrics (Prometheus) and / (JSON) on host:port")
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None,
              help="standalone: PEM certificate to serve --metrics-listen over HTTPS (with --tls-key)")
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None, help="private key of --tls-cert")
@click.option("--middleware", "middleware_names", multiple=True,
              help="module:Class (an octobot.Middleware) or an octobot.middleware entry point, whose hooks run "
              "around every task; repeatable, applied in order")
@click.option("--on-start", default=None, help="module:function to call before consuming starts")
@click.option("--on-stop", default=None, help="module:function to call after the node has drained")
@click.option("--stats/--no-stats", "record_stats", default=True, show_default=True,
              help="record task counts and latencies (--no-stats only to measure their cost)")
@click.option("--drain-timeout", default=30.0, show_default=True, help="seconds to finish running tasks on SIGTERM")
@click.option("--interval", default=1.0, show_default=True, help="heartbeat and stats interval, seconds")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def main(coordinator: str | None, ca: str | None, client_cert: str | None, client_key: str | None,
         join_token: str | None, insecure: bool, secrets_dirs: tuple[str, ...], secret_env: tuple[str, ...],
         config_path: str | None, labels: tuple[str, ...], task_modules: tuple[str, ...],
         middleware_names: tuple[str, ...],
         state_dir: str, max_workers: int | None, processes: int, metrics_listen: str | None,
         tls_cert: str | None, tls_key: str | None,
         on_start: str | None, on_stop: str | None, record_stats: bool, drain_timeout: float, interval: float,
         log_level: str) -> None:
    """Run an Octobot worker node."""
    setup_logging(log_level)
    try:
        label_map = parse_labels(list(labels))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from None
    config = None
    if config_path is not None:
        if coordinator is not None:
            raise click.UsageError("--config runs standalone: leave out --coordinator (or OCTOBOT_COORDINATOR)")
        try:
            config = node_config.load(config_path)
        except node_config.ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        max_workers = max_workers or config.max_workers
        metrics_listen = metrics_listen or config.metrics_listen
        on_start, on_stop = on_start or config.startup_hook, on_stop or config.shutdown_hook
    elif metrics_listen is not None:
        raise click.UsageError("--metrics-listen is for standalone nodes; with a coordinator, scrape the coordinator")
    page_tls = _page_tls(metrics_listen, tls_cert, tls_key, insecure)

    # Task modules and hooks live in the operator's project, as with `python -m`.
    sys.path.insert(0, os.getcwd())
    modules = [m.strip() for spec in task_modules for m in spec.split(",") if m.strip()]
    try:
        tasks.import_modules(modules)
    except Exception as exc:
        raise click.ClickException(f"cannot import task module: {type(exc).__name__}: {exc}") from None
    start_hook, stop_hook = load_hook(on_start, "--on-start"), load_hook(on_stop, "--on-stop")
    try:
        middleware.install(*(middleware.load(name) for name in middleware_names))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--middleware") from None

    if (client_cert is None) != (client_key is None):
        raise click.UsageError("give --client-cert and --client-key together")
    if join_token is not None:
        try:
            rpc.check_token(join_token)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--join-token") from None
    try:
        state = StateDir(state_dir)
        node_id = state.node_id()
        if client_cert is not None:
            node_id = _certificate_node_id(client_cert, state)
    except OSError as exc:  # without its id a node would register anew on every start
        raise click.ClickException(f"cannot use --state-dir {state_dir}: {exc}") from None
    run_hook(start_hook, "start")
    # Only a coordinator's assignments are cached: a standalone node reads its file.
    cache = None if config else state
    # A standalone node's URLs come from its own file; a coordinator's, from whoever may set them.
    sources = EVERYTHING if config else SecretSources(secrets_dirs, frozenset(secret_env))
    agent: Agent | ProcessPool
    if processes == 1:
        agent = Agent(node_id, drain_timeout=drain_timeout, max_workers=max_workers, cache=cache,
                      record_stats=record_stats, secret_sources=sources)
    else:
        agent = ProcessPool(node_id, processes, modules, interval=interval, drain_timeout=drain_timeout,
                            max_workers=max_workers, log_level=log_level, cache=cache, record_stats=record_stats,
                            middleware_names=list(middleware_names),
                            secret_sources=sources, mail=config.mail if config else None)
    if config is not None and config.mail is not None:
        notify.install(config.mail)  # the dead letters of this process (one process), or of none
        log.info("dead letters are mailed to %s", ", ".join(config.mail.recipients))
    log.info("node %s starting (labels %s, %d tasks registered, %d process(es)%s)", node_id, label_map,
             len(tasks.names()), processes, ", standalone" if config else "")
    stats = StatsBuffer(agent.stats, interval)
    stopped = threading.Event()
    threading.Thread(target=stats.run, args=(stopped,), name="stats", daemon=True).start()

    session: CoordinatorSession | None = None
    if config is not None:
        agent.apply(config.assignment())
        if metrics_listen:
            local = LocalStats()
            try:
                _, port = serve(local, metrics_listen, page_tls)
            except (OSError, ValueError) as exc:
                raise click.ClickException(f"cannot serve metrics on {metrics_listen}: {exc}") from None
            log.info("metrics on %s://%s:%d/metrics and /", "https" if page_tls else "http",
                     metrics_listen.rpartition(":")[0] or "127.0.0.1", port)
            threading.Thread(target=_feed, args=(stats, local, stopped), name="local-stats", daemon=True).start()
    else:
        cached = state.load_assignment()
        if cached is not None:
            # Work goes on from the last assignment even if the coordinator is unreachable.
            log.info("resuming cached assignment generation %d (%d queues)", cached.generation, len(cached.queues))
            agent.apply(queue_specs.for_node(cached, label_map))
        auth = rpc.ClientAuth(ca=ca, client_cert=client_cert, client_key=client_key, insecure=insecure)
        session = CoordinatorSession(agent, stats, coordinator or DEFAULT_COORDINATOR, node_id, label_map, auth,
                                     state, join_token)
        session_thread = threading.Thread(target=session.run, name="session", daemon=True)
        session_thread.start()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s: stopping fetch, finishing in-flight work (up to %.0fs)", signal.Signals(signum).name,
                 drain_timeout)
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stopped.wait()
    if session is not None:
        session.stop()  # first, so no new assignment starts queues while we drain
        session_thread.join(timeout=5)
    agent.shutdown()
    run_hook(stop_hook, "stop")
    log.info("node %s stopped", node_id)


def _certificate_node_id(path: str, state: StateDir) -> str:
    """The node id a client certificate carries (its common name); the state
    dir's id follows it, so the id a node reports always matches its certificate."""
    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--client-cert") from None
    if not names:
        raise click.BadParameter(f"{path} has no common name to take the node id from", param_hint="--client-cert")
    node_id = str(names[0].value)
    if state.node_id() != node_id:
        state.set_node_id(node_id)
    return node_id


def _page_tls(metrics_listen: str | None, tls_cert: str | None, tls_key: str | None,
              insecure: bool) -> rpc.ServerTls | None:
    """HTTPS for the standalone metrics page; plaintext only on loopback or with --insecure."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together")
    if tls_cert and not metrics_listen:
        raise click.UsageError("--tls-cert and --tls-key serve --metrics-listen (standalone nodes)")
    tls = rpc.ServerTls(tls_cert, tls_key) if tls_cert and tls_key else None
    if metrics_listen:
        try:
            rpc.require_tls_off_loopback(metrics_listen, tls, insecure, "--metrics-listen")
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    return tls


def _feed(stats: StatsBuffer, local: LocalStats, stopped: threading.Event) -> None:
    """Standalone: the node's own reports go to its metrics endpoint."""
    while not stopped.wait(stats.interval):
        for report in stats.drain():
            local.add(report)


if __name__ == "__main__":
    sys.exit(main())
