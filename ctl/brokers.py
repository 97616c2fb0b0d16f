"""`octoctl broker`: brokers declared once and used by name, with a URL per datacenter.

    octoctl broker add main --backend redis --url redis://redis.us-east:6379/0 \\
        --url dc=eu-west=redis://redis.eu-west:6379/0
    octoctl queue add emails --broker main
"""

from __future__ import annotations

from typing import Any

import click

from octobot.ctl.cluster import Cluster, pass_cluster
from octobot.ctl.output import emit, fields, output_option, to_dict, when
from octobot.v1 import admin_pb2, queue_pb2

URL_HELP = ("the default URL, and SELECTOR=URL for nodes whose labels match, e.g. dc=eu-west=redis://h:6379/0 "
            "(repeatable; the first matching selector wins)")
COLUMNS = ["NAME", "BACKEND", "URL", "ENDPOINTS", "UPDATED"]


def parse_urls(urls: tuple[str, ...]) -> tuple[str, list[queue_pb2.Endpoint]]:
    """The default URL and the endpoints from --url values: a URL, or SELECTOR=URL
    (the selector is what comes before the last '=' ahead of the URL's scheme)."""
    default, endpoints = None, []
    for text in urls:
        head, sep, _ = text.partition("://")
        selector, eq, scheme = head.rpartition("=")
        if not sep or not eq:
            if default is not None:
                raise click.BadParameter("one default URL only; give the others as SELECTOR=URL", param_hint="--url")
            default = text
        else:
            endpoints.append(queue_pb2.Endpoint(selector=selector, url=text[len(selector) + 1:]))
    if default is None:
        raise click.BadParameter("a default URL is required, for nodes no selector matches", param_hint="--url")
    return default, endpoints


def _row(b: queue_pb2.Broker) -> list[Any]:
    return [b.name, b.backend, b.url, " ".join(f"{e.selector}={e.url}" for e in b.endpoints) or "-",
            when(b.updated_at)]


@click.group("broker")
def group() -> None:
    """Declare brokers once and put queues on them by name (admin to change)."""


@group.command("add")
@click.argument("name")
@click.option("--backend", required=True, help="redis, amqp, beanstalk or sqlite")
@click.option("--url", "urls", multiple=True, required=True, help=URL_HELP)
@output_option
@pass_cluster
def add(cluster: Cluster, name: str, backend: str, urls: tuple[str, ...], output: str) -> None:
    """Declare a broker; then `queue add NAME --broker BROKER`."""
    url, endpoints = parse_urls(urls)
    broker = queue_pb2.Broker(name=name, backend=backend, url=url, endpoints=endpoints)
    resp = cluster.call(cluster.admin.CreateBroker, admin_pb2.CreateBrokerRequest(broker=broker))
    emit(output, to_dict(resp.broker), COLUMNS, [_row(resp.broker)])


@group.command("set")
@click.argument("name")
@click.option("--url", "urls", multiple=True, required=True, help=URL_HELP + "; replaces them all")
@output_option
@pass_cluster
def set_urls(cluster: Cluster, name: str, urls: tuple[str, ...], output: str) -> None:
    """Replace a broker's URLs; the nodes running its queues reconnect."""
    url, endpoints = parse_urls(urls)
    broker = queue_pb2.Broker(name=name, url=url, endpoints=endpoints)
    resp = cluster.call(cluster.admin.UpdateBroker, admin_pb2.UpdateBrokerRequest(broker=broker))
    emit(output, to_dict(resp.broker), COLUMNS, [_row(resp.broker)])


@group.command("list")
@output_option
@pass_cluster
def list_brokers(cluster: Cluster, output: str) -> None:
    """List brokers (passwords redacted)."""
    brokers = cluster.call(cluster.admin.ListBrokers, admin_pb2.ListBrokersRequest()).brokers
    emit(output, [to_dict(b) for b in brokers], COLUMNS, [_row(b) for b in brokers])


@group.command("show")
@click.argument("name")
@output_option
@pass_cluster
def show(cluster: Cluster, name: str, output: str) -> None:
    """Show a broker and the queues on it."""
    resp = cluster.call(cluster.admin.GetBroker, admin_pb2.GetBrokerRequest(name=name))
    fields(output, {**to_dict(resp.broker), "queues": list(resp.queues)})


@group.command("rm")
@click.argument("name")
@pass_cluster
def rm(cluster: Cluster, name: str) -> None:
    """Delete a broker no queue uses."""
    cluster.call(cluster.admin.DeleteBroker, admin_pb2.DeleteBrokerRequest(name=name))
    click.echo(f"broker {name} removed")
