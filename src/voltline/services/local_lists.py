"""Local authorization lists (OCPP 1.6 §3.5.3, §5.10 GetLocalListVersion, §5.15 SendLocalList): each charger
of a team holds the team's listed id tags (domain/local_lists.py), so it can authorize while it cannot reach us.

Run by the control lease's holder (`LocalLists`, a duty of the worker/all roles, DESIGN "Cluster"). It listens
on `smart.events`: an Accepted `boot` has the charger's features read once (GetConfiguration:
SupportedFeatureProfiles, LocalAuthListEnabled, LocalAuthListMaxLength, SendLocalListMaxLength), then
its list version asked (GetLocalListVersion), as a reconnect (`connected`) of a known charger has; a
Full update follows when we never set its list or its version is not ours, a Differential one when
the team's tags changed since.
`id_tags` (a team's tags changed) syncs the team's online chargers. One sync at a time per charger; the
event listener never waits for a sync. Each chunk's version and snapshot are stored once the charger
accepted it, so an interrupted update resumes correctly (a version that is not ours means a Full one).
A forced sync (`POST .../local-list/sync`) travels on the bus to the holder (`SYNC_SUBJECT`), so it is
serialized with the rest; without a holder it runs in the asking process.

A charger is left alone while its team has no id tags and we never set its list (nothing to hold).
Outcomes stored: Accepted, truncated (the list was cut to LocalAuthListMaxLength), Failed, VersionMismatch
(after the Full resync failed too), NotSupported, offline, timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import RowMapping

from voltline import codec
from voltline.bus import NoRespondersError, Subscription
from voltline.bus.events import SMART_EVENTS, decode_event
from voltline.domain import local_lists as lists
from voltline.domain.ids import Ref, TeamId
from voltline.errors import (
    ChargerNotBootedError,
    ChargerOfflineError,
    ChargerTimeoutError,
    CommandFailedError,
    ConflictError,
    VoltlineError,
)
from voltline.services import audit
from voltline.services.commands import Commands
from voltline.services.lease import term_write
from voltline.services.runtime import Runtime
from voltline.store import chargers as charger_store
from voltline.store import local_lists as store
from voltline.tasks import cancel_and_wait

log = logging.getLogger("voltline.local_lists")

SYNC_SUBJECT = "local_lists.sync"
REFUSALS = ("Failed", "NotSupported", "VersionMismatch")


class LocalListRefusedError(ConflictError):
    """The charger does not take a local list (disabled, NotSupported, Failed)."""


class Sync:
    """One charger's sync: the runtime, the commands to send with, the charger, and what we stored of it."""

    def __init__(self, rt: Runtime, commands: Commands, charger: RowMapping, state: RowMapping | None) -> None:
        self.rt, self.commands, self.charger, self.state = rt, commands, charger, state
        self.charger_id = int(charger["id"])
        self.identity = str(charger["identity"])

    async def save(self, **values: Any) -> None:
        async with term_write(self.rt, self.commands) as conn:
            await store.save_local_list(conn, self.charger_id, self.rt.clock.now(), **values)
            self.state = await store.get_local_list(conn, self.charger_id)

    async def send(self, command: str, args: dict[str, Any]) -> dict[str, Any]:
        """Send a command; offline and timeout are recorded as the outcome, then raised."""
        try:
            return await self.commands.send(self.identity, command, args)
        except ChargerNotBootedError:
            raise
        except (ChargerOfflineError, ChargerTimeoutError) as error:
            outcome = "timeout" if isinstance(error, ChargerTimeoutError) else "offline"
            await self.save(last_outcome=outcome, last_sync_at=self.rt.clock.now())
            raise

    async def read_features(self) -> lists.Features:
        """OCPP 1.6 §9.1: the local-list keys; a charger that cannot answer has no local list."""
        try:
            result = await self.send("get_configuration", {"keys": lists.FEATURE_KEYS})
        except CommandFailedError:
            features = lists.Features(False, False, None, None)
        else:
            features = lists.features_of(result.get("configuration_key") or [])
        await self.save(supported=features.enabled, max_length=features.max_length, chunk_length=features.chunk_length)
        return features

    def enabled(self) -> bool:
        state = self.state
        if state is None:
            return False
        return bool(state["enabled"]) if state["enabled"] is not None else bool(state["supported"])

    async def run(self, *, reread: bool, force: bool) -> str | None:
        """Bring the charger's list up to date; the outcome, or None when nothing was to be done."""
        if reread or self.state is None or self.state["supported"] is None:
            await self.read_features()
        if not self.enabled():
            if force:
                raise LocalListRefusedError("The charger does not support a local authorization list.")
            return None
        answer = await self.send("get_local_list_version", {})
        version = answer.get("list_version")
        if version == -1:  # §5.10: -1, the charger does not support a local list
            await self.save(supported=False, last_outcome="NotSupported", last_sync_at=self.rt.clock.now())
            return self.refused("NotSupported", force)
        ours = int(self.state["version"]) if self.state is not None else 0
        never = self.state is None or self.state["last_sync_at"] is None or self.state["entries"] is None
        full = force or never or version != ours
        return await self.update(full, int(version) if isinstance(version, int) else ours, force)

    async def update(self, full: bool, charger_version: int, force: bool) -> str | None:
        async with self.rt.db.read() as conn:
            tags = await store.list_listed_tags(conn, int(self.charger["team_id"]))
        max_length = None if self.state is None else self.state["max_length"]
        chunk_length = None if self.state is None else self.state["chunk_length"]
        wanted, truncated = lists.wanted_list(tags, max_length)
        held = store.entries_of(self.state)
        base = max(charger_version, int(self.state["version"]) if self.state is not None else 0)
        if full:
            chunks = lists.full_update(wanted, base, chunk_length)
        else:
            chunks = lists.differential_update(held, wanted, base, chunk_length)
        if not chunks:
            return None
        status = await self.send_chunks(held if not full else {}, chunks)
        if status == "VersionMismatch" and not full:
            return await self.update(True, charger_version, force)  # §5.15: retry with a Full update
        outcome = "truncated" if status == "Accepted" and truncated else status
        await self.save(last_outcome=outcome, last_sync_at=self.rt.clock.now())
        if outcome in REFUSALS:
            return self.refused(outcome, force)
        return outcome

    async def send_chunks(self, held: Mapping[str, lists.Entry], chunks: list[lists.Chunk]) -> str:
        """Send chunk after chunk; each accepted one advances the stored version and snapshot."""
        snapshot = dict(held)
        for chunk in chunks:
            args = {"list_version": chunk.version, "update_type": chunk.update_type, "entries": chunk.entries}
            try:
                answer = await self.send("send_local_list", args)
            except CommandFailedError as error:
                log.warning("%s: SendLocalList answered CALLERROR %s", self.identity, error.code)
                await self.save(supported=False)
                return "NotSupported"
            status = str(answer.get("status"))
            if status != "Accepted":
                if status == "NotSupported":
                    await self.save(supported=False)
                return status
            snapshot = lists.apply_chunk(snapshot, chunk)
            await self.save(version=chunk.version, entries=snapshot)
        return "Accepted"

    def refused(self, outcome: str, force: bool) -> str:
        if force:
            raise LocalListRefusedError(f"The charger refused the local authorization list ({outcome}).")
        return outcome


