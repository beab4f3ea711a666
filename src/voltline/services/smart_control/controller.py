"""The smart-charging control loop: one serialised, debounced run per site (spec/smart-charging.md §9).

Events on the bus (`smart.events`: boot, connected, disconnected, status, start, stop, meter,
settings, detached) wake the site they concern; a charger that left its site (detached, or
connecting while on no site) has our profiles cleared from it (`release`). A woken site waits
`VOLTLINE_SMART_DEBOUNCE` seconds on the injectable clock (a burst becomes one run), then runs:
load the site's view from the store, compute the gate (off-peak window R-50, price R-66) and
the allocation (R-80..R-83, R-87), and send the profile changes in two phases (R-85): pauses
and decreases first, the rest once those are acknowledged. A decrease that is refused or
unanswered keeps its old limit reserved, the allocation is made again with it held, and
increases wait (DESIGN; at most `ROUNDS` tries). After each phase the view takes the rows the
enforcer stored, without a reload. A site also wakes by timer: at the gate's next change
(window edge, price slot), every `VOLTLINE_SMART_METER_INTERVAL` seconds when a group has a
meter or idle reclaim watches its connectors (R-84, smart/reclaim.py: the watches are kept here,
per site, between runs), and after `VOLTLINE_SMART_RETRY_INTERVAL` seconds while profiles wait
for an answer.

State lives in the store (charging_profiles, charger_capabilities), so a restarted server goes
on from where the last one stopped. A charger gets nothing before a BootNotification of
it was Accepted (DESIGN "Load management"; until then it counts as offline, R-87). A reconnect of
a charger that booted before, or a new Accepted boot, marks its profiles stale so that the full
set is sent again (R-89), and has its configuration read (R-17). A site with `load_management` off is not
balanced (smart/scheduler.py): no failsafe, no idle reclaim, only the gates and caps limit.
After each run the site's picture (smart/scheduler.py `snapshot`) is stored (store/power_pictures.py),
so that any process can serve the site's power management (DESIGN "Cluster").
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import RowMapping

from voltline.bus import Subscription
from voltline.bus.events import SMART_EVENTS, decode_event
from voltline.domain.site_view import SiteView
from voltline.errors import (
    ChargerNotBootedError,
    ChargerOfflineError,
    ChargerTimeoutError,
    CommandFailedError,
    VoltlineError,
)
from voltline.services.commands import Commands
from voltline.services.lease import term_write
from voltline.services.pricing import site_gate_now
from voltline.services.runtime import Runtime
from voltline.services.smart_control.enforcer import Enforcer
from voltline.smart import reclaim, scheduler
from voltline.smart.gates import Gate
from voltline.smart.prices import smart_fraction
from voltline.smart.scheduler import Decision
from voltline.store import smart as store
from voltline.store.power_pictures import delete_power_picture, encode_power_picture, save_power_picture
from voltline.tasks import cancel_and_wait, wait_event_or

log = logging.getLogger("voltline.smart")

ROUNDS = 3  # allocations per run when decreases go unacknowledged
# Connectors; above this a run's pure steps (the allocation, the sends it needs, the connectors'
# states) run in a thread (STYLE: nothing slow on the loop; bench/smart.py: planning 1,000
# connectors' sends took ~6 ms on the loop).
BIG_SITE = 200
CONFIGURATION_KEYS = [
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods",
    "MaxChargingProfilesInstalled",
    "ConnectorSwitch3to1PhaseSupported",
]
RECONNECTING = ("boot", "connected")  # R-89; a charger never Accepted is not reachable (store/smart.py)
P = ParamSpec("P")
T = TypeVar("T")
METER_STALE = 60.0  # seconds: a group meter reading older than max(2 x meter interval, this) is stale


@dataclass
class SiteLoop:
    """One site's wake-up state: an event, the chargers that came back, and the timer."""

    site_id: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    reconnected: dict[int, int] = field(default_factory=dict)  # charger -> the tick its reconnect was heard at
    released: set[int] = field(default_factory=set)
    due: float | None = None
    task: asyncio.Task[None] | None = None

    def poke(self, charger_id: int | None = None, released: int | None = None, at: int = 0) -> None:
        """Ask for a run (noting a reconnected charger and when, or one that left the site)."""
        if charger_id is not None:
            self.reconnected[charger_id] = at
        if released is not None:
            self.released.add(released)
        self.wake.set()


def _plan(view: SiteView, gate: Gate, failed: frozenset[int], caps: dict[int, int]) -> list[scheduler.Send]:
    """The sends of this round: allocate with the failed connectors' limits held, then plan (R-85)."""
    decision = scheduler.decide(view, gate, scheduler.fixed_connectors(view, failed), caps)
    return scheduler.plan_sends(view, decision, gate)


