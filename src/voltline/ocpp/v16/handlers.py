"""OCPP 1.6 charger -> Voltline: one handler per action (Core, plus firmware/diagnostics notifications).

Every handler answers with a schema-valid response, also for replays and for transaction ids
that name nothing of ours (DESIGN: OCPP). DESIGN "Durability": every handler whose message
changes what is stored answers only after that change committed: its own write transaction, or
for meter readings (MeterValues, StopTransaction's transactionData) the batched writer's group
commit, whose future the handler awaits. A replay (the charger got no answer) is safe: Start and
Stop find their row, and a meter frame identical to a stored one is stored once.

Unknown transaction ids (StopTransaction, MeterValues, also ids beyond 32 bits): the answer is
the normal one and the readings are kept, stored with `transaction_id` null, because an id that
is not one of this charger's transactions may be another charger's, and readings must never
join another team's transaction. The id the charger sent stays in the message log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline.domain.authorization import Verdict
from voltline.domain.boot import BootReport
from voltline.domain.frames import MeterFrame
from voltline.domain.ids import TeamId
from voltline.domain.meter_values import FutureTimestampError, Sample, frame_timestamp, normalise_sample
from voltline.domain.timestamps import format_timestamp
from voltline.ocpp.rpc import OcppError, code_for
from voltline.ocpp.schema_check import encode_payload, parse_ocpp_datetime
from voltline.ocpp.session import KNOWN_TRANSACTIONS_MAX, SessionContext
from voltline.ocpp.v16 import messages as v16
from voltline.services import authorization, charger_reports
from voltline.store import ocpp_state
from voltline.store import transactions as store_transactions
from voltline.store.chargers import get_charger_by_id, upsert_connector

log = logging.getLogger("voltline.ocpp")

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
STOP_REASON_DEFAULT = "Local"  # OCPP 1.6 §6.49: reason may be omitted only when it is Local


def _now_text(ctx: SessionContext) -> str:
    return format_timestamp(ctx.now()) or ""


def _moment(text: str) -> datetime:
    return parse_ocpp_datetime(text).replace(tzinfo=None)


def _in_range(value: int, field: str, low: int, high: int) -> int:
    # Integers reach the database; the schemas do not bound them, OCPP 1.6 means 32-bit ids.
    if not low <= value <= high:
        raise OcppError(code_for("1.6", "property"), f"{field} {value} is out of range")
    return value


def _connector(value: int) -> int:
    return _in_range(value, "connectorId", 0, INT32_MAX)


def _optional_int32(value: int | None) -> int | None:
    return value if value is not None and 0 <= value <= INT32_MAX else None


def _meter(value: int, field: str) -> int:
    return _in_range(value, field, -INT64_MAX, INT64_MAX)


async def on_boot_notification(ctx: SessionContext, req: v16.BootNotificationRequest) -> v16.BootNotificationResponse:
    """Record the boot and answer with its status and our heartbeat interval.

    The session opens for calls, and the `boot` event goes out, once the answer is sent
    (endpoint.py, `Session.answered_boot`): nothing reaches a charger before it.
    """
    report = BootReport(
        vendor=req.charge_point_vendor,
        model=req.charge_point_model,
        serial_number=req.charge_point_serial_number or req.charge_box_serial_number,
        firmware_version=req.firmware_version,
        payload=encode_payload(req).decode(),
        ocpp_version="1.6",
    )
    answer = await charger_reports.record_boot(ctx.runtime, ctx.charger_id, report)
    ctx.place(answer.placement)
    return v16.BootNotificationResponse(status=answer.status, current_time=_now_text(ctx), interval=answer.interval)


async def on_heartbeat(ctx: SessionContext, _req: v16.HeartbeatRequest) -> v16.HeartbeatResponse:
    """Note the charger as seen and tell it the time."""
    ctx.place(await charger_reports.record_heartbeat(ctx.runtime, ctx.charger_id))
    return v16.HeartbeatResponse(current_time=_now_text(ctx))


async def on_status_notification(
    ctx: SessionContext, req: v16.StatusNotificationRequest
) -> v16.StatusNotificationResponse:
    """Connector 0 is the charger's status; connectors >= 1 are created on first sight and updated."""
    number = _connector(req.connector_id)
    placement = await charger_reports.record_status(
        ctx.runtime, ctx.charger_id, number, req.status, error_code=req.error_code, info=req.info
    )
    ctx.place(placement)  # moved to another site meanwhile?
    return v16.StatusNotificationResponse()


