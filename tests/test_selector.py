"""Label selectors (kubectl syntax) and label pairs."""

from __future__ import annotations

import pytest

from octobot.selector import Selector, parse_labels

EAST = {"dc": "us-east", "gpu": "true"}
WEST = {"dc": "eu-west"}
BARE: dict[str, str] = {}


def matches(selector: str, labels: dict[str, str]) -> bool:
    return Selector.parse(selector).matches(labels)


@pytest.mark.parametrize(("selector", "east", "west", "bare"), [
    ("dc=us-east", True, False, False),
    ("dc==us-east", True, False, False),
    ("dc = us-east", True, False, False),
    ("dc!=us-east", False, True, True),  # true when the label is absent, as in Kubernetes
    ("dc in (us-east,ap-south)", True, False, False),
    ("dc in ( us-east , ap-south )", True, False, False),
    ("dc notin (us-east,ap-south)", False, True, True),
    ("gpu", True, False, False),
    ("!gpu", False, True, True),
    ("! gpu", False, True, True),
    ("dc", True, True, False),
    ("dc=", False, False, False),  # an empty value matches only an empty label value
])
def test_single_terms(selector: str, east: bool, west: bool, bare: bool) -> None:
    assert (matches(selector, EAST), matches(selector, WEST), matches(selector, BARE)) == (east, west, bare)


def test_empty_value_matches_empty_label() -> None:
    assert matches("tier=", {"tier": ""})
    assert not matches("tier=", {"tier": "x"})


@pytest.mark.parametrize(("selector", "east", "west", "bare"), [
    ("dc in (us-east,eu-west),!gpu", False, True, False),
    ("dc in (us-east,eu-west),gpu", True, False, False),
    ("dc notin (us-east,eu-west),!gpu", False, False, True),
    ("dc in (us-east,eu-west), gpu=true", True, False, False),
    ("gpu=true,dc in (us-east)", True, False, False),
    ("dc in (us-east),dc notin (eu-west)", True, False, False),
    ("dc!=us-east,dc!=eu-west", False, False, True),
    ("dc,!gpu", False, True, False),
    ("dc=us-east,dc=eu-west", False, False, False),
])
def test_combinations(selector: str, east: bool, west: bool, bare: bool) -> None:
    assert (matches(selector, EAST), matches(selector, WEST), matches(selector, BARE)) == (east, west, bare)


def test_commas_inside_parentheses_do_not_split_terms() -> None:
    sel = Selector.parse("dc in (a,b,c),x=1")
    assert len(sel.terms) == 2
    assert sel.terms[0].values == frozenset({"a", "b", "c"})
    assert sel.matches({"dc": "c", "x": "1"})
    assert not sel.matches({"dc": "d", "x": "1"})


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_empty_selector_matches_all(text: str) -> None:
    sel = Selector.parse(text)
    assert sel.terms == ()
    for labels in (EAST, WEST, BARE):
        assert sel.matches(labels)


def test_keys_with_prefixes_and_dots() -> None:
    assert matches("topology.kubernetes.io/zone=eu-1a", {"topology.kubernetes.io/zone": "eu-1a"})
    assert not matches("topology.kubernetes.io/zone=eu-1a", {"topology.kubernetes.io/zone": "eu-1b"})


@pytest.mark.parametrize(("text", "term"), [
    ("dc in ()", "dc in ()"),
    ("dc in ( , )", "dc in ( , )"),
    ("=x", "=x"),
    ("dc in (a", "dc in (a"),
    ("dc ~ x", "dc ~ x"),
    ("dc=us-east,=x", "=x"),
    ("dc=us-east,,gpu", ""),
    ("dc=a b", "dc=a b"),
    ("dc in a,b", "dc in a"),
    ("dc=us-east,", ""),
    ("dc in (a,b))", "dc in (a,b))"),
    ("!", "!"),
    ("dc==", None),  # valid: empty value
])
def test_bad_terms_name_the_term(text: str, term: str | None) -> None:
    if term is None:
        Selector.parse(text)
        return
    with pytest.raises(ValueError) as info:
        Selector.parse(text)
    assert repr(term) in str(info.value)


def test_parse_labels_good_pairs() -> None:
    assert parse_labels(["dc=us-east", "gpu=true", "empty=", "a.b/c=x_y.z-1"]) == {
        "dc": "us-east", "gpu": "true", "empty": "", "a.b/c": "x_y.z-1"}
    assert parse_labels([]) == {}
    assert parse_labels(("k=1", "k=2")) == {"k": "2"}, "a later pair wins"


@pytest.mark.parametrize("pair", ["dc", "=us-east", "dc=us east", "dc:us-east", "-dc=x", "dc=a=b", "", "dc=(x)"])
def test_parse_labels_bad_pairs(pair: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_labels(["ok=1", pair])
    assert repr(pair) in str(info.value)


def test_labels_parsed_from_flags_drive_selectors() -> None:
    labels = parse_labels(["dc=us-east", "gpu=true"])
    assert Selector.parse("dc in (us-east,eu-west),gpu").matches(labels)
    assert not Selector.parse("dc in (us-east,eu-west),!gpu").matches(labels)


@pytest.mark.parametrize("text", ["dc in (us-east eu-west)", "dc in (a;b)", "dc notin (x y)"])
def test_set_values_are_validated(text: str) -> None:
    with pytest.raises(ValueError):
        Selector.parse(text)
