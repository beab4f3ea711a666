"""Sans-I/O OCPP-J framing: text frames in, typed frames out, and the frames we send back.

OCPP-J (1.6 §4.1 and §4.2; 2.0.1 part 4 §4) carries every message as a JSON array:

    [2, "<messageId>", "<Action>", {payload}]                            CALL
    [3, "<messageId>", {payload}]                                        CALLRESULT
    [4, "<messageId>", "<errorCode>", "<errorDescription>", {details}]   CALLERROR

`parse_frame` sorts one incoming frame into five outcomes:

* `Call`, `CallResult`, `CallError`: well formed. Payloads stay raw JSON bytes, so that
  `decode_call_payload` / `decode_call_result` decode them straight into the action's Struct.
* `FrameDropped`: not a JSON array with a string message id, so nothing can be answered
  (DESIGN: logged and dropped); also a malformed CALLRESULT or CALLERROR, which is never
  answered (its message id, when there is one, lets the session fail the outstanding call).
* `FrameRejected`: a CALL with a message id but a broken frame; `reply` is the CALLERROR to send.

Payload problems raise `OcppError` with the version's CALLERROR code (1.6 §4.2.3; DESIGN keeps
1.6's spelling `OccurenceConstraintViolation`): unknown action -> NotImplemented, missing field
or too few array items -> Occurence/OccurrenceConstraintViolation, wrong JSON type ->
TypeConstraintViolation, too long / not in the enum / not a multiple of 0.1 / bad timestamp ->
PropertyConstraintViolation, unknown field -> FormationViolation (2.0.1 FormatViolation).
A broken CALL frame answers FormationViolation in 1.6 and RpcFrameworkError in 2.0.1 (an
unknown message type there: MessageTypeNotSupported). A frame nested deeper than the decoder
goes (about a thousand levels) is a broken frame too: its CALLERROR names the message id
read from the frame's head, and the socket stays open.

Text the database cannot store (DESIGN "Durability"): every NUL (`\u0000`) in a frame becomes
U+FFFD before the frame is parsed, so handlers, the message log and both backends see the same
text; the frame's `nul_fields` say where, for the session to log once.

`PendingCalls` holds the one CALL the CSMS may have outstanding on a connection (1.6 §4.1.1).
No sockets, no asyncio, no clock: the session owns those.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import msgspec

from voltline.codec import DecodeError, decode_json, encode_json
from voltline.errors import VoltlineError
from voltline.ocpp.schema_check import (
    SchemaViolationError,
    decode_payload,
    decode_payload_lenient,
    encode_payload,
)
from voltline.ocpp.v16 import messages as v16

Version = Literal["1.6", "2.0.1"]
Problem = Literal["format", "occurrence", "type", "property", "generic", "frame", "message_type", "not_implemented"]

MESSAGE_ID_MAX = 36  # OCPP-J 1.6 §4.1: a message id is at most 36 characters, to allow for GUIDs
DESCRIPTION_MAX = 255  # OCPP-J 2.0.1 §4.2.3 limits errorDescription; 1.6 has no limit

ERROR_CODES: dict[Version, frozenset[str]] = {
    "1.6": frozenset(
        {
            "NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
            "FormationViolation", "PropertyConstraintViolation", "OccurenceConstraintViolation",
            "TypeConstraintViolation", "GenericError",
        }
    ),
    "2.0.1": frozenset(
        {
            "FormatViolation", "GenericError", "InternalError", "MessageTypeNotSupported", "NotImplemented",
            "NotSupported", "OccurrenceConstraintViolation", "PropertyConstraintViolation", "ProtocolError",
            "RpcFrameworkError", "SecurityError", "TypeConstraintViolation",
        }
    ),
}  # fmt: skip

_CODES: dict[Version, dict[Problem, str]] = {
    "1.6": {
        "format": "FormationViolation",
        "occurrence": "OccurenceConstraintViolation",
        "type": "TypeConstraintViolation",
        "property": "PropertyConstraintViolation",
        "generic": "GenericError",
        "frame": "FormationViolation",
        "message_type": "FormationViolation",
        "not_implemented": "NotImplemented",
    },
    "2.0.1": {
        "format": "FormatViolation",
        "occurrence": "OccurrenceConstraintViolation",
        "type": "TypeConstraintViolation",
        "property": "PropertyConstraintViolation",
        "generic": "GenericError",
        "frame": "RpcFrameworkError",
        "message_type": "MessageTypeNotSupported",
        "not_implemented": "NotImplemented",
    },
}

# Generated Structs per version; 2.0.1 joins when tools/generate_ocpp.py --version 2.0.1 has run.
_REQUESTS: dict[Version, Mapping[str, type[msgspec.Struct]]] = {"1.6": v16.REQUESTS, "2.0.1": {}}
_RESPONSES: dict[Version, Mapping[str, type[msgspec.Struct]]] = {"1.6": v16.RESPONSES, "2.0.1": {}}


@dataclass(frozen=True, slots=True)
class Call:
    """A CALL: a request from the peer; `payload` is its raw JSON object."""

    message_id: str
    action: str
    payload: bytes
    nul_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CallResult:
    """A CALLRESULT: the answer to one of our CALLs; `payload` is its raw JSON object."""

    message_id: str
    payload: bytes
    nul_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CallError:
    """A CALLERROR, received or to send."""

    message_id: str
    code: str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    nul_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FrameDropped:
    """A frame nobody can answer; the session logs `reason` and goes on."""

    reason: str
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A CALL whose frame is broken; `reply` is the CALLERROR to send back."""

    reply: CallError


