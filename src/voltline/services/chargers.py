"""Chargers of a team and of its sites: create, read, update, attach with a pincode, detach."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.bus.events import publish_charger_detached, publish_settings_changed
from voltline.domain.credentials import hash_ocpp_password, new_ocpp_password, new_pincode
from voltline.domain.ids import ChargerId, Ref, SiteId, TeamId
from voltline.errors import ValidationError
from voltline.services import audit
from voltline.services.runtime import Runtime
from voltline.store import chargers, sites

IDENTITY_TAKEN = "The identity has already been taken."
PINCODE_INVALID = "The pincode is invalid."
ALREADY_ATTACHED = "The charger is already attached to a site."
PASSWORD_PROHIBITED = "The password field is prohibited when generate password is true."
NEW_CHARGER_SECURITY_PROFILE = 1  # no password yet: it cannot connect until it gets one, or profile 0

# Counts one pincode try against a charger's budget, before the pincode is compared; raises RateLimitedError.
CountAttempt = Callable[[ChargerId], None]


async def get_site_id(rt: Runtime, team_id: TeamId, site_ref: Ref) -> SiteId:
    """The id of the team's site `site_ref` names; NotFoundError for any other."""
    async with rt.db.read() as conn:
        return await sites.get_site_id(conn, team_id, site_ref)