async def sync_charger(rt: Runtime, commands: Commands, charger_id: int, *, reread: bool, force: bool) -> str | None:
    """Sync one charger's local list (see the module docstring); the outcome."""
    async with rt.db.read() as conn:
        charger = await store.get_charger_target(conn, charger_id)
        if charger is None or charger["team_id"] is None:
            return None
        state = await store.get_local_list(conn, charger_id)
        if state is None and not force and not await store.team_has_tags(conn, int(charger["team_id"])):
            return None
    return await Sync(rt, commands, charger, state).run(reread=reread, force=force)


class LocalLists:
    """The control lease holder's local-list syncs: per charger one at a time, off the event listener."""

    def __init__(self, runtime: Runtime, commands: Commands | None = None) -> None:
        self.runtime = runtime
        self.commands = runtime.commands if commands is None else commands
        self._locks: dict[int, asyncio.Lock] = {}
        self._queued: set[int] = set()
        self._reread: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        """Listen for boots, reconnects and id-tag changes, and answer forced syncs."""
        bus = self.runtime.bus
        self._subscriptions = [
            await bus.listen(SMART_EVENTS, self._on_event),
            await bus.respond(SYNC_SUBJECT, self._on_sync),
        ]

    async def stop(self) -> None:
        """Stop listening and end the syncs under way."""
        for subscription in self._subscriptions:
            await subscription.unsubscribe()
        self._subscriptions = []
        await cancel_and_wait(list(self._tasks))

    async def _on_event(self, _subject: str, data: bytes) -> None:
        try:
            event = decode_event(data)
            kind = event["kind"]
            charger_id, team_id = event.get("charger_id"), event.get("team_id")
            if kind == "boot" and isinstance(charger_id, int):
                self.poke(charger_id, reread=True)
            elif kind == "connected" and isinstance(charger_id, int):
                # A reconnect without a new boot: check the version. A charger never seen waits for its
                # Accepted boot, so that one boot reads its features once.
                async with self.runtime.db.read() as conn:
                    known = await store.get_local_list(conn, charger_id) is not None
                if known:
                    self.poke(charger_id)
            elif kind == "id_tags" and isinstance(team_id, int):
                async with self.runtime.db.read() as conn:
                    charger_ids = await store.list_online_team_charger_ids(conn, team_id)
                for online in charger_ids:
                    self.poke(online)
        except Exception:  # task boundary: one bad event must not stop the listener
            log.exception("local lists: could not handle an event")

    def poke(self, charger_id: int, *, reread: bool = False) -> None:
        """Ask for a sync of the charger (one waits at most; a reread of its features is kept)."""
        if reread:
            self._reread.add(charger_id)
        if charger_id in self._queued:
            return
        self._queued.add(charger_id)
        task = asyncio.create_task(self._sync(charger_id), name=f"voltline-local-list-{charger_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def lock(self, charger_id: int) -> asyncio.Lock:
        return self._locks.setdefault(charger_id, asyncio.Lock())

    async def _sync(self, charger_id: int) -> None:
        async with self.lock(charger_id):
            self._queued.discard(charger_id)
            reread = charger_id in self._reread
            self._reread.discard(charger_id)
            try:
                outcome = await sync_charger(self.runtime, self.commands, charger_id, reread=reread, force=False)
                if outcome is not None:
                    log.info("charger %s: local list %s", charger_id, outcome)
            except ChargerNotBootedError:
                pass  # its Accepted boot wakes us again
            except (ChargerOfflineError, ChargerTimeoutError) as error:
                log.info("charger %s: local list not synced: %s", charger_id, type(error).__name__)
            except Exception:  # task boundary: the next event tries again
                log.exception("charger %s: local list sync failed", charger_id)

    async def _on_sync(self, data: bytes) -> bytes:
        """A forced Full update asked on the bus: run it in turn and reply with its outcome."""
        try:
            charger_id = int(codec.decode_json(data)["charger_id"])
        except (ValueError, KeyError, TypeError):
            return encode_sync_reply("error", "A malformed request.")
        async with self.lock(charger_id):
            return await run_forced(self.runtime, self.commands, charger_id)


def encode_sync_reply(outcome: str, message: str | None = None) -> bytes:
    """A forced sync's reply: `ok` (message: the outcome), `offline`, `not_booted`, `timeout`, `refused`, `error`."""
    return codec.encode_json({"outcome": outcome, "message": message})


async def run_forced(rt: Runtime, commands: Commands, charger_id: int) -> bytes:
    """Run a forced Full update and encode what came of it."""
    try:
        outcome = await sync_charger(rt, commands, charger_id, reread=False, force=True)
    except ChargerNotBootedError:
        return encode_sync_reply("not_booted")
    except ChargerOfflineError:
        return encode_sync_reply("offline")
    except ChargerTimeoutError:
        return encode_sync_reply("timeout")
    except LocalListRefusedError as error:
        return encode_sync_reply("refused", str(error))
    except VoltlineError as error:
        log.warning("charger %s: forced local list sync failed: %s", charger_id, error)
        return encode_sync_reply("error", str(error))
    return encode_sync_reply("ok", outcome or "Accepted")


def _raise_reply(reply: Mapping[str, Any], identity: str) -> str:
    outcome, message = reply.get("outcome"), reply.get("message")
    if outcome == "ok":
        return str(message)
    if outcome == "not_booted":
        raise ChargerNotBootedError(identity)
    if outcome == "offline":
        raise ChargerOfflineError(identity)
    if outcome == "timeout":
        raise ChargerTimeoutError(identity)
    raise LocalListRefusedError(str(message or "The local authorization list could not be synced."))


# ---------------------------------------------------------------------------------------------- the API's side


async def get_local_list(rt: Runtime, team_id: TeamId, charger_ref: Ref) -> tuple[RowMapping, RowMapping | None]:
    """The team's charger and its local-list row (None before anything was read or sent)."""
    async with rt.db.read() as conn:
        charger = await charger_store.get_charger(conn, team_id, charger_ref)
        return charger, await store.get_local_list(conn, int(charger["id"]))


async def sync_now(rt: Runtime, team_id: TeamId, charger: Mapping[Any, Any]) -> RowMapping | None:
    """A Full update of the charger's list now, audited; its row after. 409 offline or refused, 504 timeout."""
    charger_id, identity = int(charger["id"]), str(charger["identity"])
    timeout = rt.settings.ocpp_call_timeout * 10 + 5  # features, version and a few chunks
    outcome = "error"
    try:
        try:
            data = await rt.bus.request(SYNC_SUBJECT, codec.encode_json({"charger_id": charger_id}), timeout)
        except NoRespondersError:  # no lease holder listening: run it here
            data = await run_forced(rt, rt.commands, charger_id)
        except TimeoutError:
            raise ChargerTimeoutError(identity) from None
        reply = codec.decode_json(data)
        outcome = str(reply.get("message") if reply.get("outcome") == "ok" else reply.get("outcome"))
        _raise_reply(reply, identity)
    except ChargerTimeoutError:
        outcome = "timeout"
        raise
    finally:
        await audit.record_command(
            rt, team_id, "charger.local_list_sync", ("charger", charger["uuid"]), outcome=outcome
        )
    async with rt.db.read() as conn:
        return await store.get_local_list(conn, charger_id)
