"""Local authorization lists, pure (OCPP 1.6 §3.5.3, §5.15 SendLocalList, §6.43): what a charger should hold,
the differential update from what it holds, and the chunks a SendLocalList is split into.

An entry is `id_tag -> {status, expiry_date, parent_id_tag}` (expiry as OCPP date-time text). The list is
the team's tags that are Accepted or Expired, in a stable order (by id); Blocked tags are left out, so a
charger refuses them while it cannot reach us. A differential update names changed and added tags with
their idTagInfo and removed tags without one (§6.43: an entry without idTagInfo is deleted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Entry = dict[str, str | None]
LISTED_STATUSES = ("Accepted", "Expired")
# Configuration keys read once per boot (OCPP 1.6 §9.1, the LocalAuthListManagement profile keys).
FEATURE_KEYS = ["SupportedFeatureProfiles", "LocalAuthListEnabled", "LocalAuthListMaxLength", "SendLocalListMaxLength"]
PROFILE = "LocalAuthListManagement"


@dataclass(frozen=True)
class Features:
    """What a charger reported of its local list: supported, switched on, and its two lengths."""

    supported: bool
    enabled: bool
    max_length: int | None
    chunk_length: int | None


@dataclass(frozen=True)
class Chunk:
    """One SendLocalList: its update type, its version, and its entries as the command takes them."""

    update_type: str
    version: int
    entries: list[dict[str, Any]]


def features_of(keys: Iterable[Mapping[str, Any]]) -> Features:
    """Read GetConfiguration's keys: the feature profile (or a LocalAuthListEnabled key) says supported."""
    values = {str(key.get("key")): key.get("value") for key in keys}
    profiles = {p.strip() for p in str(values.get("SupportedFeatureProfiles") or "").split(",")}
    flag = values.get("LocalAuthListEnabled")
    supported = PROFILE in profiles or flag is not None
    enabled = supported and str(flag if flag is not None else "true").strip().lower() == "true"
    return Features(
        supported, enabled, _length(values.get("LocalAuthListMaxLength")), _length(values.get("SendLocalListMaxLength"))
    )


def _length(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None


def wanted_list(tags: Iterable[Mapping[Any, Any]], max_length: int | None) -> tuple[dict[str, Entry], bool]:
    """The entries a charger should hold (tags ordered by id), cut to `max_length`; True when cut."""
    listed = [tag for tag in tags if tag["status"] in LISTED_STATUSES]
    kept = listed if max_length is None else listed[:max_length]
    return {str(tag["id_tag"]): entry_of(tag) for tag in kept}, len(kept) < len(listed)


def entry_of(tag: Mapping[Any, Any]) -> Entry:
    """A tag's idTagInfo as stored in the snapshot."""
    expiry = tag.get("expiry_date")
    return {
        "status": str(tag["status"]),
        "expiry_date": None if expiry is None else expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parent_id_tag": tag.get("parent_id_tag"),
    }


def wire_entry(id_tag: str, entry: Entry | None) -> dict[str, Any]:
    """An entry of the `send_local_list` command; without `id_tag_info` it removes the tag (§6.43)."""
    if entry is None:
        return {"id_tag": id_tag}
    info = {key: value for key, value in entry.items() if value is not None}
    return {"id_tag": id_tag, "id_tag_info": info}


def differences(held: Mapping[str, Entry], wanted: Mapping[str, Entry]) -> list[dict[str, Any]]:
    """The differential entries from `held` to `wanted`: removals first (the list never outgrows its limit)."""
    removed = [wire_entry(tag, None) for tag in held if tag not in wanted]
    changed = [wire_entry(tag, entry) for tag, entry in wanted.items() if held.get(tag) != entry]
    return removed + changed


def chunked(entries: list[dict[str, Any]], size: int | None) -> list[list[dict[str, Any]]]:
    """Entries in slices of at most `size` (one slice when there is no limit; one empty slice for none)."""
    if not entries:
        return [[]]
    if size is None:
        return [entries]
    return [entries[start : start + size] for start in range(0, len(entries), size)]


def full_update(wanted: Mapping[str, Entry], version: int, size: int | None) -> list[Chunk]:
    """A Full update split by SendLocalListMaxLength: one Full chunk, then Differential ones, versions rising."""
    slices = chunked([wire_entry(tag, entry) for tag, entry in wanted.items()], size)
    return [
        Chunk("Full" if number == 0 else "Differential", version + 1 + number, part)
        for number, part in enumerate(slices)
    ]


def differential_update(
    held: Mapping[str, Entry], wanted: Mapping[str, Entry], version: int, size: int | None
) -> list[Chunk]:
    """The Differential chunks from `held` to `wanted` (none when they agree), versions rising."""
    entries = differences(held, wanted)
    if not entries:
        return []
    return [Chunk("Differential", version + 1 + n, part) for n, part in enumerate(chunked(entries, size))]


def apply_chunk(held: Mapping[str, Entry], chunk: Chunk) -> dict[str, Entry]:
    """What the charger holds once it accepted `chunk`."""
    result: dict[str, Entry] = {} if chunk.update_type == "Full" else dict(held)
    for item in chunk.entries:
        info = item.get("id_tag_info")
        if info is None:
            result.pop(item["id_tag"], None)
        else:
            result[item["id_tag"]] = {key: info.get(key) for key in ("status", "expiry_date", "parent_id_tag")}
    return result
