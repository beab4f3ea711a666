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
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import msgspec

from voltline.domain.authorization import Verdict
from voltline.domain.boot import BootReport
from voltline.domain.meter_values import Sample, normalise_sample
from voltline.domain.timestamps import format_timestamp
from voltline.ocpp.rpc import OcppError, code_for
from voltline.ocpp.schema_check import encode_payload, parse_ocpp_datetime
from voltline.ocpp.session import KNOWN_TRANSACTIONS_MAX, SessionContext
from voltline.ocpp.v16 import messages as v16
from voltline.services import authorization, charger_reports, diagnostics, meter, transactions

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
    """Record the start (a replay gets the same id) and answer with our id after commit."""
    number = _connector(req.connector_id)
    started = await transactions.record_start(
        ctx.runtime,
        ctx,
        connector=number,
        id_tag=req.id_tag,
        meter_start=_meter(req.meter_start, "meterStart"),
        started_at=_moment(req.timestamp),
        reservation_id=_optional_int32(req.reservation_id),
    )
    ctx.remember_transaction(started.transaction_id, started.transaction_id)
    return v16.StartTransactionResponse(
        id_tag_info=_id_tag_info(started.verdict), transaction_id=started.transaction_id
    )


async def on_stop_transaction(ctx: SessionContext, req: v16.StopTransactionRequest) -> v16.StopTransactionResponse:
    """Record the stop once (a repeat changes nothing) with its transactionData, answer after commit."""
    verdict = await transactions.record_stop(
        ctx.runtime,
        ctx,
        req.transaction_id,
        meter_stop=_meter(req.meter_stop, "meterStop"),
        stopped_at=_moment(req.timestamp),
        stop_reason=req.reason or STOP_REASON_DEFAULT,
        id_tag=req.id_tag,
        readings=_readings(req.transaction_data or []),
    )
    return v16.StopTransactionResponse(id_tag_info=None if verdict is None else _id_tag_info(verdict))


async def _transaction_of(ctx: SessionContext, ocpp_id: int | None) -> int | None:
    """Our id of the charger's transaction the charger names, or None (cached per session)."""
    if ocpp_id is None:
        return None
    if ocpp_id in ctx.transactions:
        return ctx.transactions[ocpp_id]
    ctx.remember_transaction(ocpp_id, await transactions.find_charger_transaction(ctx.runtime, ctx.charger_id, ocpp_id))
    return ctx.transactions[ocpp_id]


async def on_meter_values(ctx: SessionContext, req: v16.MeterValuesRequest) -> v16.MeterValuesResponse:
    """Take the readings through the batched writer; answer once they are committed."""
    number = _connector(req.connector_id)
    transaction_id = await _transaction_of(ctx, req.transaction_id)
    first = transaction_id is not None and transaction_id not in ctx.metered
    await meter.take(ctx.runtime, ctx, number, transaction_id, _readings(req.meter_value), first=first)
    if first and transaction_id is not None:
        if len(ctx.metered) >= KNOWN_TRANSACTIONS_MAX:
            ctx.metered.clear()
        ctx.metered.add(transaction_id)
    return v16.MeterValuesResponse()


SampledValue = v16.SampledValue | v16.TransactionSampledValue
MAX_CACHED_SAMPLES = 4096
_SAMPLES: dict[tuple[str | None, ...], Sample] = {}


def _readings(values: Iterable[v16.MeterValue | v16.TransactionData]) -> Iterator[meter.Reading]:
    # Lazy: a StopTransaction's readings are read only after the stop committed (DESIGN "Durability").
    return ((_moment(value.timestamp), tuple(_sample(sampled) for sampled in value.sampled_value)) for value in values)


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
    await diagnostics.record_status(ctx.runtime, ctx.charger_id, req.status)
    return v16.DiagnosticsStatusNotificationResponse()


async def on_log_status_notification(
    ctx: SessionContext, req: v16.LogStatusNotificationRequest
) -> v16.LogStatusNotificationResponse:
    """Security Whitepaper (1.6) LogStatusNotification: the state of a security log upload."""
    await diagnostics.record_log_status(ctx.runtime, ctx.charger_id, req.status, req.request_id)
    return v16.LogStatusNotificationResponse()


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
    "LogStatusNotification": on_log_status_notification,
    "MeterValues": on_meter_values,
    "StartTransaction": on_start_transaction,
    "StatusNotification": on_status_notification,
    "StopTransaction": on_stop_transaction,
}