async def _verdict(ctx: SessionContext, conn: AsyncConnection, team: int | None, id_tag: str) -> Verdict:
    return await authorization.check_id_tag(conn, None if team is None else TeamId(team), id_tag, ctx.now())


def _id_tag_info(verdict: Verdict) -> v16.IdTagInfo:
    return v16.IdTagInfo(
        status=verdict.status,  # type: ignore[arg-type]
        expiry_date=format_timestamp(verdict.expiry_date),
        parent_id_tag=verdict.parent_id_tag,
    )


async def on_authorize(ctx: SessionContext, req: v16.AuthorizeRequest) -> v16.AuthorizeResponse:
    """Accept or refuse an id tag by the team's authorization mode and its stored tags."""
    verdict = await authorization.authorize_id_tag(ctx.runtime, ctx.team_id, req.id_tag)
    return v16.AuthorizeResponse(id_tag_info=_id_tag_info(verdict))


async def on_start_transaction(ctx: SessionContext, req: v16.StartTransactionRequest) -> v16.StartTransactionResponse:
    """Store a started transaction (a replay gets the same id) and answer with our id after commit."""
    number = _connector(req.connector_id)
    started: dict[str, Any] = {
        "connector_number": number,
        "id_tag": req.id_tag,
        "meter_start": _meter(req.meter_start, "meterStart"),
        "started_at": _moment(req.timestamp),
    }
    reservation = _optional_int32(req.reservation_id)
    async with ctx.db.write() as conn:
        charger = await get_charger_by_id(conn, ctx.charger_id)
        ctx.place(charger)  # the session's team and site follow a charger moved while connected
        verdict = await _verdict(ctx, conn, charger["team_id"], req.id_tag)
        row = await store_transactions.find_started_transaction(conn, ctx.charger_id, **started)
        if row is None:
            connector = await upsert_connector(conn, ctx.charger_id, number, {}) if number > 0 else None
            ref = None if connector is None else connector["id"]
            values = {**started, "connector_ref": ref, "reservation_id": reservation}
            row = await store_transactions.start_transaction(conn, charger, values)
    ctx.remember_transaction(int(row["id"]), int(row["id"]))
    await ctx.announce("start", connector=number, transaction_id=int(row["id"]))
    return v16.StartTransactionResponse(id_tag_info=_id_tag_info(verdict), transaction_id=int(row["id"]))


async def on_stop_transaction(ctx: SessionContext, req: v16.StopTransactionRequest) -> v16.StopTransactionResponse:
    """Finish the transaction once (a repeat changes nothing), keep its transactionData, answer after commit."""
    finish = {
        "meter_stop": _meter(req.meter_stop, "meterStop"),
        "stopped_at": _moment(req.timestamp),
        "stop_reason": req.reason or STOP_REASON_DEFAULT,
    }
    frames = [(data.timestamp, data.sampled_value) for data in req.transaction_data or []]
    async with ctx.db.write() as conn:
        row, finished = await store_transactions.stop_transaction(conn, ctx.charger_id, req.transaction_id, finish)
        ctx.place(await ocpp_state.get_placement(conn, ctx.charger_id))
        verdict = None if req.id_tag is None else await _verdict(ctx, conn, ctx.team_id, req.id_tag)
    # A replay stores its transactionData again (stored once): the first attempt may have committed
    # the stop and then lost its readings to a crash before they committed, unanswered.
    if row is None:
        log.info("%s: StopTransaction for unknown transactionId %s", ctx.identity, req.transaction_id)
        await _store_frames(ctx, 0, None, frames)
    else:
        await _store_frames(ctx, int(row["connector_number"]), int(row["id"]), frames)
    if finished and row is not None:
        await ctx.announce("stop", connector=int(row["connector_number"]), transaction_id=int(row["id"]))
    return v16.StopTransactionResponse(id_tag_info=None if verdict is None else _id_tag_info(verdict))


async def _transaction_of(ctx: SessionContext, ocpp_id: int | None) -> int | None:
    """Our id of the charger's transaction the charger names, or None (cached per session)."""
    if ocpp_id is None:
        return None
    if ocpp_id in ctx.transactions:
        return ctx.transactions[ocpp_id]
    async with ctx.db.read() as conn:
        row = await store_transactions.get_charger_transaction(conn, ctx.charger_id, ocpp_id)
    ctx.remember_transaction(ocpp_id, None if row is None else int(row["id"]))
    return ctx.transactions[ocpp_id]