def _settle(view: SiteView, gate: Gate, caps: dict[int, int]) -> tuple[Decision, dict[int, str], dict[int, str]]:
    """After the phases: the allocation as it stands, each connector's state, and the states that changed."""
    decision = scheduler.decide(view, gate, scheduler.fixed_connectors(view), caps)
    states = scheduler.connector_states(view, decision, gate)
    return decision, states, store.stale_connector_ids(view, states)


def _picture(view: SiteView, decision: Decision, gate: Gate, states: dict[int, str], now: datetime) -> str:
    """The run's picture as stored: gate, groups with capacity and allocation, each connector's limit and reason."""
    return encode_power_picture(scheduler.snapshot(view, decision, gate, states, now))


class SmartCharging:
    """The per-site control loops of this process."""

    def __init__(self, runtime: Runtime, commands: Commands | None = None) -> None:
        self.runtime = runtime
        # The control lease's term (services/lease.py): its commands carry the epoch, DESIGN "Cluster".
        self.commands = runtime.commands if commands is None else commands
        self.settings = runtime.settings
        self.clock = runtime.clock
        self._sites: dict[int, SiteLoop] = {}
        self._sizes: dict[int, int] = {}  # connectors per site in its last run (`_collect_young`)
        self._watches: dict[int, dict[int, reclaim.Watch]] = {}  # R-84 per site, by connector id
        self._subscription: Subscription | None = None
        self._releases: set[asyncio.Task[None]] = set()
        # Reconnects heard and flags set (profiles_unsupported, R-87) in the order they happened.
        self._ticks = itertools.count()
        self._flagged_at: dict[int, int] = {}

    async def start(self) -> None:
        """Listen for events and look at every site with chargers once."""
        self._subscription = await self.runtime.bus.listen(SMART_EVENTS, self._on_event)
        async with self.runtime.db.scan() as conn:
            site_ids = await store.list_controlled_site_ids(conn)
        for site_id in site_ids:
            self.poke(site_id)

    async def stop(self) -> None:
        """Stop listening and end every site loop."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        await cancel_and_wait([*(site.task for site in self._sites.values()), *self._releases])
        self._sites.clear()

    def poke(self, site_id: int, charger_id: int | None = None, released: int | None = None) -> None:
        """Wake a site's loop (starting it on first use)."""
        site = self._sites.get(site_id)
        if site is None:
            site = self._sites[site_id] = SiteLoop(site_id)
            site.task = asyncio.create_task(self._run_loop(site), name=f"voltline-smart-site-{site_id}")
        site.poke(charger_id, released, next(self._ticks))

    async def _on_event(self, _subject: str, data: bytes) -> None:
        try:
            event = decode_event(data)
            kind, site_id, charger_id = event["kind"], event.get("site_id"), event.get("charger_id")
            if kind == "detached" and isinstance(charger_id, int) and isinstance(site_id, int):
                self.poke(site_id, released=charger_id)  # after any run of the site under way
                return
            if site_id is None and isinstance(charger_id, int):
                async with self.runtime.db.read() as conn:
                    site_id = await store.get_charger_site_id(conn, charger_id)
                if site_id is None and kind in RECONNECTING:
                    self._release_later(charger_id)  # left its site while offline
            if isinstance(site_id, int):
                self.poke(site_id, charger_id if kind in RECONNECTING else None)
        except Exception:  # task boundary: one bad event must not stop the listener
            log.exception("smart charging: could not handle an event")

    # ------------------------------------------------------------------ a charger that left its site

    def _release_later(self, charger_id: int) -> None:
        task = asyncio.create_task(self.release(charger_id), name=f"voltline-smart-release-{charger_id}")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def release(self, charger_id: int) -> None:
        """Clear our profiles from a charger that is on no site any more; kept on record while it is offline."""
        try:
            async with self.runtime.db.read() as conn:
                left = await store.get_left_charger(conn, charger_id)
            if left is None:
                return  # on a site (its loop owns the profiles), gone, or nothing installed
            identity, profile_ids = left
            for profile_id in profile_ids:
                try:
                    await self.commands.send(identity, "clear_charging_profile", {"id": profile_id})
                except ChargerOfflineError:
                    return  # cleared when it connects again
                except (ChargerTimeoutError, CommandFailedError) as error:
                    log.info("%s: could not clear profile %s: %s", identity, profile_id, error)
            async with term_write(self.runtime, self.commands) as conn:
                await store.delete_charger_profiles(conn, charger_id)
        except Exception:  # task boundary
            log.exception("smart charging: could not release charger %s", charger_id)

    # ------------------------------------------------------------------ the site loop

    async def _run_loop(self, site: SiteLoop) -> None:
        while True:
            await self._until_woken(site)
            await self.clock.sleep(self.settings.smart_debounce)
            site.wake.clear()
            heard, site.reconnected = site.reconnected, {}
            reconnected = self._retried(heard)
            released, site.released = site.released, set()
            for charger_id in sorted(released):  # serialised with the site's runs: none is sending to it
                await self.release(charger_id)
            started = time.perf_counter()
            try:
                delay = await self.run_site(site.site_id, reconnected)
                self.runtime.metrics.smart_run("ok", time.perf_counter() - started)
            except Exception:  # task boundary: log, try again later
                self.runtime.metrics.smart_run("failed", time.perf_counter() - started)
                log.exception("smart charging: the run of site %s failed", site.site_id)
                site.reconnected = {**heard, **site.reconnected}
                delay = self.settings.smart_retry_interval
            site.due = None if delay is None else self.clock.monotonic() + delay

    def _retried(self, heard: dict[int, int]) -> set[int]:
        """R-89: the chargers whose reconnect retries them, each once per connection.

        A connection announces itself twice (connected, then its BootNotification Accepted), and
        the two may wake two runs: a flag (profiles_unsupported) set after the reconnect was
        heard answers this connection, so the later announcement must not clear it again.
        """
        return {charger for charger, at in heard.items() if self._flagged_at.get(charger, -1) < at}

    async def _until_woken(self, site: SiteLoop) -> None:
        if site.wake.is_set():
            return
        if site.due is None:
            await site.wake.wait()
            return
        left = site.due - self.clock.monotonic()
        if left <= 0:
            return
        await wait_event_or(site.wake, self.clock.sleep(left))

    # ------------------------------------------------------------------ one run

    async def run_site(self, site_id: int, reconnected: set[int] | None = None) -> float | None:
        """One control run of a site; the seconds until it should run again (None: on events only)."""
        self._collect_young(site_id)
        if reconnected:
            async with term_write(self.runtime, self.commands) as conn:
                for charger_id in reconnected:
                    await store.mark_profiles_stale(conn, charger_id)
        loaded = await self._load(site_id)
        if loaded is None:
            self._sizes.pop(site_id, None)
            self._watches.pop(site_id, None)
            async with term_write(self.runtime, self.commands) as conn:
                await delete_power_picture(conn, site_id)
            return None
        site, view = loaded
        if reconnected and await self._read_capabilities(view, reconnected):
            view = await self._reload(site_id, view)
        now = self.clock.now()
        gate = await self._gate(site, now)
        caps = self._reclaim_caps(site_id, view)
        view, settled = await self._enforce(site_id, view, gate, caps)
        decision, states, changed = await self._pure(_settle, view, gate, caps)
        picture = await self._pure(_picture, view, decision, gate, states, now)
        async with term_write(self.runtime, self.commands) as conn:
            if changed:
                await store.set_connector_states(conn, changed, now)
            await save_power_picture(conn, site_id, picture, now)
        self._sizes[site_id] = len(view.connectors)
        watches = self._watches.get(site_id, {})
        watched = self.settings.smart_reclaim and view.balanced and reclaim.watching(watches, decision.allocations)
        return self._next_run(view, gate, now, settled, watched)

    def _collect_young(self, site_id: int) -> None:
        """Before a big site's run, collect the young generations, in a loop turn of their own.

        A run of 1,000 connectors comes after 1,000 answers whose sessions' objects are still young;
        left alone, their collection falls inside the run, in the middle of a busy turn
        (bench/smart.py: a 9-11 ms middle-generation collection on top of a 4-5 ms turn). Collected
        here it takes 2-7 ms on its own, and the run's own collections stay young and small.
        """
        if self._sizes.get(site_id, 0) > BIG_SITE:
            gc.collect(1)

    async def _enforce(self, site_id: int, view: SiteView, gate: Gate, caps: dict[int, int]) -> tuple[SiteView, bool]:
        """R-85: decreases first; increases only once every decrease is acknowledged."""
        await self._forget_finished(view)
        failed: set[int] = set()
        for _ in range(ROUNDS):
            sends = await self._pure(_plan, view, gate, frozenset(failed), caps)
            first = [send for send in sends if send.first]
            if first:
                enforcer = Enforcer(self.runtime, view, self.commands)
                newly = await enforcer.execute(first) - failed
                view = await self._after(site_id, enforcer)
                if newly or enforcer.capabilities_changed:  # allocate again before any increase
                    failed |= newly
                    continue
            rest = [send for send in sends if not send.first]
            if rest:
                enforcer = Enforcer(self.runtime, view, self.commands)
                await enforcer.execute(rest)
                view = await self._after(site_id, enforcer)
            return view, True
        return view, False

    async def _forget_finished(self, view: SiteView) -> None:
        """TxProfiles of transactions that ended while their charger is offline are simply forgotten."""
        rows = [r for r in scheduler.finished_rows(view) if not view.chargers[r.charger_id].reachable]
        if rows:
            async with term_write(self.runtime, self.commands) as conn:
                for row in rows:
                    await store.delete_profile(conn, row.charger_id, row.connector, row.purpose)

    async def _pure(
        self, step: Callable[Concatenate[SiteView, P], T], view: SiteView, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A pure step over the view: in a thread for a big site, where it would hold the loop too long."""
        if len(view.connectors) > BIG_SITE:
            return await asyncio.to_thread(step, view, *args, **kwargs)
        return step(view, *args, **kwargs)

    def _reclaim_caps(self, site_id: int, view: SiteView) -> dict[int, int]:
        """R-84: update the site's watches from this run's readings; the caps in force (none when not balanced)."""
        if not self.settings.smart_reclaim or not view.balanced:
            self._watches.pop(site_id, None)
            return {}
        watches = self._watches[site_id] = reclaim.observe(self._watches.get(site_id, {}), view)
        return reclaim.caps(watches)

    async def _load(self, site_id: int) -> tuple[RowMapping, SiteView] | None:
        fresh_after = self.clock.now() - timedelta(seconds=max(2 * self.settings.smart_meter_interval, METER_STALE))
        async with self.runtime.db.scan() as conn:
            return await store.load_site_view(
                conn, site_id, meter_fresh_after=fresh_after, draws=self.settings.smart_reclaim
            )

    async def _after(self, site_id: int, enforcer: Enforcer) -> SiteView:
        """The view after a phase: the enforcer's own rows, or a reload when a capability changed."""
        for charger_id in enforcer.unsupported:
            self._flagged_at[charger_id] = next(self._ticks)
        if enforcer.capabilities_changed:
            return await self._reload(site_id, enforcer.view)
        return enforcer.updated_view()

    async def _reload(self, site_id: int, view: SiteView) -> SiteView:
        loaded = await self._load(site_id)
        return view if loaded is None else loaded[1]

    async def _gate(self, site: RowMapping, now: datetime) -> Gate:
        """The site's gate now (R-50, R-66); a setting the gate cannot read leaves it open."""
        try:
            fraction = smart_fraction(self.settings.smart_mode_fraction)
            taxes = self.settings.consumer_taxes
            _, _, gate = await site_gate_now(self.runtime.db, site, now, fraction=fraction, taxes=taxes)
            return gate
        except VoltlineError as error:  # GateError, PriceFormatError
            log.warning("site %s: smart charging gate left open: %s", site["id"], error)
            return Gate(True, "disabled", None)

    async def _read_capabilities(self, view: SiteView, charger_ids: set[int]) -> bool:
        """R-17: read the smart-charging configuration of booted chargers that came back; failures are not fatal."""
        booted = [view.chargers[c] for c in charger_ids if c in view.chargers and view.chargers[c].reachable]
        results = await asyncio.gather(*(self._read_configuration(c.id, c.identity) for c in booted))
        return any(results)

    async def _read_configuration(self, charger_id: int, identity: str) -> bool:
        try:
            result = await self.commands.send(identity, "get_configuration", {"keys": CONFIGURATION_KEYS})
        except (ChargerOfflineError, ChargerTimeoutError, CommandFailedError) as error:
            log.warning("%s: could not read its smart-charging configuration: %s", identity, self._why(error))
            return False
        keys = result.get("configuration_key") or []
        async with term_write(self.runtime, self.commands) as conn:
            await store.save_capabilities(conn, charger_id, store.configuration_values(list(keys), self.clock.now()))
        return True

    def _why(self, error: VoltlineError) -> str:
        """Why a command did not reach an answer, in words for the log."""
        if isinstance(error, ChargerNotBootedError):
            return "no BootNotification of it was ever Accepted"
        if isinstance(error, ChargerOfflineError):
            return "it is offline"
        if isinstance(error, ChargerTimeoutError):
            return f"no answer within {self.settings.ocpp_call_timeout:g} s"
        if isinstance(error, CommandFailedError):
            return f"it answered CALLERROR {error.code}" + (f" ({error.description})" if error.description else "")
        return str(error)

    def _next_run(self, view: SiteView, gate: Gate, now: datetime, settled: bool, watched: bool) -> float | None:
        waits: list[float] = []
        if gate.next_change is not None:
            waits.append(max(0.0, (gate.next_change - now).total_seconds()))
        if watched or (view.balanced and any(group.meter is not None for group in view.groups)):
            waits.append(self.settings.smart_meter_interval)
        unanswered = any(
            row.status in ("pending", "timeout", "stale") and view.chargers[row.charger_id].reachable
            for row in view.profiles.values()
            if row.charger_id in view.chargers
        )
        if unanswered or not settled:
            waits.append(self.settings.smart_retry_interval)
        return min(waits) if waits else None
