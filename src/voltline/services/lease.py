"""The control lease: the control loops and housekeeping run in exactly one process (DESIGN "Cluster").

Holding. On PostgreSQL the lease is a session-level advisory lock taken on a connection of its
own (store/leases.py `LeaseSession`). Every process that may hold it (roles `all` and `worker`)
tries `pg_try_advisory_lock` every `RETRY_SECONDS`; the holder sends a query on that session every
`KEEP_ALIVE_SECONDS`. The session sets `idle_session_timeout = IDLE_TIMEOUT_SECONDS`, so a holder
that dies (SIGKILL: the socket closes, PostgreSQL frees the lock at once) or stalls (SIGSTOP: it
stops querying, PostgreSQL ends its session after the timeout) gives the lock up, and a waiting
process takes it within IDLE_TIMEOUT + RETRY seconds (about 5 s; the cluster tests ask 10). A
holder whose keep-alive fails, or takes longer than `KEEP_ALIVE_TIMEOUT_SECONDS`, steps down at
once: before PostgreSQL could have given the lock to anyone else. These waits are on real time,
not the injectable clock: PostgreSQL's idle timeout runs on real time whatever a test's clock
says. On SQLite the lease is held from start to stop: one box, one `serve` (the serve lock,
cli/serve.py).

Epochs. Right after taking the lock the new holder raises the lease's epoch in the store
(`control_leases`, on the locked session), so epochs strictly rise across takeovers. It
announces the epoch on the bus (`EPOCH_SUBJECT`), before its duties start and again with every
keep-alive, and its duties send their commands through `Commands.fenced(epoch)`.

Fencing the store. The holder's duties write through `term_write`: on PostgreSQL each such
transaction share-locks the epoch row and checks it is still its own (store/leases.py
`hold_epoch`), so a stalled old holder's write that wakes up after a takeover is refused
(LeaseLostError, and the term ends) or, stalled inside its transaction, never commits.

Fencing commands. Each gateway keeps the highest epoch it has seen (`EpochFence`: from the store at start,
the announcements and the commands themselves) and answers a command of a lower epoch `fenced`
without calling the charger. A paused old holder that wakes up (SIGCONT) after a takeover may
send commands before it notices its session is gone; those are refused, and the first refusal
makes it step down. Commands from users carry no epoch and are never fenced.

Duties. While it holds the lease a process runs its duties (smart-charging control, housekeeping,
price fetch), made fresh for each term by the factory it was given, so nothing of an earlier term
carries over; losing the lease stops them before anything else happens. The log says `control
lease acquired (epoch N)` and `control lease lost (epoch N): why` once per term; the metrics
`voltline_control_lease_held` and `voltline_control_lease_epoch` say the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from voltline import codec
from voltline.bus import Subscription
from voltline.errors import LeaseLostError
from voltline.services.commands import Commands
from voltline.services.runtime import Runtime
from voltline.store import leases
from voltline.tasks import abandon, cancel_and_wait, wait_event_or

log = logging.getLogger("voltline.lease")

EPOCH_SUBJECT = "control.epoch"
RETRY_SECONDS = 1.0
KEEP_ALIVE_SECONDS = 1.0
KEEP_ALIVE_TIMEOUT_SECONDS = 1.5  # last keep-alive + 1 + 1.5 < IDLE_TIMEOUT: gone before the lock is free
IDLE_TIMEOUT_SECONDS = 4.0
TAKE_TIMEOUT_SECONDS = 10.0  # for the lock and the epoch (the epoch waits for earlier terms' writes to end)
TERM_WRITE_IDLE_SECONDS = 5.0  # a holder's write transaction stalled this long is ended by PostgreSQL
FENCED_REASON = "a gateway or the store has a higher epoch"


class Duty(Protocol):
    """Something only the lease holder runs."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


DutyFactory = Callable[[Commands], Sequence[Duty]]


def encode_epoch(epoch: int) -> bytes:
    """The payload of an epoch announcement."""
    return codec.encode_json({"epoch": epoch})


def decode_epoch(data: bytes) -> int | None:
    """The epoch of an announcement; None for a payload that is not one."""
    try:
        epoch = codec.decode_json(data).get("epoch")
    except (ValueError, AttributeError):
        return None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


