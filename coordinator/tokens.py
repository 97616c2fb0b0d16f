"""Bearer tokens: their format, hashing and checking, with no I/O.

A token reads ``obt_<id>_<secret>``: ``id`` (16 hex digits) finds the stored
row, ``secret`` (256 random bits) is checked against its SHA-256 in constant
time. A slow hash buys nothing for a random 256-bit secret, and a fast one
keeps every call cheap. The prefix lets secret scanners recognise leaked tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from octobot.v1 import auth_pb2

PREFIX = "obt"
_TOKEN = re.compile(rf"^{PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")
NAME = re.compile(r"^[A-Za-z0-9@][A-Za-z0-9_.@-]{0,63}$")
# Tokens the store keeps at most, node credentials included: joining nodes
# cannot fill it without bound.
MAX_TOKENS = 100_000
# The longest lifetime a token may be given.
MAX_TTL = 10 * 365 * 86400
# Node credentials are named after their node: "node:<node id>".
NODE_PREFIX = "node:"
# Roles as the store and the audit log write them.
ROLE_NAMES = {role: auth_pb2.Role.Name(role).removeprefix("ROLE_").lower()
              for role in auth_pb2.Role.values() if role != auth_pb2.ROLE_UNSPECIFIED}
ROLES_BY_NAME = {name: role for role, name in ROLE_NAMES.items()}


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token: everything but its secret."""

    id: str
    name: str
    role: int  # auth_pb2.Role
    secret_sha256: str
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    # Set for a node credential: the only node id it may connect as.
    node_id: str | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_proto(self) -> auth_pb2.Token:
        token = auth_pb2.Token(name=self.name, role=self.role, node_id=self.node_id or "")  # type: ignore[arg-type]
        token.created_at.FromNanoseconds(int(self.created_at * 1e9))
        if self.expires_at is not None:
            token.expires_at.FromNanoseconds(int(self.expires_at * 1e9))
        if self.last_used_at is not None:
            token.last_used_at.FromNanoseconds(int(self.last_used_at * 1e9))
        return token


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token(name: str, role: int, now: float, ttl: float | None = None,
              node_id: str | None = None) -> tuple[TokenRecord, str]:
    """A fresh token's record and the string to hand out (once)."""
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    record = TokenRecord(id=token_id, name=name, role=role, secret_sha256=digest(secret), created_at=now,
                         expires_at=now + ttl if ttl else None, node_id=node_id)
    return record, f"{PREFIX}_{token_id}_{secret}"


def split(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token string, else None."""
    match = _TOKEN.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def matches(record: TokenRecord, secret: str) -> bool:
    return hmac.compare_digest(record.secret_sha256, digest(secret))


def check_ttl(seconds: float) -> None:
    """A token's lifetime: 0 (it never expires) up to MAX_TTL."""
    if not 0 <= seconds <= MAX_TTL:  # NaN fails too
        raise ValueError(f"a token's lifetime must be between 0 (no expiry) and {MAX_TTL // 86400} days")


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise ValueError(f"token name {name!r} is invalid: use letters, digits, '_', '.', '-', '@' (max 64)")
