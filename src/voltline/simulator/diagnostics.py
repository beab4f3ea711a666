"""The simulated charge point's log uploads: OCPP 1.6 §5.9 GetDiagnostics and the Security Whitepaper's GetLog.

GetDiagnostics is answered with the file name at once; then the charger reports Uploading,
uploads its diagnostics file by HTTP PUT to `<location>/<file name>` (the location is a
directory, §5.9) and reports Uploaded, or UploadFailed when the upload did not succeed (a
refusal, a network error, or a location that is not http(s): FTP is not implemented).
GetLog goes the same way, answered Accepted with its `filename`, its progress reported by
LogStatusNotification (Uploading, then Uploaded or UploadFailure) with the request's requestId.
The file is plain text made from the charger's real state: identity, connection, connectors,
configuration, message counters and its latest finished transactions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from voltline.simulator.connection import Answer, CallError, Payload

if TYPE_CHECKING:
    from voltline.simulator.charger import SimulatedCharger

# Generous: a real charger's uplink is slow; connecting is bounded tighter than reading and writing.
UPLOAD_TIMEOUT = httpx.Timeout(120.0, connect=15.0)
RECENT_TRANSACTIONS = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _text(payload: Payload, key: str, *, required: bool) -> str | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if value is None:
        raise CallError("OccurenceConstraintViolation", f"{key} is required")
    if not isinstance(value, str):
        raise CallError("TypeConstraintViolation", f"{key} must be str")
    return value


def file_name(charger: SimulatedCharger, kind: str = "diagnostics") -> str:
    """The charger's name for its diagnostics (or security log) file."""
    return f"{_UNSAFE.sub('_', charger.identity)}-{kind}.txt"


def report(charger: SimulatedCharger, start: str | None, stop: str | None) -> bytes:
    """The diagnostics file: the charger's state as text lines."""
    lines = [
        f"identity: {charger.identity}",
        f"vendor: {charger.vendor}  model: {charger.model}  serial: {charger.serial}",
        f"generated: {charger.now_text()}  window: {start or '-'} .. {stop or '-'}",
        f"connection: {charger.connection_state}  last error: {charger.last_error or '-'}",
        f"counters: {vars(charger.counters)}",
    ]
    for number, conn in sorted(charger.connectors.items()):
        transaction = conn.transaction.transaction_id if conn.transaction else None
        lines.append(
            f"connector {number}: {conn.status} register={conn.meter.register_wh} Wh "
            f"limit={conn.meter.limit} transaction={transaction}"
        )
    lines += [f"config {key}={value}" for key, value in sorted(charger.config.values.items())]
    lines += [f"finished {item!r}" for item in list(charger.finished)[-RECENT_TRANSACTIONS:]]
    return ("\n".join(lines) + "\n").encode()


def on_get_diagnostics(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Answer with the file name; the upload and its notifications follow the response."""
    location = _text(payload, "location", required=True) or ""
    start = _text(payload, "startTime", required=False)
    stop = _text(payload, "stopTime", required=False)
    name = file_name(charger)

    async def follow_up() -> None:
        await upload(charger, location, name, report(charger, start, stop))

    if not location.lower().startswith(("http://", "https://")):
        return {}, follow_up  # no file for a location it cannot reach; it reports UploadFailed
    return {"fileName": name}, follow_up


def on_get_log(charger: SimulatedCharger, payload: Payload) -> Answer:
    """Security Whitepaper GetLog: Accepted with the file name; the upload follows (LogStatusNotification)."""
    log_type = _text(payload, "logType", required=True)
    request_id = payload.get("requestId")
    log = payload.get("log")
    if log_type not in ("DiagnosticsLog", "SecurityLog"):
        raise CallError("PropertyConstraintViolation", "logType must be DiagnosticsLog or SecurityLog")
    if not isinstance(request_id, int) or isinstance(request_id, bool) or not isinstance(log, dict):
        raise CallError("TypeConstraintViolation", "requestId must be an integer and log an object")
    location = _text(log, "remoteLocation", required=True) or ""
    name = file_name(charger, "security" if log_type == "SecurityLog" else "diagnostics")
    window = (_text(log, "oldestTimestamp", required=False), _text(log, "latestTimestamp", required=False))
    content = report(charger, *window)

    def notify(status: str) -> None:
        failed = status == "UploadFailed"
        body = {"status": "UploadFailure" if failed else status, "requestId": request_id}
        charger.queue("LogStatusNotification", lambda: body)

    async def follow_up() -> None:
        await upload(charger, location, name, content, notify)

    return {"status": "Accepted", "filename": name}, follow_up


def _notify(charger: SimulatedCharger, status: str) -> None:
    charger.queue("DiagnosticsStatusNotification", lambda: {"status": status})


async def upload(
    charger: SimulatedCharger,
    location: str,
    name: str,
    content: bytes,
    notify: Callable[[str], None] | None = None,
) -> None:
    """Report Uploading, PUT the file to `<location>/<name>`, then report Uploaded or UploadFailed."""
    notify = notify or (lambda status: _notify(charger, status))
    notify("Uploading")
    done = False
    if location.lower().startswith(("http://", "https://")):
        headers: Any = {"content-type": "text/plain; charset=utf-8"}
        try:
            async with httpx.AsyncClient(timeout=UPLOAD_TIMEOUT) as client:
                response = await client.put(f"{location.rstrip('/')}/{name}", content=content, headers=headers)
            done = response.is_success
        except httpx.HTTPError as error:
            charger.last_error = f"diagnostics upload: {type(error).__name__}: {error}"
    if done:
        charger.uploaded.append((name, content))
    notify("Uploaded" if done else "UploadFailed")
