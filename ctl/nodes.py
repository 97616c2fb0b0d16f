"""`octoctl node`: inspect, drain, cordon and forget worker nodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from octobot.ctl.cluster import Cluster, pass_cluster
from octobot.ctl.output import STATES, emit, fields, output_option, to_dict, when
from octobot.v1 import admin_pb2


@click.group()
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
