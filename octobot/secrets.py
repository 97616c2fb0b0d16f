"""Secrets in broker URLs: references, resolution and redaction.

A URL may name its secrets instead of carrying them: ``${env:NAME}`` (an
environment variable) or ``${file:/path}`` (a file's content), in its user or
password only. Only nodes and producers resolve them, right before connecting,
and a node only from the files and variables its operator allowed
(``SecretSources``): whoever may change a queue's URL must not read the node's
other files. The coordinator stores and validates URLs with their references in
place. A literal password is redacted (``****``) everywhere it could leave the
process that needs it: API answers, logs, error messages, the audit log; and
every secret a process used (resolved or literal) is redacted from its log lines
and errors wherever it appears, URL or not.

    resolve("redis://app:${env:REDIS_PW}@cache:6379/0")   # the password, percent-encoded
    redact_url("redis://app:pw@cache:6379/0")              # "redis://app:****@cache:6379/0"
    redact_text("cannot reach amqp://u:pw@mq/: refused")   # the same, inside free text
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote

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
    """ValueError naming the first ``${...}`` that is not ``${env:NAME}`` or
    ``${file:/path}``, or that stands outside the URL's user and password (in a
    host, port or path a resolved value would come back in errors, or go out as
    a DNS query)."""
    rest = _REFERENCE.sub("", url)
    start = rest.find("${")
    if start >= 0:
        end = rest.find("}", start)
        if end < 0:  # named up to where it stops looking like one: the rest may be a password
            name = _UNCLOSED.findall(rest, start)[0]
            raise ValueError(f"unclosed reference {name!r} in URL")
        raise ValueError(f"bad reference {rest[start:end + 1]!r} in URL: use ${{env:NAME}} or ${{file:/absolute/path}}")
    masked, refs = _mask(url)
    userinfo = _split(masked)[1]
    outside = [ref for placeholder, ref in refs.items() if placeholder not in (userinfo or "")]
    if outside:
        raise ValueError(f"{outside[0]} may stand only in the URL's user or password")


def _split(url: str) -> tuple[str, str | None, str]:
    """``scheme://userinfo@rest`` -> (scheme, userinfo or None, rest). The
    userinfo ends at the URL's last '@': a password with an unencoded '/', '?'
    or '#' is still taken whole (redacted whole) rather than read as a path."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None, ""
    at = rest.rfind("@")
    if at < 0:
        return scheme, None, rest
    return scheme, rest[:at], rest[at + 1:]


# Characters a URL's user or password may hold unencoded (RFC 3986 unreserved,
# sub-delims, ':' and '%'-escapes); the others make parsers disagree on where it ends.
_USERINFO = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:%]*")


def check_userinfo(url: str) -> None:
    """ValueError (quoting nothing of it) when a URL's user or password holds
    characters that must be percent-encoded."""
    masked, _ = _mask(url)
    userinfo = _split(masked)[1]
    if userinfo is not None and not _USERINFO.fullmatch(userinfo):
        raise ValueError("the URL's user or password holds characters such as '/', '?', '#', '@' or spaces: "
                         "percent-encode them (%2F, %3F, %23, %40, %20)")


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
    check_userinfo(url)
    masked, refs = _mask(url)
    try:
        out = normalize_url(masked)
    except ValueError as exc:
        raise ValueError(redact_text(_unmask(str(exc), refs))) from None
    lost = [ref for placeholder, ref in refs.items() if placeholder not in out]
    if lost:
        raise ValueError(f"{lost[0]} is in a part of URL {redact_url(url)!r} that this backend does not use")
    return _unmask(out, refs)


@dataclass(frozen=True, slots=True)
class SecretSources:
    """What references may read: files under ``dirs``, environment variables
    named in ``env``; ``everything`` for a producer, whose URLs are its own."""

    dirs: tuple[str, ...] = ()
    env: frozenset[str] = frozenset()
    everything: bool = False

    def check(self, kind: str, name: str) -> None:
        if self.everything:
            return
        if kind == "env":
            if name not in self.env:
                raise ValueError(f"cannot resolve ${{env:{name}}}: this node does not allow it (--secret-env {name})")
            return
        real = os.path.realpath(name)  # no way out through '..' or a link
        if not any(os.path.commonpath([real, os.path.realpath(d)]) == os.path.realpath(d) for d in self.dirs):
            raise ValueError(f"cannot resolve ${{file:{name}}}: it is not in a directory this node allows "
                             f"(--secrets-dir)")


