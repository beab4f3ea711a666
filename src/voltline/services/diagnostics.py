"""Diagnostics uploads: ask a charger for its log file, take the upload, keep and serve the file.

OCPP 1.6 §5.9 GetDiagnostics: the charger uploads its diagnostics file to the `location` it
is given, and reports the upload's progress with DiagnosticsStatusNotification (§4.4). Voltline
serves that location itself (docs/api.md "Diagnostics"): an HTTP(S) URL under
`/uploads/diagnostics/` carrying a one-time token of 32 random bytes, of which only the SHA-256
is stored. The token is spent by the upload that completes first (a second one with it finds
nothing), and it expires after TOKEN_LIFETIME. The file is stored in the database, named by the
server: `<identity>-<UTC time>-<log type>.<extension>`.

The security log (`log_type` security) is the 1.6 Security Whitepaper's GetLog with logType
SecurityLog, its requestId the request's id, its progress reported by LogStatusNotification.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from voltline.domain.ids import ChargerId, Ref, TeamId
from voltline.errors import ChargerTimeoutError, ConflictError, VoltlineError
from voltline.services import charger_commands
from voltline.services.runtime import Runtime
from voltline.store import chargers, diagnostics

UPLOAD_PATH = "/uploads/diagnostics/"
# An upload URL's one-time token, wherever the URL is written down (access log, OCPP message log).
UPLOAD_TOKEN = re.compile(r"(/uploads/diagnostics/)[^/?#\s\"]+")
TOKEN_LIFETIME = timedelta(hours=24)
REQUESTED = "Requested"
# log_type -> the version-neutral command (1.6: GetDiagnostics; the Security Whitepaper's GetLog).
COMMANDS = {"diagnostics": "get_diagnostics", "security": "get_log"}
# GetLog's logType for each log_type it serves.
LOG_TYPES = {"security": "SecurityLog"}
DEFAULT_EXTENSION = ".log"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSION = re.compile(r"(\.[A-Za-z0-9]{1,8}){1,2}$")
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,63}/[A-Za-z0-9!#$&^_.+-]{1,63}$")


@dataclass(frozen=True)
class Requested:
    """A request the charger accepted: its answer's status word and the file name it announced."""

    status: str
    file_name: str | None


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of an upload token, which is all that is stored of it."""
    return hashlib.sha256(token.encode()).hexdigest()


def file_stem(identity: str, at: datetime, log_type: str) -> str:
    """The server's name for a charger's upload, without extension: only `A-Za-z0-9._-`."""
    safe = _UNSAFE.sub("_", identity).strip("._") or "charger"
    return f"{safe[:100]}-{at:%Y%m%dT%H%M%SZ}-{log_type}"


def extension_of(name: str | None) -> str:
    """The extension of the charger's own file name (`.tar.gz`, `.zip`, ...), or `.log`."""
    found = _EXTENSION.search(name or "")
    return found.group(0).lower() if found else DEFAULT_EXTENSION


def clean_content_type(value: str | None) -> str:
    """The upload's media type without parameters, or application/octet-stream when it is not one."""
    media = (value or "").split(";", 1)[0].strip().lower()
    return media if _CONTENT_TYPE.fullmatch(media) else "application/octet-stream"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%SZ}"


async def request_upload(
    rt: Runtime,
    team_id: TeamId,
    charger: Mapping[Any, Any],
    *,
    log_type: str,
    window: tuple[datetime | None, datetime | None],
    base_url: str,
) -> Requested:
    """Ask the charger to upload its log to a fresh one-time URL under `base_url`.

    A charger that is offline, refuses (NotSupported, NotImplemented: ConflictError) or fails
    leaves no request behind; one that does not answer in time keeps it (it may still upload).
    """
    token = secrets.token_urlsafe(32)
    now = rt.clock.now()
    values = {
        "charger_id": charger["id"],
        "team_id": team_id,
        "log_type": log_type,
        "start_time": window[0],
        "stop_time": window[1],
        "token_hash": token_hash(token),
        "status": REQUESTED,
        "file_name": file_stem(str(charger["identity"]), now, log_type),
        "expires_at": now + TOKEN_LIFETIME,
    }
    async with rt.db.write() as conn:
        row = await diagnostics.insert_request(conn, values)
    args: dict[str, Any] = {"location": base_url.rstrip("/") + UPLOAD_PATH + token}
    args |= {k: v for k, v in (("start_time", _iso(window[0])), ("stop_time", _iso(window[1]))) if v}
    if log_type in LOG_TYPES:  # GetLog names the log and carries our request's id (LogStatusNotification's requestId)
        args |= {"log_type": LOG_TYPES[log_type], "request_id": int(row["id"])}
    try:
        result = await charger_commands.send_command(rt, team_id, charger, COMMANDS[log_type], args)
        if result.get("status") == "Rejected":
            raise ConflictError("The charger rejected the log upload request.")
    except ChargerTimeoutError:
        raise
    except VoltlineError as error:
        async with rt.db.write() as conn:
            await diagnostics.delete_request(conn, int(row["id"]))
        raise charger_commands.as_refusal(error) from None
    name = result.get("file_name", result.get("filename"))
    return Requested(str(result.get("status", "Accepted")), None if name is None else str(name))


