"""The v3 charger settings (spec/volttime-v3.md §3.10): lock, socket lock, plug & charge; stored per charger.

- `lock` (alias `cable-lock`): the charger is blocked. Enabled: ChangeAvailability Inoperative on
  connector 0 (OCPP 1.6 §5.2: every connector becomes Unavailable, no new sessions); disabled:
  Operative. Refused (409) while a transaction runs (`interactable` false), as Plugchoice does.
  A charger offline at the change gets it when it boots or reconnects. The v3 charger's `blocked`
  reads this setting (`blocked`, `blocked_among`).
- `socket-lock`: the cable stays locked in the socket when the EV side is unplugged: OCPP 1.6
  §9.1.35 UnlockConnectorOnEVSideDisconnect = false (enabled) / true (disabled), set by
  ChangeConfiguration and re-set after a boot or reconnect. Its state is read from the charger
  (GetConfiguration); a charger that cannot be read answers `error` with both booleans false.
- `plug-charge`: when a connector reports Preparing (a cable was plugged in, §4.9) and no session
  runs on it, RemoteStartTransaction (§5.11) on that connector with the stored card as idTag; the
  card is authorized like any id tag when the StartTransaction arrives.

The re-application after a boot/reconnect and the plug & charge starts run in the control lease's
holder (`ChargerSettings`, a duty beside the local-list service, DESIGN "Cluster"), listening on
`smart.events`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.bus import Subscription
from voltline.bus.events import SMART_EVENTS, decode_event
from voltline.domain.ids import UserId
from voltline.errors import (
    ChargerOfflineError,
    ChargerTimeoutError,
    CommandFailedError,
    ConflictError,
    VoltlineError,
)
from voltline.services import audit, charger_commands
from voltline.services.commands import Commands
from voltline.services.runtime import Runtime
from voltline.store import charger_settings as store
from voltline.tasks import cancel_and_wait

log = logging.getLogger("voltline.charger_settings")

SOCKET_LOCK_KEY = "UnlockConnectorOnEVSideDisconnect"
# volttime-v3 §3.10: a cable is present in these connector states.
CABLE_STATUSES = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"})
ACTIVE_SESSION = "The charger has an active session; it cannot be locked or unlocked now."
ACCEPTED_AVAILABILITY = ("Accepted", "Scheduled")
ACCEPTED_CONFIGURATION = ("Accepted", "RebootRequired")


@dataclass(frozen=True)
class LockState:
    """`settings/lock`: blocked or not, and whether it may be toggled now (no session running)."""

    enabled: bool
    interactable: bool


@dataclass(frozen=True)
class SocketLockState:
    """`settings/socket-lock` as read from the charger; `error` when it could not be read."""

    enabled: bool
    interactable: bool
    error: str | None


@dataclass(frozen=True)
class PlugChargeState:
    """`settings/plug-charge`: on or off, and the card that starts the sessions."""

    enabled: bool
    current_card: str | None


async def blocked(rt: Runtime, charger_id: int) -> bool:
    """Whether the charger is locked (`settings/lock`): the v3 charger resource's `blocked`."""
    async with rt.db.read() as conn:
        return await store.is_blocked(conn, charger_id)


async def blocked_among(rt: Runtime, charger_ids: list[int]) -> set[int]:
    """Which of the chargers are locked: the v3 `blocked` of a page of chargers."""
    async with rt.db.read() as conn:
        return await store.blocked_among(conn, charger_ids)


async def user_charger(rt: Runtime, user_id: UserId, charger_uuid: str) -> RowMapping:
    """The charger with this uuid among the user's teams; NotFoundError for any other (v3 tenancy, §1.4)."""
    async with rt.db.read() as conn:
        return await store.get_user_charger(conn, int(user_id), charger_uuid)


async def _running(conn: AsyncConnection, charger_id: int) -> bool:
    return await store.has_active_transaction(conn, charger_id)


async def _change(rt: Runtime, charger: Mapping[Any, Any], setting: str, **values: Any) -> None:
    """Store the setting's new values with its audit row `charger.settings_changed`, in one transaction."""
    async with rt.db.write() as conn:
        await store.save_settings(conn, int(charger["id"]), rt.clock.now(), **values)
        detail = {"setting": setting, **{key: value for key, value in values.items() if key != "plug_charge_card"}}
        await audit.record(
            rt.clock, conn, charger["team_id"], "charger.settings_changed", ("charger", charger["uuid"]), detail=detail
        )


# ---------------------------------------------------------------------------------------------- lock


async def get_lock(rt: Runtime, charger: Mapping[Any, Any]) -> LockState:
    """The lock setting and whether it may be toggled (false while a transaction runs)."""
    async with rt.db.read() as conn:
        enabled = await store.is_blocked(conn, int(charger["id"]))
        running = await _running(conn, int(charger["id"]))
    return LockState(enabled=enabled, interactable=not running)