EVERYTHING = SecretSources(everything=True)


def _read_reference(ref: str, sources: SecretSources) -> str:
    kind, _, name = ref[2:-1].partition(":")
    sources.check(kind, name)
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


def resolve(url: str, sources: SecretSources = EVERYTHING) -> str:
    """The URL with each reference replaced by its value, percent-encoded for the
    userinfo. ValueError (naming the reference, never a value) when one cannot be
    read or ``sources`` do not allow it. Every secret of the URL is remembered, to
    be redacted from this process's logs and errors."""
    check_references(url)

    def value(match: re.Match[str]) -> str:
        secret = _read_reference(match.group(0), sources)
        remember([secret])
        return quote(secret, safe="")

    resolved = _REFERENCE.sub(value, url)
    remember_url(resolved)
    return resolved


# Secrets this process has used, redacted from every text it logs or sends
# (broker errors quote them in their own words). Shorter ones would mangle
# ordinary words.
MIN_REMEMBERED = 4
_remembered: set[str] = set()
_remembered_pattern: re.Pattern[str] | None = None
_remembered_lock = threading.Lock()


def remember(values: Iterable[str]) -> None:
    global _remembered_pattern
    with _remembered_lock:
        new = {form for v in values if len(v) >= MIN_REMEMBERED for form in (v, quote(v, safe=""))} - _remembered
        if new:
            _remembered.update(new)
            # Longest first, so a secret's encoded form is not cut by the plain one.
            alternatives = sorted(_remembered, key=len, reverse=True)
            _remembered_pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def remember_url(url: str) -> None:
    """Remember a URL's literal secrets (its password, secret query values), as they are written and decoded."""
    found: list[str] = []
    _rewrite_secrets(url, lambda value: found.append(value) or value)
    remember([*found, *(unquote(v) for v in found)])


def quote_keeping_references(text: str) -> str:
    """``text`` percent-encoded for a URL's userinfo, its references left whole
    (a ``password: ${env:PW}`` key becomes a reference in the URL)."""
    pieces = re.split(f"({_REFERENCE.pattern})", text)  # text, reference, text, ...
    return "".join(piece if i % 2 else quote(piece, safe="") for i, piece in enumerate(pieces))


def _rewrite_secrets(url: str, rewrite: Callable[[str], str]) -> str:
    """The URL with ``rewrite`` applied to each literal secret: the userinfo's
    password and secret-looking query values. References are not secrets."""
    masked, refs = _mask(url)
    scheme, userinfo, rest = _split(masked)
    if scheme == masked:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        if colon and password and password not in refs:
            userinfo = f"{user}:{rewrite(password)}"
        authority = f"{userinfo}@{authority}"
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
    """Free text (a log line, an error, JSON) with every URL in it redacted, and
    every secret this process has used."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    pattern = _remembered_pattern
    return text if pattern is None else pattern.sub(REDACTED, text)


Located = TypeVar("Located", queue_pb2.QueueSpec, queue_pb2.Broker)


def redact_spec(spec: Located) -> Located:
    """A copy of a queue spec or a named broker fit to leave the coordinator: only nodes get its secrets."""
    out = type(spec)()
    out.CopyFrom(spec)
    out.url = redact_url(spec.url)
    for endpoint in out.endpoints:
        endpoint.url = redact_url(endpoint.url)
    return out


def refuse_redacted(url: str) -> str:
    """The URL, unless a secret in it is the redacted ``****`` (copied from a
    listing): that password is gone, so the URL cannot be used."""
    found: list[str] = []
    _rewrite_secrets(url, lambda value: found.append(value) or value)
    if REDACTED in (unquote(v) for v in found):
        raise ValueError(f"URL {redact_url(url)!r} carries a redacted password ({REDACTED}): "
                         "give the password or a ${env:NAME} reference")
    return url


def keep_stored_secret(new_url: str, stored_url: str) -> str:
    """The URL to store when ``new_url`` replaces ``stored_url``: the stored one
    when the new one is its redacted form, so a file written from a listing
    applies without losing the secret."""
    if unquote(new_url) == unquote(redact_url(stored_url)):
        return stored_url
    return refuse_redacted(new_url)
