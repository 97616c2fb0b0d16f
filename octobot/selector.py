"""Label selectors that choose the nodes a queue runs on (kubectl's syntax).

    >>> Selector.parse("dc in (us-east,eu-west),!gpu").matches({"dc": "us-east"})
    True

Terms are comma-separated and all must hold: ``k=v``, ``k==v``, ``k!=v``,
``k in (a,b)``, ``k notin (a,b)``, ``k`` (label present), ``!k`` (absent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = r"[A-Za-z0-9][A-Za-z0-9_.\-/]*"
_VALUE = r"[A-Za-z0-9_.\-]*"
_TERM = re.compile(
    rf"^\s*(?:(?P<not>!)\s*(?P<absent>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<op>==|!=|=)\s*(?P<value>{_VALUE})"
    rf"|\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?)\s*$"
)


@dataclass(frozen=True, slots=True)
class _Term:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        match self.op:
            case "exists":
                return value is not None
            case "!exists":
                return value is None
            case "=" | "in":
                return value in self.values
            case _:  # "!=" and "notin" hold for nodes without the label, as in Kubernetes
                return value not in self.values


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


@dataclass(frozen=True, slots=True)
class Selector:
    terms: tuple[_Term, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse a selector; ValueError names the offending term."""
        if not text.strip():
            return cls()
        terms = []
        for raw in _split_terms(text):
            m = _TERM.match(raw)
            if not m:
                raise ValueError(f"bad selector term {raw.strip()!r} in {text!r}")
            if m["absent"]:
                terms.append(_Term(m["absent"], "!exists", frozenset()))
            elif m["setop"]:
                values = frozenset(v.strip() for v in m["values"].split(","))
                if not all(re.fullmatch(_VALUE, v) and v for v in values):
                    raise ValueError(f"bad value set in selector term {raw.strip()!r}: "
                                     "use comma-separated values like (a,b)")
                terms.append(_Term(m["key"], m["setop"], values))
            elif m["op"]:
                terms.append(_Term(m["key"], "!=" if m["op"] == "!=" else "=", frozenset([m["value"]])))
            else:
                terms.append(_Term(m["key"], "exists", frozenset()))
        return cls(tuple(terms))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(t.matches(labels) for t in self.terms)


def parse_labels(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Turn ``["dc=us-east", "gpu=true"]`` into a dict; ValueError on a malformed pair."""
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(_KEY, key) or not re.fullmatch(_VALUE, value):
            raise ValueError(f"bad label {pair!r}: expected key=value")
        labels[key] = value
    return labels