async def list_site_chargers(
    rt: Runtime, team_id: TeamId, site_ref: Ref, *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the chargers on the team's site, oldest first."""
    async with rt.db.read() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        return await chargers.list_site_chargers(conn, site_id, offset=offset, limit=limit)


async def list_team_chargers(rt: Runtime, team_id: TeamId) -> list[RowMapping]:
    """Every charger the team owns."""
    async with rt.db.read() as conn:
        return await chargers.list_team_chargers(conn, team_id)


async def get_charger(rt: Runtime, team_id: TeamId, charger_ref: Ref) -> RowMapping:
    """One charger of the team; NotFoundError for any other."""
    async with rt.db.read() as conn:
        return await chargers.get_charger(conn, team_id, charger_ref)


async def get_charger_with_connectors(
    rt: Runtime, team_id: TeamId, charger_ref: Ref
) -> tuple[RowMapping, list[RowMapping]]:
    """One charger of the team and its connectors, read together."""
    async with rt.db.read() as conn:
        row = await chargers.get_charger(conn, team_id, charger_ref)
        return row, await chargers.list_charger_connectors(conn, ChargerId(row["id"]))


async def _create(conn: AsyncConnection, identity: str, placement: dict[str, Any]) -> RowMapping:
    try:
        values = {**placement, "security_profile": NEW_CHARGER_SECURITY_PROFILE}
        return await chargers.create_charger(conn, identity, new_pincode(), values)
    except chargers.IdentityTakenError:
        raise ValidationError.single("identity", IDENTITY_TAKEN) from None


async def create_team_charger(rt: Runtime, team_id: TeamId, identity: str) -> RowMapping:
    """A new charger owned by the team, on no site (identity unique across the system)."""
    async with rt.db.write() as conn:
        row = await _create(conn, identity, {"team_id": team_id})
        await audit.record(
            rt.clock, conn, team_id, "charger.created", ("charger", row["uuid"]), detail={"identity": identity}
        )
    return row


async def create_site_charger(rt: Runtime, team_id: TeamId, site_ref: Ref, identity: str) -> RowMapping:
    """A new charger owned by the team, on the site, in the site's root group; tells the control loop."""
    async with rt.db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        group_id = await sites.get_root_group_id(conn, site_id)
        row = await _create(conn, identity, {"team_id": team_id, "site_id": site_id, "group_id": group_id})
        detail = {"identity": identity, "site_id": site_id}
        await audit.record(rt.clock, conn, team_id, "charger.created", ("charger", row["uuid"]), detail=detail)
    await publish_settings_changed(rt.bus, site_id)
    return row


async def update_charger(rt: Runtime, team_id: TeamId, charger_ref: Ref, values: dict[str, Any]) -> RowMapping:
    """Change fields of one charger of the team (the reference, the OCPP security columns)."""
    async with rt.db.write() as conn:
        charger = await chargers.get_charger(conn, team_id, charger_ref)
        row = await chargers.update_charger(conn, ChargerId(charger["id"]), values)
        detail = audit.changed_fields(values)
        await audit.record(rt.clock, conn, team_id, "charger.updated", ("charger", charger["uuid"]), detail=detail)
    return row


def security_changes(clean: dict[str, Any], secret_key: str) -> tuple[dict[str, Any], str | None]:
    """The column changes a checked OCPP-settings body asks for, and the generated password to show once (if any)."""
    if clean.get("generate_password") and "password" in clean:
        raise ValidationError.single("password", PASSWORD_PROHIBITED)
    values: dict[str, Any] = {}
    if "lenient" in clean:
        values["lenient"] = clean["lenient"]
    if "security_profile" in clean:
        values["security_profile"] = clean["security_profile"]
    generated = new_ocpp_password() if clean.get("generate_password") else None
    password = generated or clean.get("password")
    if password is not None:
        values["password_hash"] = hash_ocpp_password(secret_key, password)
    return values, generated


async def update_charger_ocpp(
    rt: Runtime, team_id: TeamId, charger_ref: Ref, clean: dict[str, Any]
) -> tuple[RowMapping, str | None]:
    """Set a charger's lenient flag, security profile and password; the charger and any generated password."""
    async with rt.db.write() as conn:
        charger = await chargers.get_charger(conn, team_id, charger_ref)
        values, generated = security_changes(clean, rt.secret_key)
        row = await chargers.update_charger(conn, ChargerId(charger["id"]), values)
        detail = audit.changed_fields(values)
        await audit.record(
            rt.clock, conn, team_id, "charger.ocpp_settings_changed", ("charger", charger["uuid"]), detail=detail
        )
    return row, generated


async def detach_charger(rt: Runtime, team_id: TeamId, site_ref: Ref, charger_ref: Ref) -> None:
    """Take a charger off the team's site (it stays with the team, keeps its pincode); tells the control loop."""
    async with rt.db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        charger = await chargers.get_site_charger(conn, site_id, charger_ref)
        await chargers.detach_charger(conn, ChargerId(charger["id"]))
        detail = {"site_id": site_id}
        await audit.record(rt.clock, conn, team_id, "charger.detached", ("charger", charger["uuid"]), detail=detail)
    await publish_charger_detached(rt.bus, site_id, int(charger["id"]))


def pincode_matches(given: object, stored: str) -> bool:
    """True when the given pincode (text or digits) equals the stored one, case-insensitively, in constant time."""
    if isinstance(given, bool) or not isinstance(given, str | int):
        return False
    return hmac.compare_digest(str(given).upper().encode(), stored.upper().encode())


async def _verified_charger(
    conn: AsyncConnection, identity: str | None, serial_number: str | None, pincode: object, count: CountAttempt
) -> RowMapping:
    """The charger named by identity or serial number whose pincode matches; every try counts against its limit."""
    candidates = await chargers.find_attach_candidates(conn, identity, serial_number)
    for candidate in candidates:
        count(ChargerId(candidate["id"]))
    for candidate in candidates:
        if pincode_matches(pincode, candidate["pincode"]):
            return candidate
    raise ValidationError.single("pincode", PINCODE_INVALID)


async def attach_charger(
    rt: Runtime,
    team_id: TeamId,
    site_ref: Ref,
    *,
    identity: str | None,
    serial_number: str | None,
    pincode: object,
    count_attempt: CountAttempt,
) -> RowMapping:
    """Move a charger, proven by its pincode, to the team's site and its root group; tells the control loop."""
    async with rt.db.write() as conn:
        site_id = await sites.get_site_id(conn, team_id, site_ref)
        charger = await _verified_charger(conn, identity, serial_number, pincode, count_attempt)
        group_id = await sites.get_root_group_id(conn, site_id)
        row = await chargers.attach_charger(
            conn, ChargerId(charger["id"]), team_id, site_id, group_id, now=rt.clock.now()
        )
        if row is not None:
            detail = {"site_id": site_id}
            await audit.record(rt.clock, conn, team_id, "charger.attached", ("charger", row["uuid"]), detail=detail)
    if row is None:
        raise ValidationError.single("identity", ALREADY_ATTACHED)
    await publish_settings_changed(rt.bus, site_id, charger_id=int(row["id"]))
    return row
