"""`octoctl token`: bearer tokens for people, scripts and nodes (admin only)."""

from __future__ import annotations

from typing import Any

import click
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message

from octobot.ctl.cluster import Cluster, pass_cluster
from octobot.ctl.output import emit, fields, output_option, when
from octobot.durations import parse_duration
from octobot.v1 import auth_pb2


def role_name(role: int) -> str:
    return auth_pb2.Role.Name(role).removeprefix("ROLE_").lower()


ROLES = {role_name(r): r for r in auth_pb2.Role.values() if r != auth_pb2.ROLE_UNSPECIFIED}


def _json_time(msg: Message, name: str) -> str | None:
    return getattr(msg, name).ToJsonString() if msg.HasField(name) else None


def _table_time(msg: Message, name: str) -> str:
    return when(getattr(msg, name)) if msg.HasField(name) else "never"


def _token_dict(t: auth_pb2.Token) -> dict[str, Any]:
    return {"name": t.name, "role": role_name(t.role), "created_at": _json_time(t, "created_at"),
            "expires_at": _json_time(t, "expires_at"), "last_used_at": _json_time(t, "last_used_at"),
            "node_id": t.node_id or None}


@click.group("token")
def group() -> None:
    """Create, list and revoke bearer tokens (admin)."""


@group.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(list(ROLES)),
              help="admin: everything; operator: day-to-day changes; viewer: read-only; node: join as a node")
@click.option("--expires", default=None, help="lifetime, like 12h or 30d (default: never expires)")
@output_option
@pass_cluster
def create(cluster: Cluster, name: str, role: str, expires: str | None, output: str) -> None:
    """Make a token and print its secret, alone on a line. It is shown this
    once: the coordinator keeps only a hash."""
    try:
        ttl = Duration(seconds=parse_duration(expires, "--expires")) if expires else None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    resp = cluster.call(cluster.tokens.CreateToken, auth_pb2.CreateTokenRequest(name=name, role=ROLES[role], ttl=ttl))
    if output == "json":
        fields(output, {"name": resp.token.name, "role": role_name(resp.token.role),
                        "expires_at": _json_time(resp.token, "expires_at"), "secret": resp.secret})
        return
    click.echo(resp.secret)
    expiry = _table_time(resp.token, "expires_at")
    click.echo(f"token {name} ({role}, expires {expiry}) created; the secret above is not shown again: store it now",
               err=True)


@group.command("list")
@output_option
@pass_cluster
def list_tokens(cluster: Cluster, output: str) -> None:
    """List tokens, node credentials too; never their secrets."""
    tokens = cluster.call(cluster.tokens.ListTokens, auth_pb2.ListTokensRequest()).tokens
    emit(output, [_token_dict(t) for t in tokens], ["NAME", "ROLE", "CREATED", "EXPIRES", "LAST USED", "NODE"],
         [[t.name, role_name(t.role), _table_time(t, "created_at"), _table_time(t, "expires_at"),
           _table_time(t, "last_used_at"), t.node_id] for t in tokens])


@group.command("revoke")
@click.argument("name")
@pass_cluster
def revoke(cluster: Cluster, name: str) -> None:
    """Delete a token; calls using it are refused within a second."""
    cluster.call(cluster.tokens.RevokeToken, auth_pb2.RevokeTokenRequest(name=name))
    click.echo(f"token {name} revoked")
