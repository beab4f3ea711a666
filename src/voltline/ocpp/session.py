"""What a charger's inbound handlers may use (`SessionContext`) and its message log (`MessageLog`).

The connection that owns them, with its state, liveness and pending call, is ocpp/connection.py.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from voltline.bus import Bus
from voltline.bus.events import SMART_EVENTS, encode_event
from voltline.clock import Clock
from voltline.domain.frames import LogEntry
from voltline.domain.ids import ChargerId, SiteId, TeamId
from voltline.metrics import OcppCounts
from voltline.ocpp.log_limits import LogBudget, capped_payload
from voltline.services.diagnostics import redact_upload_tokens
from voltline.services.runtime import Runtime
from voltline.settings import Settings
from voltline.store.engine import Database
from voltline.store.ocpp_log import ACTION_MAX, MESSAGE_ID_MAX
from voltline.store.writer import MeterWriter

# Calls whose payload carries a one-time upload URL: its token is not kept in the log.
UPLOAD_CALLS = frozenset({"GetDiagnostics", "GetLog"})
# DESIGN: with VOLTLINE_OCPP_LOG=default these actions are counted, not kept.
UNLOGGED_BY_DEFAULT = frozenset({"Heartbeat", "MeterValues"})
# Known transaction ids per session; enough for every transaction of a long connection.
KNOWN_TRANSACTIONS_MAX = 1024


@dataclass
class SessionContext:
    """What an inbound handler may use: the charger, the store, the writer and the clock."""

    identity: str
    charger_id: ChargerId
    team_id: TeamId | None
    site_id: SiteId | None
    lenient: bool
    db: Database
    settings: Settings
    clock: Clock
    writer: MeterWriter
    # What the services a handler calls take (DESIGN "Services tier").
    runtime: Runtime
    # transactionId (as the charger sends it) -> our transaction id, or None when it names none of ours.
    transactions: dict[int, int | None] = field(default_factory=dict)
    # Where handlers publish smart-charging events (voltline.bus.events); None: nobody listens.
    bus: Bus | None = None
    # Transactions whose first MeterValues was announced (spec §7.4: the first meter value of a session).
    metered: set[int] = field(default_factory=set)
    # Where the receive loop counts frames for /metrics (the gateway's; voltline/metrics.py).
    counts: OcppCounts = field(default_factory=OcppCounts)
    # clock.monotonic() by which the CALL being handled is answered or the socket closed (DESIGN: Durability).
    hold_until: float = math.inf

    def place(self, row: Mapping[Any, Any] | None) -> None:
        """Take the charger's current team, site and lenient flag from a charger row."""
        if row is None:
            return
        self.team_id = None if row["team_id"] is None else TeamId(row["team_id"])
        self.site_id = None if row["site_id"] is None else SiteId(row["site_id"])
        self.lenient = self.settings.ocpp_lenient if row["lenient"] is None else bool(row["lenient"])

    def remember_transaction(self, ocpp_id: int, transaction_id: int | None) -> None:
        """Cache what a transactionId names for this charger (bounded)."""
        if len(self.transactions) >= KNOWN_TRANSACTIONS_MAX:
            self.transactions.pop(next(iter(self.transactions)))
        self.transactions[ocpp_id] = transaction_id

    def now(self) -> datetime:
        """The current moment, naive UTC."""
        return self.clock.now()

    async def announce(self, kind: str, **fields: Any) -> None:
        """Publish a smart-charging event for this charger (after the handler's commit; nobody is awaited)."""
        if self.bus is not None:
            event = encode_event(kind, charger_id=int(self.charger_id), site_id=self.site_id, **fields)
            await self.bus.publish(SMART_EVENTS, event)


class MessageLog:
    """Feeds the OCPP message log through the batched writer, as VOLTLINE_OCPP_LOG says.

    Each row carries the charger's team at that moment (`ctx.team_id` follows a charger moved while
    connected); payloads are capped and each charger's rows budgeted (log_limits.py).
    """

    def __init__(self, ctx: SessionContext, budget: LogBudget) -> None:
        self.ctx = ctx
        self.mode = ctx.settings.ocpp_log
        self.max_payload = ctx.settings.ocpp_log_max_payload
        self.writer = ctx.writer
        self.budget = budget
        self.unlogged: Counter[str] = Counter()

    def record(
        self, direction: str, message_type: int, message_id: str, action: str | None, payload: str | bytes
    ) -> None:
        """Queue one frame for the log, or count it when its payload is not kept or the budget is spent."""
        if self.mode == "off":
            return
        if self.mode == "default" and action in UNLOGGED_BY_DEFAULT:
            self.unlogged[f"{direction}:{action}"] += 1
            return
        ctx = self.ctx
        text = capped_payload(payload, self.max_payload)
        if action in UPLOAD_CALLS:
            text = redact_upload_tokens(text)
        if not self.budget.admit(ctx.charger_id, ctx.identity, len(text)):
            self.unlogged[f"{direction}:over budget"] += 1
            return
        entry = LogEntry(
            ctx.charger_id,
            direction,
            message_type,
            message_id[:MESSAGE_ID_MAX],
            None if action is None else action[:ACTION_MAX],
            text,
            ctx.clock.now(),
            team_id=ctx.team_id,
        )
        self.writer.log(entry)