async def on_meter_values(ctx: SessionContext, req: v16.MeterValuesRequest) -> v16.MeterValuesResponse:
    """Store the readings through the batched writer; answer once they are committed."""
    number = _connector(req.connector_id)
    transaction_id = await _transaction_of(ctx, req.transaction_id)
    await _store_frames(
        ctx, number, transaction_id, [(value.timestamp, value.sampled_value) for value in req.meter_value]
    )
    if transaction_id is not None and transaction_id not in ctx.metered:
        # spec §7.4: the first meter value of a session wakes the control loop (phases known).
        if len(ctx.metered) >= KNOWN_TRANSACTIONS_MAX:
            ctx.metered.clear()
        ctx.metered.add(transaction_id)
        await ctx.announce("meter", connector=number, transaction_id=transaction_id)
    return v16.MeterValuesResponse()


SampledValue = v16.SampledValue | v16.TransactionSampledValue
MAX_CACHED_SAMPLES = 4096
_SAMPLES: dict[tuple[str | None, ...], Sample] = {}


async def _store_frames(
    ctx: SessionContext, connector: int, transaction_id: int | None, values: Iterable[tuple[str, list[Any]]]
) -> None:
    """Queue the frames for the writer and wait for their commit (StoreUnavailableError past the hold)."""
    received = ctx.now()
    frames = [
        MeterFrame(
            charger_id=ctx.charger_id,
            team_id=ctx.team_id,
            site_id=ctx.site_id,
            connector_number=connector,
            transaction_id=transaction_id,
            timestamp=_frame_time(ctx, timestamp, received),
            samples=tuple(_sample(value) for value in sampled),
            received_at=received,
        )
        for timestamp, sampled in values
    ]
    if frames:
        await (await ctx.writer.put_meter_frames(frames, ctx.hold_until))


def _frame_time(ctx: SessionContext, timestamp: str, received: datetime) -> datetime:
    try:
        return frame_timestamp(_moment(timestamp), received)
    except FutureTimestampError:
        # R-94 refuses the charger's clock, not its readings: they are kept at their arrival time.
        log.info("%s: meter value stamped %s is ahead of our clock; stored at arrival", ctx.identity, timestamp)
        return received


def _sample(value: SampledValue) -> Sample:
    # Samples are immutable and chargers repeat most of them (voltages, currents): normalise each once.
    key = (value.value, value.measurand, value.unit, value.phase, value.context, value.location, value.format)
    found = _SAMPLES.get(key)
    if found is None:
        if len(_SAMPLES) >= MAX_CACHED_SAMPLES:
            _SAMPLES.clear()
        found = _SAMPLES[key] = normalise_sample(
            value.value,
            measurand=value.measurand,
            unit=value.unit,
            phase=value.phase,
            context=value.context,
            location=value.location,
            format=value.format,
        )
    return found


async def on_data_transfer(ctx: SessionContext, req: v16.DataTransferRequest) -> v16.DataTransferResponse:
    """Hand vendor data to the service (no vendor extensions are implemented) and answer its status."""
    status = charger_reports.receive_data_transfer(ctx.identity, req.vendor_id, req.message_id)
    return v16.DataTransferResponse(status=status)


async def on_diagnostics_status_notification(
    ctx: SessionContext, req: v16.DiagnosticsStatusNotificationRequest
) -> v16.DiagnosticsStatusNotificationResponse:
    """Store the state of a diagnostics upload."""
    await charger_reports.record_diagnostics_status(ctx.runtime, ctx.charger_id, req.status)
    return v16.DiagnosticsStatusNotificationResponse()


async def on_firmware_status_notification(
    ctx: SessionContext, req: v16.FirmwareStatusNotificationRequest
) -> v16.FirmwareStatusNotificationResponse:
    """Store the state of a firmware update."""
    await charger_reports.record_firmware_status(ctx.runtime, ctx.charger_id, req.status)
    return v16.FirmwareStatusNotificationResponse()


Handler = Callable[[SessionContext, Any], Awaitable[msgspec.Struct]]

HANDLERS: dict[str, Handler] = {
    "Authorize": on_authorize,
    "BootNotification": on_boot_notification,
    "DataTransfer": on_data_transfer,
    "DiagnosticsStatusNotification": on_diagnostics_status_notification,
    "FirmwareStatusNotification": on_firmware_status_notification,
    "Heartbeat": on_heartbeat,
    "MeterValues": on_meter_values,
    "StartTransaction": on_start_transaction,
    "StatusNotification": on_status_notification,
    "StopTransaction": on_stop_transaction,
}
