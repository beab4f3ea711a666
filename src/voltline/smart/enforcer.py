"""Carrying out a site's profile sends over the commands service, and recording every answer.

One `Enforcer` per control run. Sends of different chargers go out together; those of one charger
one after the other (the gateway keeps one call in flight per charger anyway). A TxProfile that
the charger refuses walks the fallback ladder of smart/profiles.py (R-19, R-43); a TxDefault for
an idle connector or the failsafe tries A then W, never the 6 A rung. Before each attempt the
row is stored `pending` with the worst limit that may then be in force, and after the answer
`accepted`, `rejected` or `timeout` (module docstring of smart/scheduler.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from voltline.errors import ChargerOfflineError, ChargerTimeoutError, CommandFailedError
from voltline.runtime import Runtime
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
from voltline.smart.scheduler import (
    DEFAULT,
    TX,
    ConnectorRow,
    ProfileRow,
    Send,
    SiteView,
    effective_failsafe,
    in_force,
    worst,
)
from voltline.store import smart as store

log = logging.getLogger("voltline.smart")

TIMEOUT = "timeout"
# Senders resumed per loop turn after a shared write: each then encodes and sends a profile, so
# this bounds the work done between two yields to the loop (STYLE: nothing slow on the event loop).
RESUME_CHUNK = 25


class Enforcer:
    """Sends one phase of profile changes for a site and returns the connectors it could not steer."""

    def __init__(self, runtime: Runtime, view: SiteView) -> None:
        self.runtime = runtime
        self.view = view
        self.connectors = {(c.charger_id, c.number): c for c in view.connectors}
        self._saves: list[tuple[ProfileRow, dict[str, Any], asyncio.Future[None]]] = []
        self._writing: set[asyncio.Task[None]] = set()

    async def execute(self, sends: Sequence[Send]) -> set[int]:
        """Carry out the sends; the ids of transaction connectors left unacknowledged or refused."""
        by_charger: dict[int, list[Send]] = defaultdict(list)
        for send in sends:
            by_charger[send.charger_id].append(send)
        results = await asyncio.gather(*(self._charger(items) for items in by_charger.values()))
        return set().union(*results) if results else set()

    async def _charger(self, sends: list[Send]) -> set[int]:
        failed: set[int] = set()
        for send in sends:
            ok = await self._one(send)
            connector = self.connectors.get((send.charger_id, send.connector))
            if not ok and connector is not None and send.purpose == TX and send.limit is not None:
                failed.add(connector.id)
        return failed

    async def _one(self, send: Send) -> bool:
        if send.limit is None:
            return await self._clear(send)
        if send.purpose == TX:
            return await self._transaction(send)
        return await self._default(send)

    # ------------------------------------------------------------------ the three kinds of send

    async def _transaction(self, send: Send) -> bool:
        """R-19/R-43: TxProfile, then the connector's TxDefault, then W, then 6 A for a pause."""
        charger = self.view.chargers[send.charger_id]
        attempt: Attempt | Outcome = first_attempt(send.limit or 0, has_transaction=True, units=charger.units)
        if send.limit == 0 and charger.pause_unsupported:
            unit = "A" if "A" in charger.units else "W"
            attempt = Attempt(Fallback.TX_PROFILE, TX, unit, MIN_TENTHS, pause_unsupported=True)
        while isinstance(attempt, Attempt):
            answer = await self._attempt(send, attempt)
            attempt = next_fallback(attempt, answer, units=charger.units)
        return await self._settle(send, attempt)

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
        charger = self.view.chargers[send.charger_id]
        attempt: Attempt | Outcome = first_attempt(send.limit or 0, has_transaction=False, units=charger.units)
        while isinstance(attempt, Attempt) and attempt.step is not Fallback.MINIMUM:
            answer = await self._attempt(send, attempt)
            attempt = next_fallback(attempt, answer, units=charger.units)
        return isinstance(attempt, Outcome) and attempt.state in ("limited", "paused")

    async def _clear(self, send: Send) -> bool:
        base = TX_PROFILE_BASE if send.purpose == TX else TX_DEFAULT_BASE
        answer = await self._command(send, "clear_charging_profile", {"id": base + send.connector})
        if answer == TIMEOUT and send.purpose == DEFAULT:
            return False
        async with self.runtime.db.write() as conn:
            await store.delete_profile(conn, send.charger_id, send.connector, send.purpose)
        return True

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, send: Send, attempt: Attempt) -> str:
        """Store the attempt as pending, send it, store the answer; the answer word."""
        key = (send.charger_id, send.connector, attempt.purpose)
        old = self.view.profiles.get(key)
        profile = self._profile(send, attempt)
        extra = {
            "stack_level": profile["stackLevel"],
            "profile_id": profile["chargingProfileId"],
            "unit": attempt.unit,
            "sent_at": self._now(),
        }
        reserve = max(self._worst(send), attempt.limit)
        tx = send.transaction_id if attempt.purpose == TX else None
        await self._save(ProfileRow(*key, attempt.limit, "pending", reserve, tx), {**extra, "acknowledged_at": None})
        answer = await self._command(send, "set_charging_profile", {"connector_id": send.connector, "profile": profile})
        if answer == "Accepted":
            row = ProfileRow(*key, attempt.limit, "accepted", None, tx)
            await self._save(row, {**extra, "acknowledged_at": self._now()})
        elif answer == TIMEOUT:
            await self._save(ProfileRow(*key, attempt.limit, "timeout", reserve, tx), extra)
        else:
            decided, before = in_force(old)
            row = ProfileRow(*key, attempt.limit, "rejected", before if decided else None, tx)
            await self._save(row, {**extra, "acknowledged_at": self._now()})
        return answer

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
            result = await self.runtime.commands.send(self._identity(send), command, args)
        except (ChargerOfflineError, ChargerTimeoutError):
            return TIMEOUT
        except CommandFailedError as error:
            log.info("%s: %s failed: %s", self._identity(send), command, error)
            return "Rejected"
        return str(result.get("status", "Rejected"))

    async def _save(self, row: ProfileRow, values: dict[str, Any]) -> None:
        """Store a row before going on; rows saved in the same loop turn share one write transaction."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._saves.append((row, values, done))
        if len(self._saves) == 1:
            self._writing.add(task := asyncio.create_task(self._write_saves()))
            task.add_done_callback(self._writing.discard)
        await done

    async def _write_saves(self) -> None:
        # 1,000 chargers answering together would otherwise queue 1,000 writer transactions.
        saves, self._saves = self._saves, []
        try:
            async with self.runtime.db.write() as conn:
                for row, values, _ in saves:
                    await store.save_profile(conn, row, values)
        except Exception as error:  # task boundary: every waiting send sees the failure
            for _, _, done in saves:
                done.set_exception(error)
            return
        for start in range(0, len(saves), RESUME_CHUNK):
            for _, _, done in saves[start : start + RESUME_CHUNK]:
                done.set_result(None)
            await asyncio.sleep(0)

    async def _write_capability(self, charger_id: int, **values: Any) -> None:
        async with self.runtime.db.write() as conn:
            await store.save_capabilities(conn, charger_id, values)

    def _identity(self, send: Send) -> str:
        return self.view.chargers[send.charger_id].identity

    def _now(self) -> datetime:
        return self.runtime.clock.now()