@contextlib.asynccontextmanager
async def term_write(runtime: Runtime, commands: Commands) -> AsyncIterator[AsyncConnection]:
    """A write transaction of the term whose commands these are; LeaseLostError once a newer term began.

    Commands without an epoch (one box, or a test) write as `db.write()` does; so does SQLite,
    where one process holds the lease for its whole run.
    """
    async with runtime.db.write() as conn:
        if commands.epoch is not None and not runtime.db.is_sqlite:
            current = await leases.hold_epoch(conn, TERM_WRITE_IDLE_SECONDS)
            if current != commands.epoch:
                commands.end_term(current)
                raise LeaseLostError(commands.epoch, current)
        yield conn


class ControlLease:
    """Takes the control lease when it can, runs the duties while held, steps down when it is lost."""

    def __init__(self, runtime: Runtime, duties: DutyFactory) -> None:
        self.runtime = runtime
        self._make_duties = duties
        self.holder = runtime.node_id
        self.epoch: int | None = None  # of the term held now (None: not holding)
        self._duties: Sequence[Duty] = ()
        self._fenced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: leases.LeaseSession | None = None
        held_help = "1 while this process holds the control lease."
        runtime.metrics.gauge("voltline_control_lease_held", held_help, (), self._held)
        epoch_help = "The control lease's epoch of this process's term (0 when not holding)."
        runtime.metrics.gauge("voltline_control_lease_epoch", epoch_help, (), self._epoch)

    @property
    def holding(self) -> bool:
        """This process holds the lease now."""
        return self.epoch is not None

    def _held(self) -> dict[tuple[str, ...], float]:
        return {(): 1.0 if self.holding else 0.0}

    def _epoch(self) -> dict[tuple[str, ...], float]:
        return {(): float(self.epoch or 0)}

    async def start(self) -> None:
        """SQLite: take the lease now. PostgreSQL: try once now, then keep trying (and holding) in the background."""
        if self.runtime.db.is_sqlite:
            async with self.runtime.db.write() as conn:
                epoch = await leases.raise_epoch(conn, self.holder, self.runtime.clock.now())
            await self._take(epoch)
            return
        self._session = leases.LeaseSession(self.runtime.db.url, IDLE_TIMEOUT_SECONDS)
        first = await self._try_once(self._session)
        self._task = asyncio.create_task(self._run(self._session, first), name="voltline-control-lease")

    async def stop(self) -> None:
        """Stop the duties and give the lease back."""
        await cancel_and_wait([self._task])
        self._task = None
        await self._step_down("this process stops", quiet=True)
        if self._session is not None:
            await self._session.close()
            await self._session.dispose()
            self._session = None

    async def _try_once(self, session: leases.LeaseSession) -> bool:
        """One try for the lock; on success the epoch is raised and the duties run. False on any failure."""
        try:
            async with asyncio.timeout(TAKE_TIMEOUT_SECONDS):
                if not await session.try_lock():
                    return False
                epoch = await session.raise_epoch(self.holder, self.runtime.clock.now())
        except Exception as error:  # a database away, a session ended, a wait too long: try again later
            log.debug("control lease: cannot try the lock: %s", error)
            await session.close()
            return False
        try:
            await self._take(epoch)
        except Exception:  # task boundary: a duty that cannot start gives the lease back for another to try
            log.exception("control lease: the duties of epoch %d did not start", epoch)
            await self._step_down("its duties did not start")
            await session.close()
            return False
        return True

    async def _run(self, session: leases.LeaseSession, holding: bool) -> None:
        while True:
            if holding:
                reason = await self._hold(session)
                await self._step_down(reason)
                # The lock goes with the session (if PostgreSQL has not ended it already). close()
                # lets go of the session at once, so one that would not close is simply left behind.
                closing = asyncio.ensure_future(session.close())
                if not (await asyncio.wait({closing}, timeout=KEEP_ALIVE_TIMEOUT_SECONDS))[0]:
                    abandon(closing)
            await asyncio.sleep(RETRY_SECONDS)  # real time, as PostgreSQL's idle_session_timeout
            holding = await self._try_once(session)

    async def _hold(self, session: leases.LeaseSession) -> str:
        """Keep the session alive and re-announce the epoch until the lease is lost; why it was.

        The keep-alive is waited for KEEP_ALIVE_TIMEOUT_SECONDS of real time at most, and not
        after a fencing. A keep-alive on a session PostgreSQL ended while this process was
        stopped has been seen to outlast an `asyncio.timeout` around it by many seconds (SIGSTOP,
        then SIGCONT, in the cluster tests), so it is not waited for once cancelled: the holder
        steps down all the same, and `session.close()` is bounded the same way.
        """
        while True:
            if await wait_event_or(self._fenced, asyncio.sleep(KEEP_ALIVE_SECONDS)):
                return FENCED_REASON
            keep_alive = asyncio.ensure_future(session.keep_alive())
            fenced = asyncio.ensure_future(self._fenced.wait())
            try:
                waiters = {keep_alive, fenced}
                await asyncio.wait(waiters, timeout=KEEP_ALIVE_TIMEOUT_SECONDS, return_when=FIRST_COMPLETED)
            finally:  # also when the lease stops: nothing of this round is left waiting
                fenced.cancel()
                answered = keep_alive.done()
                if not answered:
                    abandon(keep_alive)
            if not answered:
                if self._fenced.is_set():
                    return FENCED_REASON
                return f"the lease session did not answer within {KEEP_ALIVE_TIMEOUT_SECONDS:g} s"
            error = keep_alive.exception()
            if error is not None:  # the session ended (stall, restart): someone else may hold it soon
                return f"the lease session failed: {type(error).__name__}: {error}".splitlines()[0]
            await self._announce()

    async def _take(self, epoch: int) -> None:
        """The lease is ours at `epoch`: announce it, then start this term's duties."""
        self.epoch = epoch
        self._fenced = asyncio.Event()
        log.info("control lease acquired (epoch %d) by %s", epoch, self.holder)
        await self._announce()
        commands = self.runtime.commands.fenced(epoch, lambda higher: self._on_fenced(epoch, higher))
        self._duties = list(self._make_duties(commands))
        for duty in self._duties:
            await duty.start()

    def _on_fenced(self, epoch: int, higher: int) -> None:
        log.warning("control lease: the term of epoch %d is over (a gateway or the store has %d)", epoch, higher)
        if self.epoch == epoch:
            self._fenced.set()

    async def _announce(self) -> None:
        if self.epoch is None:
            return
        with contextlib.suppress(Exception):  # the bus reconnects by itself; the next keep-alive announces again
            await self.runtime.bus.publish(EPOCH_SUBJECT, encode_epoch(self.epoch))

    async def _step_down(self, reason: str, *, quiet: bool = False) -> None:
        """Stop this term's duties (first, before anything else) and forget the epoch."""
        duties, self._duties = self._duties, ()
        for duty in reversed(duties):
            try:
                await duty.stop()
            except Exception:  # task boundary: the other duties must stop too
                log.exception("control lease: a duty did not stop cleanly")
        epoch, self.epoch = self.epoch, None
        if epoch is not None and not quiet:
            log.warning("control lease lost (epoch %d): %s", epoch, reason)


