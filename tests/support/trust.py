"""Helpers for tests of a secured coordinator: tokens, TLS channels, statuses."""

from __future__ import annotations

import subprocess
import sys

import grpc

from support.cluster import Coordinator
from octobot import rpc
from octobot.tools import pki as pki_tool


def bootstrap(c: Coordinator, name: str, role: str, *extra: str) -> str:
    """A token made straight in the coordinator's store (octobot-coordinator token create)."""
    out = subprocess.run([sys.executable, "-m", "octobot.coordinator.main", "token", "create", name, "--role", role,
                          "--db", c.db, *extra], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def client(c: Coordinator, pki: pki_tool.Pki, token: str | None = None) -> grpc.Channel:
    return rpc.make_channel(c.target, rpc.ClientAuth(ca=str(pki.ca), token=token))


def code_of(fn: object) -> grpc.StatusCode:
    """The status a call ends with."""
    try:
        fn()  # type: ignore[operator]
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def ctl_env(pki: pki_tool.Pki, token: str) -> dict[str, str]:
    return {"OCTOBOT_CA": str(pki.ca), "OCTOBOT_TOKEN": token}