def redact_upload_tokens(text: str) -> str:
    """`text` with `<token>` in place of every upload URL's one-time token (the URL stays readable)."""
    return UPLOAD_TOKEN.sub(r"\1<token>", text) if UPLOAD_PATH in text else text


async def purge_expired_requests(rt: Runtime) -> int:
    """Forget the requests whose token expired before any file came (housekeeping); how many went.

    A request with a file stays as long as its file does.
    """
    async with rt.db.write() as conn:
        return await diagnostics.delete_expired_requests(conn, rt.clock.now())


async def is_upload_open(rt: Runtime, token: str) -> bool:
    """Whether an upload with this token would be taken (it names a request, unused and unexpired)."""
    async with rt.db.read() as conn:
        return await diagnostics.find_open_request(conn, token_hash(token), rt.clock.now()) is not None


async def store_upload(
    rt: Runtime, token: str, content: bytes, *, content_type: str | None, name: str | None
) -> RowMapping | None:
    """Spend the token and store the file in one transaction; None (nothing stored) when the token is not open."""
    hashed, now = token_hash(token), rt.clock.now()
    async with rt.db.write() as conn:
        request = await diagnostics.find_open_request(conn, hashed, now)
        if request is None or not await diagnostics.consume_request(conn, int(request["id"]), hashed, now):
            return None
        values = {
            "request_id": request["id"],
            "charger_id": request["charger_id"],
            "team_id": request["team_id"],
            "file_name": request["file_name"] + extension_of(name),
            "content_type": clean_content_type(content_type),
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "content": content,
        }
        return await diagnostics.insert_file(conn, values, now)


async def record_status(rt: Runtime, charger_id: ChargerId, status: str) -> None:
    """OCPP 1.6 §4.4: Uploading, Uploaded or UploadFailed on the charger's latest request (Idle says nothing)."""
    if status == "Idle":
        return
    async with rt.db.write() as conn:
        latest = await diagnostics.latest_request(conn, charger_id)
        if latest is not None:
            await diagnostics.set_request_status(conn, int(latest["id"]), status)


async def record_log_status(rt: Runtime, charger_id: ChargerId, status: str, request_id: int | None) -> None:
    """Security Whitepaper LogStatusNotification: the upload state of the request it names, else the latest one."""
    if status == "Idle":
        return
    async with rt.db.write() as conn:
        named = None if request_id is None else await diagnostics.get_request(conn, charger_id, request_id)
        target = named or await diagnostics.latest_request(conn, charger_id)
        if target is not None:
            await diagnostics.set_request_status(conn, int(target["id"]), status)


async def list_files(rt: Runtime, team_id: TeamId, charger_ref: Ref, *, offset: int, limit: int) -> list[RowMapping]:
    """A page of the files the team's charger uploaded, newest first (NotFoundError for another team's charger)."""
    async with rt.db.read() as conn:
        charger = await chargers.get_charger(conn, team_id, charger_ref)
        return await diagnostics.list_files(conn, team_id, ChargerId(charger["id"]), offset=offset, limit=limit)


async def get_file(rt: Runtime, team_id: TeamId, charger_ref: Ref, file_ref: Ref) -> RowMapping:
    """One uploaded file of the team's charger, with its content; NotFoundError for any other."""
    async with rt.db.read() as conn:
        charger = await chargers.get_charger(conn, team_id, charger_ref)
        return await diagnostics.get_file(conn, team_id, ChargerId(charger["id"]), file_ref)