async def set_lock(rt: Runtime, charger: Mapping[Any, Any], enabled: bool) -> None:
    """Lock (every connector Inoperative) or unlock (Operative) the charger; 409 while a session runs.

    The setting is stored first; an offline charger gets it when it boots or reconnects. A charger
    that answers Rejected keeps the setting stored and is a 409; a timeout is a 504.
    """
    async with rt.db.read() as conn:
        if await _running(conn, int(charger["id"])):
            raise ConflictError(ACTIVE_SESSION)
    await _change(rt, charger, "lock", lock_enabled=enabled)
    try:
        await apply_lock(rt, rt.commands, charger, enabled, audited=True)
    except ChargerOfflineError:  # a not-booted charger included: applied at its boot
        return


async def apply_lock(
    rt: Runtime, commands: Commands, charger: Mapping[Any, Any], enabled: bool, *, audited: bool
) -> None:
    """Send ChangeAvailability (connector 0) for the lock and store what the charger accepted."""
    args = {"connector_id": 0, "type": "Inoperative" if enabled else "Operative"}
    if audited:
        answer = await charger_commands.send_command(rt, charger["team_id"], charger, "change_availability", args)
    else:
        answer = await commands.send(str(charger["identity"]), "change_availability", args)
    status = str(answer.get("status"))
    if status not in ACCEPTED_AVAILABILITY:
        raise ConflictError(f"The charger answered {status}.")
    async with rt.db.write() as conn:
        await store.save_settings(conn, int(charger["id"]), rt.clock.now(), lock_applied=enabled)


# ---------------------------------------------------------------------------------------------- socket lock


async def get_socket_lock(rt: Runtime, charger: Mapping[Any, Any]) -> SocketLockState:
    """The socket lock as the charger reports it (GetConfiguration UnlockConnectorOnEVSideDisconnect)."""
    try:
        answer = await rt.commands.send(str(charger["identity"]), "get_configuration", {"keys": [SOCKET_LOCK_KEY]})
    except ChargerOfflineError:
        return SocketLockState(False, False, "The charger is offline.")
    except ChargerTimeoutError:
        return SocketLockState(False, False, "The charger did not respond in time.")
    except CommandFailedError as error:
        return SocketLockState(False, False, f"The charger could not read the setting: {error}")
    values = {item.get("key"): item.get("value") for item in answer.get("configuration_key") or []}
    value = values.get(SOCKET_LOCK_KEY)
    if not isinstance(value, str) or value.strip().lower() not in ("true", "false"):
        return SocketLockState(False, False, "The charger does not report the setting.")
    enabled = value.strip().lower() == "false"
    async with rt.db.read() as conn:
        statuses = await store.connector_statuses(conn, int(charger["id"]))
    cable = any(status in CABLE_STATUSES for status in statuses.values())
    return SocketLockState(enabled=enabled, interactable=enabled or cable, error=None)


async def set_socket_lock(rt: Runtime, charger: Mapping[Any, Any], enabled: bool) -> None:
    """Store the socket lock and set it on the charger (ChangeConfiguration); offline: at its next boot/reconnect.

    Rejected / NotSupported (or a CALLERROR NotSupported) is a 409, a timeout a 504; the setting stays stored.
    """
    await _change(rt, charger, "socket_lock", socket_lock_enabled=enabled)
    try:
        await apply_socket_lock(rt, rt.commands, charger, enabled, audited=True)
    except ChargerOfflineError:
        return
    except CommandFailedError as error:
        raise charger_commands.as_refusal(error) from None


async def apply_socket_lock(
    rt: Runtime, commands: Commands, charger: Mapping[Any, Any], enabled: bool, *, audited: bool
) -> None:
    """ChangeConfiguration UnlockConnectorOnEVSideDisconnect = false (locked) / true; 409 unless accepted."""
    args = {"key": SOCKET_LOCK_KEY, "value": "false" if enabled else "true"}
    if audited:
        answer = await charger_commands.send_command(rt, charger["team_id"], charger, "change_configuration", args)
    else:
        answer = await commands.send(str(charger["identity"]), "change_configuration", args)
    status = str(answer.get("status"))
    if status not in ACCEPTED_CONFIGURATION:
        raise ConflictError(f"The charger answered {status}.")


# ---------------------------------------------------------------------------------------------- plug & charge


async def get_plug_charge(rt: Runtime, charger: Mapping[Any, Any]) -> PlugChargeState:
    """Plug & charge on or off, and its card."""
    async with rt.db.read() as conn:
        row = await store.get_settings(conn, int(charger["id"]))
    if row is None or not row["plug_charge_enabled"]:
        return PlugChargeState(False, None if row is None else row["plug_charge_card"])
    return PlugChargeState(True, row["plug_charge_card"])


