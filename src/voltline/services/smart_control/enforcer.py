"""Carrying out a site's profile sends over the commands service, and recording every answer.

One `Enforcer` per phase of a control run. Sends of different chargers go out together, at most
`WINDOW` chargers at a time (one slower than `PATIENCE` seconds stops counting); those of one
charger one after the other (the gateway keeps one call in flight per charger anyway). A
TxProfile that the charger refuses walks the fallback ladder of smart/profiles.py (R-19, R-43);
a TxDefault for an idle connector or the failsafe tries A then W, never the 6 A rung. A charger
that answers a CALLERROR NotImplemented or NotSupported has no smart charging at all: it is
flagged (`profiles_unsupported`), sent nothing more and, until it reconnects, held at what it
may draw (R-87).

What the store says is in force never understates what a charger may be running (module
docstring of smart/scheduler.py): before an attempt goes out its row is stored `pending` with
the worst limit that may then be in force, unless the stored row already says as much (an
accepted limit of the same transaction at or above it: a decrease). The pending rows of a
phase's first attempts are written together before the first send; the answers (`accepted`,
`rejected`, `timeout`) are written behind the sends, in order, and the phase ends once they are
stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import takewhile
from typing import Any

from voltline.domain.site_view import DEFAULT, TX, ConnectorRow, ProfileKey, ProfileRow, SiteView
from voltline.errors import ChargerOfflineError, ChargerTimeoutError, CommandFailedError
from voltline.services.commands import Commands
from voltline.services.lease import term_write
from voltline.services.runtime import Runtime
from voltline.smart.allocation import MIN_TENTHS
from voltline.smart.profiles import (
    TX_DEFAULT_BASE,
    TX_PROFILE_BASE,
    Attempt,
    Fallback,
    Outcome,
    build_profile,
    first_attempt,
    next_fallback,
)
from voltline.smart.scheduler import Send, effective_failsafe, in_force, worst
from voltline.store import smart as store

log = logging.getLogger("voltline.smart")

TIMEOUT = "timeout"
UNSUPPORTED = "NotImplemented"  # the answer word for a CALLERROR that says the charger has no smart charging
UNSUPPORTED_CODES = frozenset({"NotImplemented", "NotSupported"})
# Senders resumed per loop turn after a shared write: each then encodes and sends a profile, so
# this bounds the work done between two yields to the loop (STYLE: nothing slow on the event loop).
RESUME_CHUNK = 25
PREPARE_CHUNK = 100  # profiles built per loop turn before the first send
# Chargers whose sends are under way at once (`_windowed`). Their answers arrive together and are
# handled in one loop turn: 150 gave turns (with a collection) of up to 19 ms at 1,000 chargers,
# 80 keeps them near 12 ms for the same end-to-end time (docs/benchmarks.md, bench/smart.py).
WINDOW = 80
PATIENCE = 0.2  # seconds after which an unanswered chain no longer counts against the window


@dataclass(frozen=True, slots=True)
class Prepared:
    """An attempt ready to send: its profile and the pending row stored (or covered) before it goes out."""

    attempt: Attempt
    profile: dict[str, Any]
    row: ProfileRow
    values: dict[str, Any]


def _key(row: ProfileRow) -> tuple[int, int, str]:
    return row.charger_id, row.connector, row.purpose


def _covered(stored: ProfileRow | None, pending: ProfileRow) -> bool:
    """True when the stored row already reserves at least what the pending row would (a decrease)."""
    return (
        stored is not None
        and stored.status == "accepted"
        and stored.transaction_id == pending.transaction_id
        and pending.reserved is not None
        and pending.reserved <= stored.limit
    )


class Enforcer:
    """Sends one phase of profile changes for a site and returns the connectors it could not steer."""

    def __init__(self, runtime: Runtime, view: SiteView, commands: Commands | None = None) -> None:
        self.runtime = runtime
        self.commands = runtime.commands if commands is None else commands
        self.view = view
        self.connectors = {(c.charger_id, c.number): c for c in view.connectors}
        self._saves: list[tuple[ProfileRow, dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._recorded: list[asyncio.Future[None]] = []
        self._prepared: dict[Send, Prepared] = {}
        self._changes: dict[ProfileKey, ProfileRow | None] = {}
        self.capabilities_changed = False
        self.unsupported: set[int] = set()  # chargers that answered NotImplemented / NotSupported

    def updated_view(self) -> SiteView:
        """The view with every profile row this enforcer stored or deleted (what a reload would read)."""
        profiles = dict(self.view.profiles)
        for key, row in self._changes.items():
            if row is None:
                profiles.pop(key, None)
            else:
                profiles[key] = row
        return replace(self.view, profiles=profiles)

    async def execute(self, sends: Sequence[Send]) -> set[int]:
        """Carry out the sends; the ids of transaction connectors left unacknowledged or refused."""
        by_charger: dict[int, list[Send]] = defaultdict(list)
        for send in sends:
            by_charger[send.charger_id].append(send)
        await self._prepare(sends)
        results = await self._windowed(list(by_charger.values()))
        await asyncio.gather(*self._recorded)
        return set().union(*results) if results else set()

    async def _windowed(self, chains: list[list[Send]]) -> list[set[int]]:
        """Run each charger's sends in a task of its own, at most WINDOW of them started and unanswered.

        A chain older than PATIENCE seconds no longer counts, so slow chargers (cellular links,
        silent ones waiting for their timeout) cannot hold the others back; the window only bites
        while the chargers answer quickly, that is while the work is the server's own. 1,000
        chargers answering together held the loop 20-40 ms per turn and kept ~8,000 coroutines alive.
        """
        clock = self.runtime.clock
        loop = asyncio.get_running_loop()
        waiting = deque(chains)
        tasks: list[asyncio.Task[set[int]]] = []
        started: dict[asyncio.Task[set[int]], float] = {}  # in start order, so the oldest come first
        wake: asyncio.Future[None] = loop.create_future()
        sleeper: asyncio.Future[None] | None = None

        def finished(task: asyncio.Task[set[int]]) -> None:
            started.pop(task, None)
            if not wake.done():
                wake.set_result(None)

        try:
            while waiting:
                now = clock.monotonic()
                slow = _count_old(started.values(), now - PATIENCE)
                room = WINDOW - (len(started) - slow)
                for _ in range(min(room, len(waiting), RESUME_CHUNK)):
                    task = asyncio.create_task(self._charger(waiting.popleft()))
                    task.add_done_callback(finished)
                    started[task] = now
                    tasks.append(task)
                if not waiting:
                    break
                if room > RESUME_CHUNK:
                    await asyncio.sleep(0)  # those chains' first sends run before more start
                    continue
                if sleeper is None or sleeper.done():
                    sleeper = asyncio.ensure_future(clock.sleep(PATIENCE))
                await asyncio.wait((wake, sleeper), return_when=asyncio.FIRST_COMPLETED)
                if wake.done():
                    wake = loop.create_future()
        finally:
            if sleeper is not None:
                sleeper.cancel()
        return list(await asyncio.gather(*tasks))

    async def _prepare(self, sends: Sequence[Send]) -> None:
        """Store the pending rows of every first attempt in one write before anything is sent.

        A row is only needed where the stored one would understate what may be in force: an
        accepted limit of the same transaction at or above the reserve already says enough (a
        decrease), and the answer is stored afterwards anyway. A key that two sends share (a
        clear and a set of one connector) is left to the sends themselves, in their order.
        """
        keys = [(s.charger_id, s.connector, s.purpose) for s in sends]
        shared = {key for key, count in Counter(keys).items() if count > 1}
        pending: list[tuple[ProfileRow, dict[str, Any]]] = []
        for count, (send, key) in enumerate(zip(sends, keys, strict=True), start=1):
            if count % PREPARE_CHUNK == 0:
                await asyncio.sleep(0)  # 2,000 profiles built in one go held the loop ~25 ms
            attempt = self._first_attempt(send)
            if attempt is None or key in shared:
                continue
            prepared = self._prepared[send] = self._pending(send, attempt)
            if not _covered(self.view.profiles.get(_key(prepared.row)), prepared.row):
                pending.append((prepared.row, prepared.values))
        if pending:
            await self._enqueue(pending)

    async def _charger(self, sends: list[Send]) -> set[int]:
        failed: set[int] = set()
        for send in sends:
            ok = await self._one(send)
            connector = self.connectors.get((send.charger_id, send.connector))
            if not ok and connector is not None and send.purpose == TX and send.limit is not None:
                failed.add(connector.id)
        return failed

    async def _one(self, send: Send) -> bool:
        if send.charger_id in self.unsupported:
            return False
        if send.limit is None:
            return await self._clear(send)
        if send.purpose == TX:
            return await self._transaction(send)
        return await self._default(send)

    # ------------------------------------------------------------------ the three kinds of send

    def _first_attempt(self, send: Send) -> Attempt | None:
        """The top rung of the ladder for a send; None for a clear."""
        if send.limit is None:
            return None
        charger = self.view.chargers[send.charger_id]
        if send.purpose != TX:
            return first_attempt(send.limit, has_transaction=False, units=charger.units)
        if send.limit == 0 and charger.pause_unsupported:
            unit = "A" if "A" in charger.units else "W"
            return Attempt(Fallback.TX_PROFILE, TX, unit, MIN_TENTHS, pause_unsupported=True)
        return first_attempt(send.limit, has_transaction=True, units=charger.units)

    async def _transaction(self, send: Send) -> bool:
        """R-19/R-43: TxProfile, then the connector's TxDefault, then W, then 6 A for a pause."""
        attempt = self._first_attempt(send)
        assert attempt is not None
        return await self._settle(send, await self._walk(send, attempt, last=Fallback.MINIMUM))

    async def _walk(self, send: Send, attempt: Attempt, *, last: Fallback) -> Outcome:
        """Send rungs of the ladder down to `last`; a charger without smart charging ends it at once."""
        charger = self.view.chargers[send.charger_id]
        step: Attempt | Outcome = attempt
        while isinstance(step, Attempt):
            if send.charger_id in self.unsupported:
                return Outcome("rejected", step)
            answer = await self._attempt(send, step)
            if answer == UNSUPPORTED:
                await self._flag_unsupported(send)
                return Outcome("rejected", step)
            following = next_fallback(step, answer, units=charger.units)
            if isinstance(following, Attempt) and following.step is Fallback.MINIMUM and last is not Fallback.MINIMUM:
                return Outcome("rejected", step)
            step = following
        return step

    async def _flag_unsupported(self, send: Send) -> None:
        """A CALLERROR NotImplemented/NotSupported: no profile will do, so none is sent until it reconnects."""
        if send.charger_id in self.unsupported:
            return
        self.unsupported.add(send.charger_id)
        log.warning("%s does not support SetChargingProfile; left alone until it reconnects", self._identity(send))
        await self._write_capability(send.charger_id, profiles_unsupported=True)

    async def _settle(self, send: Send, outcome: Outcome) -> bool:
        if outcome.state not in ("limited", "paused"):
            log.info("%s/%s: profile %s", self._identity(send), send.connector, outcome.state)
            return False
        if outcome.pause_unsupported:
            await self._write_capability(send.charger_id, pause_unsupported=True)
        if outcome.attempt.purpose == DEFAULT:
            await self._drop_transaction_profile(send)
        return True

    async def _drop_transaction_profile(self, send: Send) -> None:
        """The ladder left TxProfile: clear it on the charger, or it overrides the fallback (R-12)."""
        answer = await self._command(send, "clear_charging_profile", {"id": TX_PROFILE_BASE + send.connector})
        old = self.view.profiles.get((send.charger_id, send.connector, TX))
        decided, before = in_force(old)
        reserved = None if answer != TIMEOUT or not decided else before
        row = ProfileRow(
            send.charger_id, send.connector, TX, send.limit or 0, "rejected", reserved, send.transaction_id
        )
        await self._save(row, {"profile_id": TX_PROFILE_BASE + send.connector})

    async def _default(self, send: Send) -> bool:
        """A TxDefault (idle pause R-41, failsafe R-88): A, then W; never the 6 A rung."""
        attempt = self._first_attempt(send)
        assert attempt is not None
        outcome = await self._walk(send, attempt, last=Fallback.POWER)
        return outcome.state in ("limited", "paused")

    async def _clear(self, send: Send) -> bool:
        base = TX_PROFILE_BASE if send.purpose == TX else TX_DEFAULT_BASE
        answer = await self._command(send, "clear_charging_profile", {"id": base + send.connector})
        if answer == TIMEOUT and send.purpose == DEFAULT:
            return False
        await asyncio.gather(*self._recorded)  # a row of this key still queued must not land after the delete
        async with term_write(self.runtime, self.commands) as conn:
            await store.delete_profile(conn, send.charger_id, send.connector, send.purpose)
        self._changes[(send.charger_id, send.connector, send.purpose)] = None
        return True

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, send: Send, attempt: Attempt) -> str:
        """Store the attempt as pending (unless `_prepare` did), send it, record the answer; the answer word."""
        prepared = self._prepared.pop(send, None)
        if prepared is None or prepared.attempt != attempt:
            prepared = self._pending(send, attempt)
            await self._enqueue([(prepared.row, prepared.values)])
        row, values = prepared.row, prepared.values
        args = {"connector_id": send.connector, "profile": prepared.profile}
        answer = await self._command(send, "set_charging_profile", args)
        # The answer's row need not be stored before the next send: the pending row already says
        # the worst. `execute` waits for every recorded row before the phase ends.
        if answer == "Accepted":
            self._record(replace(row, status="accepted", reserved=None), {**values, "acknowledged_at": self._now()})
        elif answer == TIMEOUT:
            self._record(replace(row, status="timeout"), {k: v for k, v in values.items() if k != "acknowledged_at"})
        else:
            decided, before = in_force(self.view.profiles.get(_key(row)))
            rejected = replace(row, status="rejected", reserved=before if decided else None)
            self._record(rejected, {**values, "acknowledged_at": self._now()})
        return answer

    def _pending(self, send: Send, attempt: Attempt) -> Prepared:
        """The profile of an attempt and its pending row: the worst limit that may be in force once sent."""
        profile = self._profile(send, attempt)
        values = {
            "stack_level": profile["stackLevel"],
            "profile_id": profile["chargingProfileId"],
            "unit": attempt.unit,
            "sent_at": self._now(),
            "acknowledged_at": None,
        }
        reserve = max(self._worst(send), attempt.limit)
        tx = send.transaction_id if attempt.purpose == TX else None
        row = ProfileRow(send.charger_id, send.connector, attempt.purpose, attempt.limit, "pending", reserve, tx)
        return Prepared(attempt, profile, row, values)

    def _profile(self, send: Send, attempt: Attempt) -> dict[str, Any]:
        level = self.view.chargers[send.charger_id].max_stack_level
        top = 1 if level is None else min(1, level)
        return build_profile(
            attempt,
            send.connector,
            self._now(),
            transaction_id=send.transaction_id,
            phases=send.phases,
            tx_stack_level=top,
            default_stack_level=0 if send.connector == 0 else top,
        )

    def _worst(self, send: Send) -> int:
        connector: ConnectorRow | None = self.connectors.get((send.charger_id, send.connector))
        if connector is not None:
            return worst(self.view, connector)
        return effective_failsafe(self.view, send.charger_id, send.connector_max)

    async def _command(self, send: Send, command: str, args: dict[str, Any]) -> str:
        """The charger's status word; `timeout` when it is offline or silent; Rejected for a CALLERROR."""
        try:
            result = await self.commands.send(self._identity(send), command, args)
        except (ChargerOfflineError, ChargerTimeoutError):
            return TIMEOUT
        except CommandFailedError as error:
            log.info("%s: %s failed: %s", self._identity(send), command, error)
            return UNSUPPORTED if error.code in UNSUPPORTED_CODES else "Rejected"
        return str(result.get("status", "Rejected"))

    async def _save(self, row: ProfileRow, values: dict[str, Any]) -> None:
        """Store a row before going on."""
        await self._enqueue([(row, values)])

    def _record(self, row: ProfileRow, values: dict[str, Any]) -> None:
        """Store a row without waiting; `execute` waits for it before it returns."""
        self._recorded.append(self._enqueue([(row, values)]))

    def _enqueue(self, rows: Sequence[tuple[ProfileRow, dict[str, Any]]]) -> asyncio.Future[None]:
        """Queue rows for the writer task; rows queued in the same loop turn share one write transaction."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._saves.extend((row, values, done) for row, values in rows)
        self._changes.update((_key(row), row) for row, _ in rows)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_saves())
        return done

    async def _write_saves(self) -> None:
        # 1,000 chargers answering together would otherwise queue 1,000 writer transactions. One
        # task writes the batches in order, so a later row of a key never lands before an earlier one.
        while self._saves:
            saves, self._saves = self._saves, []
            try:
                async with term_write(self.runtime, self.commands) as conn:
                    await store.save_profiles(conn, [(row, values) for row, values, _ in saves], self._now())
            except Exception as error:  # task boundary: every waiting send sees the failure
                for _, _, done in saves:
                    if not done.done():
                        done.set_exception(error)
                continue
            waiting = list(dict.fromkeys(done for _, _, done in saves))
            for start in range(0, len(waiting), RESUME_CHUNK):
                for done in waiting[start : start + RESUME_CHUNK]:
                    if not done.done():
                        done.set_result(None)
                await asyncio.sleep(0)

    async def _write_capability(self, charger_id: int, **values: Any) -> None:
        self.capabilities_changed = True
        async with term_write(self.runtime, self.commands) as conn:
            await store.save_capabilities(conn, charger_id, values)

    def _identity(self, send: Send) -> str:
        return self.view.chargers[send.charger_id].identity

    def _now(self) -> datetime:
        return self.runtime.clock.now()


def _count_old(starts: Iterable[float], cutoff: float) -> int:
    """How many of the start times (oldest first) are at or before `cutoff`."""
    return sum(1 for _ in takewhile(lambda at: at <= cutoff, starts))
