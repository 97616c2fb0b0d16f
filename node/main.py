"""octobot-node: run queues as the coordinator assigns them.

    octobot-node --coordinator 127.0.0.1:7400 --label dc=us-east --tasks myapp.tasks --state-dir /var/lib/octobot
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import click

from octobot import tasks
from octobot.logs import setup_logging
from octobot.node.agent import Agent
from octobot.node.processes import ProcessPool
from octobot.node.session import CoordinatorSession
from octobot.node.state import StateDir
from octobot.node.stats_buffer import StatsBuffer
from octobot.selector import parse_labels

log = logging.getLogger("octobot.node")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--coordinator", envvar="OCTOBOT_COORDINATOR", default="127.0.0.1:7400", show_default=True,
              help="coordinator host:port")
@click.option("--label", "labels", multiple=True, help="node label key=value, e.g. dc=us-east (repeatable)")
@click.option("--tasks", "task_modules", multiple=True,
              help="module(s) defining @octobot.task functions; repeatable or comma-separated")
@click.option("--state-dir", default="./octobot-node", show_default=True,
              help="where the node id and the last assignment are kept")
@click.option("--max-workers", type=click.IntRange(min=1), default=None,
              help="slot budget shared by all queues by priority (default: no limit, each queue at its concurrency)")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="worker processes sharing each queue's concurrency (for CPU-bound tasks)")
@click.option("--drain-timeout", default=30.0, show_default=True, help="seconds to finish running tasks on SIGTERM")
@click.option("--interval", default=1.0, show_default=True, help="heartbeat and stats interval, seconds")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def main(coordinator: str, labels: tuple[str, ...], task_modules: tuple[str, ...], state_dir: str,
         max_workers: int | None, processes: int, drain_timeout: float, interval: float, log_level: str) -> None:
    """Run an Octobot worker node."""
    setup_logging(log_level)
    try:
        label_map = parse_labels(list(labels))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from None
    # Task modules live in the operator's project, as with `python -m`.
    sys.path.insert(0, os.getcwd())
    modules = [m.strip() for spec in task_modules for m in spec.split(",") if m.strip()]
    try:
        tasks.import_modules(modules)
    except Exception as exc:
        raise click.ClickException(f"cannot import task module: {type(exc).__name__}: {exc}") from None

    state = StateDir(state_dir)
    node_id = state.node_id()
    agent: Agent | ProcessPool
    if processes == 1:
        agent = Agent(node_id, drain_timeout=drain_timeout, max_workers=max_workers, cache=state)
    else:
        agent = ProcessPool(node_id, processes, modules, interval=interval, drain_timeout=drain_timeout,
                            max_workers=max_workers, log_level=log_level, cache=state)
    log.info("node %s starting (labels %s, %d tasks registered, %d process(es))", node_id, label_map,
             len(tasks.names()), processes)
    cached = state.load_assignment()
    if cached is not None:
        # Work goes on from the last assignment even if the coordinator is unreachable.
        log.info("resuming cached assignment generation %d (%d queues)", cached.generation, len(cached.queues))
        agent.apply(cached)
    stats = StatsBuffer(agent.stats, interval)
    session = CoordinatorSession(agent, stats, coordinator, node_id, label_map)
    stopped = threading.Event()
    threading.Thread(target=stats.run, args=(stopped,), name="stats", daemon=True).start()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s: stopping fetch, finishing in-flight work (up to %.0fs)", signal.Signals(signum).name,
                 drain_timeout)
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=session.run, name="session", daemon=True)
    thread.start()
    stopped.wait()
    session.stop()  # first, so no new assignment starts queues while we drain
    thread.join(timeout=5)
    agent.shutdown()
    log.info("node %s stopped", node_id)


if __name__ == "__main__":
    sys.exit(main())
