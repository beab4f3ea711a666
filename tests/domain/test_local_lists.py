"""The pure local-list rules (OCPP 1.6 §3.5.3, §5.15, §6.43): what a charger holds, diffs and chunks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from voltline.domain import local_lists as lists


def tag(id_tag: str, status: str = "Accepted", **extra: Any) -> dict[str, Any]:
    return {"id_tag": id_tag, "status": status, "expiry_date": None, "parent_id_tag": None, **extra}


def test_the_list_leaves_blocked_tags_out_and_is_cut_to_the_chargers_length() -> None:
    """Blocked tags are refused offline (left out); Expired stay; the first `max_length` by id."""
    tags = [tag("A"), tag("B", "Blocked"), tag("C", "Expired", expiry_date=datetime(2030, 1, 2, 3, 4, 5)), tag("D")]
    wanted, cut = lists.wanted_list(tags, None)
    assert list(wanted) == ["A", "C", "D"] and not cut
    assert wanted["C"] == {"status": "Expired", "expiry_date": "2030-01-02T03:04:05Z", "parent_id_tag": None}
    wanted, cut = lists.wanted_list(tags, 2)
    assert list(wanted) == ["A", "C"] and cut


def test_a_differential_update_removes_first_then_adds_and_changes() -> None:
    """§6.43: an entry without idTagInfo removes the tag; removals first keep the list within its limit."""
    held = {"A": lists.entry_of(tag("A")), "B": lists.entry_of(tag("B"))}
    wanted = {"B": lists.entry_of(tag("B", "Expired")), "C": lists.entry_of(tag("C"))}
    assert lists.differences(held, wanted) == [
        {"id_tag": "A"},
        {"id_tag": "B", "id_tag_info": {"status": "Expired"}},
        {"id_tag": "C", "id_tag_info": {"status": "Accepted"}},
    ]
    assert lists.differential_update(held, held, 4, None) == []


def test_a_full_update_is_one_full_chunk_then_differential_ones_with_rising_versions() -> None:
    wanted = {name: lists.entry_of(tag(name)) for name in "ABCDE"}
    chunks = lists.full_update(wanted, 7, 2)
    assert [(c.update_type, c.version, len(c.entries)) for c in chunks] == [
        ("Full", 8, 2),
        ("Differential", 9, 2),
        ("Differential", 10, 1),
    ]
    held: dict[str, lists.Entry] = {"Z": lists.entry_of(tag("Z"))}
    for chunk in chunks:
        held = lists.apply_chunk(held, chunk)
    assert held == wanted
    assert [(c.update_type, c.entries) for c in lists.full_update({}, 0, 2)] == [("Full", [])]


def test_features_come_from_the_profile_or_the_enabled_key() -> None:
    """§9.1 LocalAuthListManagement keys: the profile (or the LocalAuthListEnabled key) says supported."""

    def keys(**values: str) -> list[dict[str, str]]:
        return [{"key": key, "value": value} for key, value in values.items()]

    on = lists.features_of(
        keys(
            SupportedFeatureProfiles="Core,LocalAuthListManagement",
            LocalAuthListEnabled="true",
            LocalAuthListMaxLength="50",
            SendLocalListMaxLength="10",
        )
    )
    assert on == lists.Features(True, True, 50, 10)
    assert lists.features_of(
        keys(SupportedFeatureProfiles="Core,LocalAuthListManagement", LocalAuthListEnabled="false")
    ) == lists.Features(True, False, None, None)
    assert lists.features_of(keys(SupportedFeatureProfiles="Core,SmartCharging")) == lists.Features(
        False, False, None, None
    )
    assert lists.features_of(keys(LocalAuthListEnabled="TRUE", LocalAuthListMaxLength="x")).enabled