Frame = Call | CallResult | CallError | FrameDropped | FrameRejected


class OcppError(VoltlineError):
    """A message broke OCPP; answer its CALL with this code (OCPP-J 1.6 §4.2.3)."""

    def __init__(self, code: str, description: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(description or code)
        self.code = code
        self.description = description
        self.details = details or {}

    def to_call_error(self, message_id: str) -> CallError:
        """The CALLERROR answering the CALL `message_id`."""
        return CallError(message_id, self.code, self.description, self.details)


class CallInFlightError(VoltlineError):
    """The CSMS already has a CALL outstanding on this connection (OCPP-J 1.6 §4.1.1)."""


class Decoded(NamedTuple):
    """A typed payload and the lenient-mode repairs made to read it (empty when strict)."""

    message: msgspec.Struct
    leniencies: tuple[str, ...] = ()


def code_for(version: Version, problem: Problem) -> str:
    """The CALLERROR code a version uses for a kind of problem."""
    return _CODES[version][problem]


class _CallFrame(msgspec.Struct, array_like=True, tag=2, forbid_unknown_fields=True):
    message_id: str
    action: str
    payload: msgspec.Raw


class _ResultFrame(msgspec.Struct, array_like=True, tag=3, forbid_unknown_fields=True):
    message_id: str
    payload: msgspec.Raw


class _ErrorFrame(msgspec.Struct, array_like=True, tag=4, forbid_unknown_fields=True):
    message_id: str
    code: str
    description: str
    details: msgspec.Raw


_frame_decoder = msgspec.json.Decoder(_CallFrame | _ResultFrame | _ErrorFrame)


def parse_frame(data: bytes | str, version: Version) -> Frame:
    """Sort one incoming text frame (OCPP-J 1.6 §4.1, §4.2), NUL characters replaced first."""
    data, nul_fields = replace_nul(data)
    frame = _sort(data, version)
    if nul_fields and isinstance(frame, Call | CallResult | CallError):
        return dataclasses.replace(frame, nul_fields=nul_fields)
    return frame


def _sort(data: bytes | str, version: Version) -> Frame:
    try:
        frame = _frame_decoder.decode(data)
    except msgspec.MsgspecError:
        return _diagnose(data, version)
    except RecursionError:
        return _too_deep(data, version)
    if isinstance(frame, _CallFrame):
        return _checked_call(frame.message_id, frame.action, bytes(frame.payload), version)
    if isinstance(frame, _ResultFrame):
        payload = bytes(frame.payload)
        if not payload.startswith(b"{"):
            return FrameDropped("CALLRESULT payload is not a JSON object", frame.message_id)
        return CallResult(frame.message_id, payload)
    details = decode_json(bytes(frame.details))
    return CallError(frame.message_id, frame.code, frame.description, details if isinstance(details, dict) else {})


# A JSON `\u0000` escape: a backslash preceded by an even number of backslashes (`\\u0000` is text).
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
_FRAME_PARTS = {
    2: ("messageId", "action", "$"),
    3: ("messageId", "$"),
    4: ("messageId", "errorCode", "errorDescription", "$"),
}


def replace_nul(data: bytes | str) -> tuple[bytes | str, tuple[str, ...]]:
    """The frame with every NUL escape replaced by U+FFFD, and where they were (DESIGN "Durability")."""
    if "\\u0000" not in data if isinstance(data, str) else b"\\u0000" not in data:
        return data, ()  # the hot path: no copy
    raw = data.encode() if isinstance(data, str) else data
    replaced = _NUL_ESCAPE.sub(rb"\1\\ufffd", raw)
    if replaced == raw:
        return data, ()
    return replaced, _nul_fields(raw)


def _nul_fields(raw: bytes) -> tuple[str, ...]:
    try:
        value = decode_json(raw)
    except (DecodeError, RecursionError):
        return ("frame",)
    if not isinstance(value, list) or not value:
        return ("frame",)
    names = _FRAME_PARTS.get(value[0], ()) if type(value[0]) is int else ()
    found: list[str] = []
    pending: deque[tuple[str, Any]] = deque(
        (names[i - 1] if 0 < i <= len(names) else f"[{i}]", item) for i, item in enumerate(value)
    )
    while pending:
        path, item = pending.popleft()
        if isinstance(item, str):
            if "\x00" in item:
                found.append(path)
        elif isinstance(item, dict):
            for key, child in item.items():
                pending.append((f"{path}.{key}".replace("\x00", "\ufffd"), child))
        elif isinstance(item, list):
            pending.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return tuple(found) or ("a field name",)


_FRAME_HEAD = re.compile(rb'\s*\[\s*(\d+)\s*,\s*("(?:[^"\\]|\\.){0,256}")')


def _too_deep(data: bytes | str, version: Version) -> Frame:
    """A frame nested deeper than the decoder goes: answer it by the message id in its head, if any."""
    head = data[:1024].encode() if isinstance(data, str) else data[:1024]
    match = _FRAME_HEAD.match(head)
    if match is None:
        return FrameDropped("nested too deeply, and no OCPP-J message id at its head")
    try:
        message_id = decode_json(match.group(2))
    except DecodeError:  # the decoder read the id before it gave up, so this is belt and braces
        return FrameDropped("nested too deeply, and its message id is not a JSON string")
    if match.group(1) != b"2":
        return FrameDropped("nested too deeply", message_id)
    return _rejected(version, "frame", message_id, "Frame nested too deeply")


def _checked_call(message_id: str, action: str, payload: bytes, version: Version) -> Frame:
    if len(message_id) > MESSAGE_ID_MAX:
        return _rejected(version, "frame", message_id, f"Message id longer than {MESSAGE_ID_MAX} characters")
    if not payload.startswith(b"{"):
        return _rejected(version, "format", message_id, "CALL payload is not a JSON object")
    return Call(message_id, action, payload)


def _rejected(version: Version, problem: Problem, message_id: str, description: str) -> FrameRejected:
    return FrameRejected(CallError(message_id, code_for(version, problem), description))


def _diagnose(data: bytes | str, version: Version) -> Frame:
    try:
        value = decode_json(data)
    except DecodeError:
        return FrameDropped("not JSON")
    except RecursionError:
        return _too_deep(data, version)
    if not isinstance(value, list) or len(value) < 2 or not isinstance(value[1], str):
        return FrameDropped("not an OCPP-J array with a string message id")
    kind, message_id = value[0], value[1]
    if type(kind) is not int or kind not in (2, 3, 4):
        return _rejected(version, "message_type", message_id, f"Unknown message type {kind!r}")
    if kind == 2:
        return _rejected(version, "frame", message_id, "A CALL is [2, messageId, action, {payload}]")
    if kind == 3:
        return FrameDropped("A CALLRESULT is [3, messageId, {payload}]", message_id)
    return _loose_call_error(value, message_id)


def _loose_call_error(value: list[Any], message_id: str) -> Frame:
    # Peers send CALLERRORs without details or with a null description; keep what names the error.
    code, description, details = [*value[2:5], None, None, None][:3]
    if not isinstance(code, str) or len(value) > 5:
        return FrameDropped("A CALLERROR is [4, messageId, errorCode, errorDescription, {details}]", message_id)
    text = description if isinstance(description, str) else ""
    return CallError(message_id, code, text, details if isinstance(details, dict) else {})


def decode_call_payload(version: Version, action: str, payload: Any, *, lenient: bool = False) -> Decoded:
    """The typed request of a CALL; raises OcppError carrying the CALLERROR code."""
    type_ = _REQUESTS[version].get(action)
    if type_ is None:
        raise OcppError(code_for(version, "not_implemented"), f"Unknown action {action!r}")
    return _decode(version, type_, payload, lenient)


def decode_call_result(version: Version, action: str, payload: Any, *, lenient: bool = False) -> Decoded:
    """The typed response to our CALL `action`; raises OcppError naming what is wrong."""
    type_ = _RESPONSES[version].get(action)
    if type_ is None:
        raise OcppError(code_for(version, "not_implemented"), f"Unknown action {action!r}")
    return _decode(version, type_, payload, lenient)


def _decode(version: Version, type_: type[msgspec.Struct], payload: Any, lenient: bool) -> Decoded:
    data = payload if isinstance(payload, bytes | str) else encode_payload(payload)
    try:
        if lenient:
            message, notes = decode_payload_lenient(type_, data)
            return Decoded(message, tuple(notes))
        return Decoded(decode_payload(type_, data))
    except SchemaViolationError as error:
        raise OcppError(code_for(version, error.kind), error.message) from None


def encode_call(message_id: str, action: str, payload: Any) -> bytes:
    """`[2, messageId, action, payload]` as compact JSON (OCPP-J 1.6 §4.2.1)."""
    return b"[2,%b,%b,%b]" % (encode_json(message_id), encode_json(action), encode_payload(payload))


def encode_call_result(message_id: str, payload: Any) -> bytes:
    """`[3, messageId, payload]` as compact JSON (OCPP-J 1.6 §4.2.2)."""
    return b"[3,%b,%b]" % (encode_json(message_id), encode_payload(payload))


def encode_call_error(error: CallError) -> bytes:
    """`[4, messageId, errorCode, errorDescription, details]` as compact JSON (OCPP-J 1.6 §4.2.3)."""
    return encode_json([4, error.message_id, error.code, error.description[:DESCRIPTION_MAX], error.details])


def new_message_id() -> str:
    """A fresh message id: a UUID, unique on the connection and within 36 characters (OCPP-J 1.6 §4.1)."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class OutstandingCall:
    """The CALL the CSMS sent and still waits on."""

    message_id: str
    action: str


class PendingCalls:
    """The CSMS->charger CALL awaiting its answer: at most one per connection (OCPP-J 1.6 §4.1.1)."""

    def __init__(self, make_message_id: Callable[[], str] = new_message_id) -> None:
        self._make_message_id = make_message_id
        self._outstanding: OutstandingCall | None = None

    @property
    def outstanding(self) -> OutstandingCall | None:
        """The CALL in flight, if any."""
        return self._outstanding

    def start(self, action: str) -> OutstandingCall:
        """Claim the connection for a new CALL; raises CallInFlightError while one is outstanding."""
        if self._outstanding is not None:
            raise CallInFlightError(f"{self._outstanding.action} {self._outstanding.message_id} is still outstanding")
        self._outstanding = OutstandingCall(self._make_message_id(), action)
        return self._outstanding

    def match(self, frame: CallResult | CallError) -> OutstandingCall | None:
        """The CALL this answer belongs to, now settled; None for an unknown message id (ignored)."""
        current = self._outstanding
        if current is None or frame.message_id != current.message_id:
            return None
        self._outstanding = None
        return current

    def abandon(self, message_id: str) -> bool:
        """Give up on a CALL (timeout, closed socket); False when it was not the one outstanding."""
        if self._outstanding is None or self._outstanding.message_id != message_id:
            return False
        self._outstanding = None
        return True
