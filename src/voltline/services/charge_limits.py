"""Per-connector charge-limit caps (DESIGN "v3 API": `actions/charge-limit`, `clear-charge-limit`,
`charging-profile`, `clear-charging-profile`).

A cap is stored with the connector until cleared (store/charge_limits.py). Who enforces it
(smart/charge_limits.py `controller_manages`):

* the smart-charging controller, for a connector of a site it balances or gates: it allocates
  min(allocation, cap) with reason `charge_limit` (smart/scheduler.py), so Σ limits ≤ C holds;
  setting or clearing a cap wakes the site's run (a `settings` event);
* otherwise this module: the cap is installed as a TxDefaultProfile of its own (id 4000 + n) at
  the requested stack level (default 1) through the commands service, re-installed after the
  charger's reboot or reconnect (R-89, `ChargeLimits` below), and cleared with a
  ClearChargingProfile of that id.

A raw charging profile is never installed: `cap_from_charging_profile` turns it into the same cap
(its first period's limit; W with the connector's phases at 230 V, R-16), so the controller's
profiles are the only ones beside it and Σ ≤ C holds.

Errors: ValidationError (422) for a bad `limit` (0 < limit < 6 A, R-40; negative; not a number),
`stack_level`, `number_phases` or a `connector_id` the charger does not have. For a connector we
install the profile on, the charger's errors come through after the cap is stored:
ChargerOfflineError (409; also not booted), ChargerTimeoutError (504), CommandFailedError (502) or,
for a CALLERROR NotSupported / NotImplemented, a ConflictError (409, `charger_commands.as_refusal`);
the stored cap is then installed (or a cleared one removed) at the charger's next boot or reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import RowMapping

from voltline.bus import Subscription
from voltline.bus.events import SMART_EVENTS, decode_event, publish_settings_changed
from voltline.domain.ids import TeamId
from voltline.errors import (
    ChargerNotBootedError,
    ChargerOfflineError,
    ChargerTimeoutError,
    CommandFailedError,
    ValidationError,
    VoltlineError,
)
from voltline.services import audit, charger_commands
from voltline.services.commands import Commands
from voltline.services.runtime import Runtime
from voltline.smart import charge_limits as caps
from voltline.smart.allocation import format_limit
from voltline.store import charge_limits as store
from voltline.tasks import cancel_and_wait

log = logging.getLogger("voltline.charge_limits")

CONNECTOR_INVALID = "The selected connector id is invalid."
ACCEPTED = "Accepted"
PENDING = "pending"


async def set_charge_limit(
    rt: Runtime,
    team_id: TeamId,
    charger_row: Mapping[str, Any],
    connector_id: int,
    limit: Any,
    *,
    stack_level: int | None = None,
    number_phases: int | None = None,
) -> dict[str, Any]:
    """Cap a connector (`connector_id` 0: every connector of the charger) at `limit` A; 0 pauses.

    Returns {"status", "managed", "connectors": [{"connector_id", "limit"}]}: `status` is the
    charger's answer to the TxDefaultProfile (the first that is not Accepted, if any) or
    "Accepted" when the controller enforces the cap. Errors: module docstring.
    """
    tenths = caps.cap_tenths(limit)
    level = caps.stack_level_of(stack_level)
    phases = caps.phases_of(number_phases)
    return await _apply(
        rt, team_id, charger_row, connector_id, limit=tenths, level=level, phases=phases, action="charger.charge_limit"
    )


async def cap_from_charging_profile(
    rt: Runtime, team_id: TeamId, charger_row: Mapping[str, Any], connector_id: int, charging_profile: Mapping[str, Any]
) -> dict[str, Any]:
    """`actions/charging-profile` as a cap: the first period's limit (W: the connector's phases, 230 V, R-16).

    The profile's `stack_level` is honoured (default 1); nothing else of it is installed. With
    `connector_id` 0 and connectors of different phases, each connector gets its own A cap.
    """
    if not isinstance(charging_profile, Mapping):
        raise ValidationError.single("charging_profile", "The charging profile must be an object.")
    level = caps.stack_level_of(charging_profile.get("stack_level"))
    async with rt.db.read() as conn:
        rows = await _connectors(conn, charger_row, connector_id)
    limits = {int(row["number"]): caps.profile_limit(charging_profile, _phases(row)) for row in rows}
    return await _apply(
        rt,
        team_id,
        charger_row,
        connector_id,
        limit=limits,
        level=level,
        phases=None,
        action="charger.charging_profile",
    )


async def clear_charge_limit(
    rt: Runtime, team_id: TeamId, charger_row: Mapping[str, Any], connector_id: int
) -> dict[str, Any]:
    """Lift the cap of a connector (0: of every connector); also `clear-charging-profile`.

    Returns {"status", "managed", "connectors": [numbers cleared]}. A TxDefaultProfile we
    installed is removed with ClearChargingProfile of its id (`status` is the charger's answer);
    errors as for `set_charge_limit`, the cap being lifted in any case.
    """
    charger_id = int(charger_row["id"])
    async with rt.db.write() as conn:
        rows = await _connectors(conn, charger_row, connector_id)
        site = await store.get_site_control(conn, charger_row.get("site_id"))
        existing = {int(row["connector_id"]): row for row in await store.list_charger_limits(conn, charger_id)}
        removing: list[int] = []
        for row in rows:
            found = existing.get(int(row["id"]))
            if found is None:
                continue
            if found["profile_status"] is None:
                await store.delete_limit(conn, int(row["id"]))
            else:  # kept as cleared until the charger confirms the profile is gone
                await store.save_limit(conn, {**_values(found), "limit_tenths": None, "updated_at": rt.clock.now()})
                removing.append(int(row["number"]))
        detail = {"connector_id": connector_id}
        await audit.record(rt.clock, conn, team_id, "charger.clear_charge_limit", ("charger", charger_row["uuid"]),
                           detail=detail)  # fmt: skip
    managed = caps.controller_manages(rt.settings.smart_control, site)
    await _wake(rt, charger_row, managed)
    status = ACCEPTED
    for number in removing:
        answer = await _send_clear(rt, team_id, charger_row, number)
        status = answer if status == ACCEPTED else status
    return {"status": status, "managed": managed, "connectors": [int(row["number"]) for row in rows]}


async def caps_in_amps(rt: Runtime, charger_id: int) -> dict[int, float]:
    """The standing caps of the charger's connectors in A, by connector row id (cleared ones left out)."""
    async with rt.db.read() as conn:
        rows = await store.list_charger_limits(conn, charger_id)
    return {int(row["connector_id"]): row["limit_tenths"] / 10 for row in rows if row["limit_tenths"] is not None}


# ---------------------------------------------------------------------------------------------- helpers


async def _apply(
    rt: Runtime,
    team_id: TeamId,
    charger_row: Mapping[str, Any],
    connector_id: int,
    *,
    limit: int | Mapping[int, int],
    level: int,
    phases: int | None,
    action: str,
) -> dict[str, Any]:
    """Store the caps, audit, wake the controller; install them ourselves when it does not manage them."""
    charger_id = int(charger_row["id"])
    now = rt.clock.now()
    async with rt.db.write() as conn:
        rows = await _connectors(conn, charger_row, connector_id)
        site = await store.get_site_control(conn, charger_row.get("site_id"))
        managed = caps.controller_manages(rt.settings.smart_control, site)
        existing = {int(row["connector_id"]): row for row in await store.list_charger_limits(conn, charger_id)}
        chosen: dict[int, int] = {}
        for row in rows:
            number = int(row["number"])
            tenths = limit[number] if isinstance(limit, Mapping) else limit
            chosen[number] = tenths
            old = existing.get(int(row["id"]))
            values = {
                "connector_id": int(row["id"]),
                "charger_id": charger_id,
                "limit_tenths": tenths,
                "stack_level": level,
                "number_phases": phases,
                "profile_status": None if old is None else old["profile_status"],
                "updated_at": now,
            }
            await store.save_limit(conn, values)
        detail = {
            "connector_id": connector_id,
            "limit": sorted({format_limit(t) for t in chosen.values()}),
            "stack_level": level,
            "number_phases": phases,
        }
        await audit.record(rt.clock, conn, team_id, action, ("charger", charger_row["uuid"]), detail=detail)
    await _wake(rt, charger_row, managed)
    status = ACCEPTED
    if managed:
        for row in rows:  # a profile of ours from before the site was managed makes way for the controller's
            old = existing.get(int(row["id"]))
            if old is not None and old["profile_status"] is not None:
                try:
                    await _send_clear(rt, team_id, charger_row, int(row["number"]), keep=True)
                except VoltlineError as error:  # best effort: `ChargeLimits` removes it at the next reconnect
                    log.info("%s: our charge-limit profile stays for now: %s", charger_row["identity"], error)
    else:
        for row in rows:
            number = int(row["number"])
            profile = caps.cap_profile(number, chosen[number], level, phases or _phases(row), now)
            answer = await _send_set(rt, team_id, charger_row, (int(row["id"]), number), profile)
            status = answer if status == ACCEPTED else status
    connectors = [{"connector_id": number, "limit": format_limit(t)} for number, t in chosen.items()]
    return {"status": status, "managed": managed, "connectors": connectors}


async def _connectors(conn: Any, charger_row: Mapping[str, Any], connector_id: Any) -> list[RowMapping]:
    if isinstance(connector_id, bool) or not isinstance(connector_id, int) or connector_id < 0:
        raise ValidationError.single("connector_id", CONNECTOR_INVALID)
    rows = await store.list_charger_connectors(conn, int(charger_row["id"]), connector_id)
    if not rows:
        raise ValidationError.single("connector_id", CONNECTOR_INVALID)
    return rows


def _phases(row: Mapping[Any, Any]) -> int:
    return 1 if row["phases"] == 1 else 3


def _values(row: Mapping[Any, Any]) -> dict[str, Any]:
    names = ("connector_id", "charger_id", "limit_tenths", "stack_level", "number_phases", "profile_status")
    return {name: row[name] for name in names}


async def _wake(rt: Runtime, charger_row: Mapping[str, Any], managed: bool) -> None:
    """A cap the controller enforces wakes the site's run (an unmanaged one is this module's alone)."""
    site_id = charger_row.get("site_id")
    if managed and site_id is not None:
        await publish_settings_changed(rt.bus, int(site_id))


async def _send_set(
    rt: Runtime, team_id: TeamId, charger_row: Mapping[str, Any], connector: tuple[int, int], profile: Any
) -> str:
    """SetChargingProfile of the cap (audited) on `connector` (row id, number); the answer recorded on its row."""
    connector_row_id, number = connector
    args = {"connector_id": number, "profile": profile}
    async with rt.db.write() as conn:
        await store.set_profile_status(conn, connector_row_id, PENDING, rt.clock.now())
    try:
        result = await charger_commands.send_command(rt, team_id, charger_row, "set_charging_profile", args)
    except VoltlineError as error:
        raise charger_commands.as_refusal(error) from None
    status = str(result.get("status", ACCEPTED))
    async with rt.db.write() as conn:
        await store.set_profile_status(conn, connector_row_id, status[:16], rt.clock.now())
    return status


async def _send_clear(
    rt: Runtime, team_id: TeamId, charger_row: Mapping[str, Any], number: int, *, keep: bool = False
) -> str:
    """ClearChargingProfile of the cap's profile id (audited); its row forgotten (or, `keep`, unmarked)."""
    args = {"id": caps.profile_id(number)}
    try:
        result = await charger_commands.send_command(rt, team_id, charger_row, "clear_charging_profile", args)
    except VoltlineError as error:
        raise charger_commands.as_refusal(error) from None
    async with rt.db.write() as conn:
        await _forget(conn, int(charger_row["id"]), number, keep=keep, now=rt.clock.now())
    return str(result.get("status", ACCEPTED))


async def _forget(conn: Any, charger_id: int, number: int, *, keep: bool, now: Any) -> None:
    """After a clear: a cleared row goes; a kept cap no longer has a profile of ours on the charger."""
    for row in await store.list_charger_limits(conn, charger_id):
        if int(row["number"]) != number:
            continue
        if row["limit_tenths"] is None:
            await store.delete_limit(conn, int(row["connector_id"]))
        elif keep:
            await store.set_profile_status(conn, int(row["connector_id"]), None, now)


# ----------------------------------------------------------------------------------------------


class ChargeLimits:
    """Keeps the caps installed that the controller does not enforce: a duty of the control lease's holder.

    On a charger's Accepted boot or reconnect (`boot`, `connected` on `smart.events`) its caps are
    installed again (R-89: profiles on the charger may have been lost), cleared caps whose profile
    is still there are removed, and a profile of ours on a connector the controller now manages is
    removed (its TxProfiles carry the cap). A site's `settings` event does the same for its chargers,
    without re-sending a cap already Accepted. Runs whether smart control is on or off.
    """

    def __init__(self, runtime: Runtime, commands: Commands | None = None) -> None:
        self.runtime = runtime
        self.commands = runtime.commands if commands is None else commands
        self._subscription: Subscription | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen for boots, reconnects and site changes."""
        self._subscription = await self.runtime.bus.listen(SMART_EVENTS, self._on_event)

    async def stop(self) -> None:
        """Stop listening and end the syncs under way."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        await cancel_and_wait(list(self._tasks))

    async def _on_event(self, _subject: str, data: bytes) -> None:
        try:
            event = decode_event(data)
            kind, charger_id, site_id = event["kind"], event.get("charger_id"), event.get("site_id")
            if kind in ("boot", "connected") and isinstance(charger_id, int):
                self._later(charger_id, force=True)
            elif kind == "settings" and isinstance(site_id, int):
                async with self.runtime.db.read() as conn:
                    charger_ids = await store.list_site_charger_ids(conn, site_id)
                for one in charger_ids:
                    self._later(one, force=False)
        except Exception:  # task boundary: one bad event must not stop the listener
            log.exception("charge limits: could not handle an event")

    def _later(self, charger_id: int, *, force: bool) -> None:
        task = asyncio.create_task(self.sync(charger_id, force=force), name=f"voltline-charge-limit-{charger_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sync(self, charger_id: int, *, force: bool) -> None:
        """Bring the charger's profiles of ours in line with its caps (`force`: re-send Accepted ones too)."""
        async with self._locks.setdefault(charger_id, asyncio.Lock()):
            try:
                await self._sync(charger_id, force)
            except (ChargerNotBootedError, ChargerOfflineError):
                pass  # its Accepted boot or next connection wakes us again
            except (ChargerTimeoutError, CommandFailedError) as error:
                log.info("charger %s: charge limit not installed: %s", charger_id, type(error).__name__)
            except Exception:  # task boundary: the next event tries again
                log.exception("charger %s: charge limit sync failed", charger_id)

    async def _sync(self, charger_id: int, force: bool) -> None:
        async with self.runtime.db.read() as conn:
            charger = await store.get_charger(conn, charger_id)
            rows = await store.list_charger_limits(conn, charger_id)
            site = None if charger is None else await store.get_site_control(conn, charger["site_id"])
        if charger is None or not rows:
            return
        managed = caps.controller_manages(self.runtime.settings.smart_control, site)
        identity = str(charger["identity"])
        for row in rows:
            number = int(row["number"])
            if row["limit_tenths"] is None or (managed and row["profile_status"] is not None):
                await self.commands.send(identity, "clear_charging_profile", {"id": caps.profile_id(number)})
                async with self.runtime.db.write() as conn:
                    await _forget(conn, charger_id, number, keep=True, now=self.runtime.clock.now())
            elif not managed and (force or row["profile_status"] != ACCEPTED):
                phases = row["number_phases"] or _phases(row)
                now = self.runtime.clock.now()
                profile = caps.cap_profile(number, int(row["limit_tenths"]), int(row["stack_level"]), phases, now)
                result = await self.commands.send(
                    identity, "set_charging_profile", {"connector_id": number, "profile": profile}
                )
                async with self.runtime.db.write() as conn:
                    status = str(result.get("status", ACCEPTED))[:16]
                    await store.set_profile_status(conn, int(row["connector_id"]), status, self.runtime.clock.now())