class EpochFence:
    """A gateway's memory of the highest control-lease epoch seen: commands of a lower one are refused."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.highest = 0
        self._subscription: Subscription | None = None
        runtime.metrics.gauge(
            "voltline_control_epoch_seen", "The highest control-lease epoch this gateway has seen.", (), self._seen
        )

    def _seen(self) -> dict[tuple[str, ...], float]:
        return {(): float(self.highest)}

    async def start(self) -> None:
        """Listen for announcements, then read the epoch in the store (the holder's, when there is one)."""
        self._subscription = await self.runtime.bus.listen(EPOCH_SUBJECT, self._on_announcement)
        async with self.runtime.db.read() as conn:
            self.see(await leases.get_epoch(conn))

    async def stop(self) -> None:
        """Stop listening."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    async def _on_announcement(self, _subject: str, data: bytes) -> None:
        epoch = decode_epoch(data)
        if epoch is not None:
            self.see(epoch)

    def see(self, epoch: int) -> None:
        """An epoch was announced or carried by a command."""
        self.highest = max(self.highest, epoch)

    def refuse(self) -> None:
        """A command of a lower epoch was refused (`voltline_commands_fenced_total`)."""
        self.runtime.metrics.commands_fenced.inc()

    def admits(self, epoch: int | None) -> bool:
        """True for a user's command (no epoch) and for an epoch no lower than any seen."""
        return epoch is None or epoch >= self.highest
