"""What the benches' --tls runs need: certificates, a token, and HTTPS scrapes.

The coordinator then serves TLS on --listen (callers need a token), mutual TLS
for nodes on --node-listen (a node's id is its certificate's CN) and HTTPS on
--metrics-listen (a viewer token or better).
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import urllib.request
from dataclasses import dataclass

from octobot import rpc
from octobot.tools import pki


@dataclass(frozen=True, slots=True)
class Secure:
    """A PKI written to a directory and the bench's admin token for one store."""

    files: pki.Pki
    token: str

    def auth(self) -> rpc.ClientAuth:
        """octoctl's and the bench's own calls: TLS against the CA, with the token."""
        return rpc.ClientAuth(ca=str(self.files.ca), token=self.token)

    def ctl_env(self) -> dict[str, str]:
        return {"OCTOBOT_CA": str(self.files.ca), "OCTOBOT_TOKEN": self.token}

    def node_args(self, name: str) -> tuple[str, ...]:
        """A real node's flags for mutual TLS as node ``name``."""
        return ("--ca", str(self.files.ca), "--client-cert", str(self.files.cert(f"node-{name}")),
                "--client-key", str(self.files.key(f"node-{name}")))


def admin_token(db: str) -> str:
    """Bootstrap an admin token straight into the store (before the coordinator starts)."""
    return subprocess.run([sys.executable, "-m", "octobot.coordinator.main", "token", "create", "bench",
                           "--role", "admin", "--db", db], capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()


def fetch(url: str, secure: Secure | None, timeout: float = 60) -> bytes:
    """GET ``url``; over HTTPS with the CA and the token when ``secure``."""
    if secure is None:
        return urllib.request.urlopen(url, timeout=timeout).read()  # type: ignore[no-any-return]
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {secure.token}"})
    context = ssl.create_default_context(cafile=str(secure.files.ca))
    return urllib.request.urlopen(request, timeout=timeout, context=context).read()  # type: ignore[no-any-return]

