"""Durations as people type them ('10s', '15m', '24h', '30d'): stats windows,
retention, token lifetimes. Shared by the coordinator and octoctl, which must
not import the coordinator's modules to parse one."""

from __future__ import annotations

import re

# ASCII digits, and few enough that the number stays finite.
_DURATION = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,9})?)(s|m|h|d)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str = "window") -> int:
    """'10s', '1m', '15m', '24h', '7d' -> whole seconds; ValueError otherwise."""
    m = _DURATION.fullmatch(text)
    if not m:
        raise ValueError(f"bad {what} {text!r}: use a number and s, m, h or d, like 10s, 15m or 24h")
    seconds = float(m[1]) * _UNITS[m[2]]
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"bad {what} {text!r}: whole seconds, at least 1s")
    return int(seconds)
