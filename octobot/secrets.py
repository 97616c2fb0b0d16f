"""Secrets in broker URLs: references, resolution and redaction.

A URL may name its secrets instead of carrying them: ``${env:NAME}`` (an
environment variable) or ``${file:/path}`` (a file's content). Only nodes
and producers resolve them, right before connecting; the coordinator stores
and validates URLs with their references in place. A literal password is
redacted (``****``) everywhere it could leave the process that needs it:
API answers, logs, error messages, the audit log.

    resolve("redis://app:${env:REDIS_PW}@cache:6379/0")   # the password, percent-encoded
    redact_url("redis://app:pw@cache:6379/0")              # "redis://app:****@cache:6379/0"
    redact_text("cannot reach amqp://u:pw@mq/: refused")   # the same, inside free text
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from octobot.v1 import queue_pb2

REDACTED = "****"
_REFERENCE = re.compile(r"\$\{(?:env:[A-Za-z_][A-Za-z0-9_]*|file:/[^}]*)\}")
_UNCLOSED = re.compile(r"\$\{[\w:]*")
# Query parameters whose values are secrets: password, pass, sasl_password, client_secret, token, ...
_SECRET_KEY = re.compile(r"pass|secret|token|pwd", re.IGNORECASE)
# A URL inside free text; it ends where a quote or a space would end it in a log line or JSON.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"<>`]+")


def has_references(url: str) -> bool:
    return _REFERENCE.search(url) is not None


def check_references(url: str) -> None:
    """ValueError naming the first ``${...}`` that is not ``${env:NAME}`` or ``${file:/path}``."""
    rest = _REFERENCE.sub("", url)
    start = rest.find("${")
    if start < 0:
        return
    end = rest.find("}", start)
    if end < 0:  # named up to where it stops looking like one: the rest may be a password
        name = _UNCLOSED.findall(rest, start)[0]
        raise ValueError(f"unclosed reference {name!r} in URL")
    raise ValueError(f"bad reference {rest[start:end + 1]!r} in URL: use ${{env:NAME}} or ${{file:/absolute/path}}")


def _mask(url: str) -> tuple[str, dict[str, str]]:
    """The URL with each reference swapped for a lowercase alphanumeric placeholder
    (``${file:/etc/x}`` holds a '/', which URL parsers would take for the path),
    and the placeholders mapped back to their references."""
    refs: dict[str, str] = {}
    nonce = uuid.uuid4().hex[:12]

    def swap(match: re.Match[str]) -> str:
        placeholder = f"octobotref{nonce}{len(refs)}x"
        refs[placeholder] = match.group(0)
        return placeholder

    return _REFERENCE.sub(swap, url), refs


def _unmask(text: str, refs: dict[str, str]) -> str:
    for placeholder, ref in refs.items():
        text = text.replace(placeholder, ref)
    return text


def normalized(url: str, normalize_url: Callable[[str], str]) -> str:
    """``normalize_url(url)`` for a URL that may hold references, without resolving
    them: the coordinator validates what only nodes can resolve."""
    check_references(url)
    masked, refs = _mask(url)
    try:
        out = normalize_url(masked)
    except ValueError as exc:
        raise ValueError(redact_text(_unmask(str(exc), refs))) from None
    lost = [ref for placeholder, ref in refs.items() if placeholder not in out]
    if lost:
        raise ValueError(f"{lost[0]} is in a part of URL {redact_url(url)!r} that this backend does not use")
    return _unmask(out, refs)


def _read_reference(ref: str) -> str:
    kind, _, name = ref[2:-1].partition(":")
    if kind == "env":
        value = os.environ.get(name)
        if value is None:
            raise ValueError(f"cannot resolve {ref}: environment variable {name} is not set")
        return value
    try:
        text = Path(name).read_text()
    except OSError as exc:
        raise ValueError(f"cannot resolve {ref}: {exc.strerror or 'cannot read the file'}") from None
    except UnicodeDecodeError:
        raise ValueError(f"cannot resolve {ref}: the file is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")


def resolve(url: str) -> str:
    """The URL with each reference replaced by its value, percent-encoded for the
    userinfo. ValueError (naming the reference, never a value) when one cannot be read."""
    check_references(url)
    return _REFERENCE.sub(lambda m: quote(_read_reference(m.group(0)), safe=""), url)


def quote_keeping_references(text: str) -> str:
    """``text`` percent-encoded for a URL's userinfo, its references left whole
    (a ``password: ${env:PW}`` key becomes a reference in the URL)."""
    pieces = re.split(f"({_REFERENCE.pattern})", text)  # text, reference, text, ...
    return "".join(piece if i % 2 else quote(piece, safe="") for i, piece in enumerate(pieces))


def _rewrite_secrets(url: str, rewrite: Callable[[str], str]) -> str:
    """The URL with ``rewrite`` applied to each literal secret: the userinfo's
    password and secret-looking query values. References are not secrets."""
    masked, refs = _mask(url)
    scheme, sep, rest = masked.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if colon and password and password not in refs:
            authority = f"{user}:{rewrite(password)}@{host}"
    path, question, query = tail.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        pairs = []
        for pair in query.split("&"):
            key, eq, value = pair.partition("=")
            if eq and value and value not in refs and _SECRET_KEY.search(key):
                value = rewrite(value)
            pairs.append(f"{key}{eq}{value}")
        tail = f"{path}?{'&'.join(pairs)}{hash_}{fragment}"
    return _unmask(f"{scheme}://{authority}{tail}", refs)


def redact_url(url: str) -> str:
    """The URL with its literal secrets as ``****``; references and the rest stay visible."""
    return _rewrite_secrets(url, lambda _: REDACTED)


def redact_text(text: str) -> str:
    """Free text (a log line, an error, JSON) with every URL in it redacted."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def redact_spec(spec: queue_pb2.QueueSpec) -> queue_pb2.QueueSpec:
    """A copy of a queue spec fit to leave the coordinator: only nodes get its secrets."""
    out = queue_pb2.QueueSpec()
    out.CopyFrom(spec)
    out.url = redact_url(spec.url)
    return out


def refuse_redacted(url: str) -> str:
    """The URL, unless a secret in it is the redacted ``****`` (copied from a
    listing): that password is gone, so the URL cannot be used."""
    found: list[str] = []
    _rewrite_secrets(url, lambda value: found.append(value) or value)
    if REDACTED in found:
        raise ValueError(f"URL {redact_url(url)!r} carries a redacted password ({REDACTED}): "
                         "give the password or a ${env:NAME} reference")
    return url


def keep_stored_secret(new_url: str, stored_url: str) -> str:
    """The URL to store when ``new_url`` replaces ``stored_url``: the stored one
    when the new one is its redacted form, so a file written from a listing
    applies without losing the secret."""
    if new_url == redact_url(stored_url):
        return stored_url
    return refuse_redacted(new_url)