async def set_plug_charge(rt: Runtime, charger: Mapping[Any, Any], enabled: bool, card_uid: str | None) -> None:
    """Switch plug & charge; enabling needs the card (validated by the front-end); disabling keeps it."""
    values: dict[str, Any] = {"plug_charge_enabled": enabled}
    if card_uid is not None:
        values["plug_charge_card"] = card_uid
    await _change(rt, charger, "plug_charge", **values)


async def plug_charge_start(rt: Runtime, commands: Commands, charger_id: int, connector: int) -> str | None:
    """A cable was plugged into `connector`: RemoteStartTransaction with the card when plug & charge is on.

    Nothing when it is off, the charger is locked, or a session already runs on the charger's connector.
    The charger's answer (Accepted / Rejected), or None when nothing was sent.
    """
    async with rt.db.read() as conn:
        row = await store.get_settings(conn, charger_id)
        if row is None or not row["plug_charge_enabled"] or not row["plug_charge_card"] or row["lock_enabled"]:
            return None
        charger = await store.get_charger_row(conn, charger_id)
        if charger is None or charger["team_id"] is None:
            return None
        if await store.has_active_transaction(conn, charger_id, connector):
            return None
    args = {"connector_id": connector, "id_tag": str(row["plug_charge_card"])}
    answer: dict[str, Any] | None = None
    failure: VoltlineError | None = None
    try:
        answer = await commands.send(str(charger["identity"]), "remote_start", args)
    except VoltlineError as error:
        failure = error
    outcome = audit.command_outcome(answer, failure)
    target = ("charger", charger["uuid"])
    detail = {"connector_id": connector}
    await audit.record_command(
        rt, charger["team_id"], "charger.plug_charge_start", target, outcome=outcome, detail=detail
    )
    if failure is not None:
        raise failure
    return outcome


# ---------------------------------------------------------------------------------------------- the duty


async def reapply(rt: Runtime, commands: Commands, charger_id: int) -> None:
    """After a boot or reconnect: the lock (when locked, or when an unlock never reached the charger) and
    the socket lock (when set through us) again."""
    async with rt.db.read() as conn:
        row = await store.get_settings(conn, charger_id)
        charger = None if row is None else await store.get_charger_row(conn, charger_id)
    if row is None or charger is None:
        return
    if row["lock_enabled"] or row["lock_applied"]:
        await apply_lock(rt, commands, charger, bool(row["lock_enabled"]), audited=False)
    if row["socket_lock_enabled"] is not None:
        await apply_socket_lock(rt, commands, charger, bool(row["socket_lock_enabled"]), audited=False)


def _plug_connector(event: Mapping[str, Any]) -> int:
    connector = event.get("connector")
    return connector if isinstance(connector, int) else 0


class ChargerSettings:
    """The control lease holder's side of the settings: re-apply after boot/reconnect, plug & charge starts."""

    def __init__(self, runtime: Runtime, commands: Commands | None = None) -> None:
        self.runtime = runtime
        self.commands = runtime.commands if commands is None else commands
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        """Listen for boots, reconnects and connector status changes."""
        self._subscriptions = [await self.runtime.bus.listen(SMART_EVENTS, self._on_event)]

    async def stop(self) -> None:
        """Stop listening and end the work under way."""
        for subscription in self._subscriptions:
            await subscription.unsubscribe()
        self._subscriptions = []
        await cancel_and_wait(list(self._tasks))

    async def _on_event(self, _subject: str, data: bytes) -> None:
        try:
            event = decode_event(data)
            kind, charger_id = event["kind"], event.get("charger_id")
            if not isinstance(charger_id, int):
                return
            if kind in ("boot", "connected"):
                self._spawn(charger_id, self._reapply(charger_id))
            elif kind == "status" and event.get("status") == "Preparing" and _plug_connector(event) > 0:
                self._spawn(charger_id, self._plug_charge(charger_id, _plug_connector(event)))
        except Exception:  # task boundary: one bad event must not stop the listener
            log.exception("charger settings: could not handle an event")

    def _spawn(self, charger_id: int, work: Any) -> None:
        async def run() -> None:
            async with self._locks.setdefault(charger_id, asyncio.Lock()):
                try:
                    await work
                except ChargerOfflineError:
                    pass  # a not-booted charger included: its Accepted boot wakes us again
                except (ChargerTimeoutError, CommandFailedError, ConflictError) as error:
                    log.info("charger %s: setting not applied: %s", charger_id, error)
                except Exception:  # task boundary: the next event tries again
                    log.exception("charger %s: settings failed", charger_id)

        task = asyncio.create_task(run(), name=f"voltline-charger-settings-{charger_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reapply(self, charger_id: int) -> None:
        await reapply(self.runtime, self.commands, charger_id)

    async def _plug_charge(self, charger_id: int, connector: int) -> None:
        outcome = await plug_charge_start(self.runtime, self.commands, charger_id, connector)
        if outcome is not None:
            log.info("charger %s: plug & charge start on connector %s: %s", charger_id, connector, outcome)
