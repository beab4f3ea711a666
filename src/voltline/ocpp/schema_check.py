"""Schema rules for OCPP payloads that msgspec does not check alone, and the payload codec.

* Numbers are decimal-exact. A `JsonDecimal` field decodes from the JSON number's own text,
  never through a float, and refuses a JSON string; `Tenths` also checks `multipleOf: 0.1` on
  that text (DESIGN "Decisions that settle conflicts > OCPP"), so 10.6 and 31.8 pass, 10.65 fails.
  Encoding writes them back as JSON numbers with the same digits.
* `DateTime` is a `str` shaped like RFC 3339 (`T` or a space, an optional offset);
  `parse_ocpp_datetime` reads it, a timestamp without an offset being UTC. Decoding reads every
  `DateTime` of a message once: a timestamp the pattern lets through but Python cannot hold
  (year 0, 30 February, an offset that moves it out of years 1-9999) is a property violation
  (OCPP-J 1.6 §4.2.3 PropertyConstraintViolation), so no handler meets one.
* No OCPP schema allows `null`, but msgspec reads `null` as an absent optional field: strict
  decoding refuses it, lenient decoding drops it.
* Every failure is a `SchemaViolationError` whose `kind` says which OCPP constraint broke
  (format, occurrence, type, property); `voltline.ocpp.rpc` turns it into the version's
  CALLERROR code.
* Lenient decoding (DESIGN "Lenient mode") is tried only after strict decoding failed: it drops
  unknown fields and nulls, truncates over-long strings, reads numbers sent as strings (and
  strings sent as numbers), and returns one note per repair for the log.

The msgspec decoders and the decimal-number encoder live here because `voltline.codec` has no
typed decoder and writes `Decimal` as strings; they belong in `codec` once it grows both.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self, TypeVar

import msgspec
import msgspec.inspect as mi

from voltline.errors import VoltlineError

T = TypeVar("T")

Violation = Literal["format", "occurrence", "type", "property", "generic"]

DATE_TIME_PATTERN = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?"
    r"(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?$"
)
DateTime = Annotated[str, msgspec.Meta(pattern=DATE_TIME_PATTERN)]
# `format: uri` (GetDiagnostics, UpdateFirmware locations): a scheme, then no whitespace.
Uri = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")]


class JsonDecimal(Decimal):
    """A JSON number kept exactly as written: decoded from its text, never through a float."""

    __slots__ = ()

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Accept a JSON integer or decimal number; refuse strings, booleans and the rest."""
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise TypeError(f"Expected `number`, got `{json_type_name(value)}`")
        return cls(value)


class Tenths(JsonDecimal):
    """A number that is a whole count of tenths (`multipleOf: 0.1`), checked on its decimal text."""

    __slots__ = ()

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Accept a JSON number whose decimal text is a multiple of 0.1."""
        number = super().from_json(value)
        if not is_multiple_of_tenth(number):
            raise ValueError("Expected a multiple of 0.1")
        return number

    @classmethod
    def from_tenths(cls, tenths: int) -> Tenths:
        """The value of `tenths` tenths: 106 -> 10.6, 160 -> 16.0."""
        return cls(Decimal(tenths).scaleb(-1))


class SchemaViolationError(VoltlineError):
    """A payload broke its schema; `kind` names the OCPP constraint, the text says where."""

    def __init__(self, kind: Violation, message: str) -> None:
        super().__init__(message)
        self.kind: Violation = kind
        self.message = message


def is_multiple_of_tenth(number: Decimal) -> bool:
    """True when the decimal has no non-zero digit below the tenths (exact, no arithmetic)."""
    _, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):
        return False
    hidden = -1 - exponent
    return hidden <= 0 or not any(digits[-hidden:])


def parse_ocpp_datetime(text: str) -> datetime:
    """Read an OCPP timestamp as an aware UTC datetime; without an offset it is UTC (ValueError if neither)."""
    if re.match(DATE_TIME_PATTERN, text) is None:
        raise ValueError(f"Invalid OCPP timestamp: {text!r}")
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except OverflowError:  # an offset that moves the moment out of years 1-9999
        raise ValueError(f"OCPP timestamp out of range: {text!r}") from None


def json_type_name(value: object) -> str:
    """The JSON name of a decoded value's type, as msgspec words its errors."""
    names: dict[type, str] = {str: "str", int: "int", bool: "bool", list: "array", dict: "object", float: "float"}
    if value is None:
        return "null"
    if isinstance(value, Decimal):
        return "float"
    return names.get(type(value), type(value).__name__)


_KINDS: tuple[tuple[re.Pattern[str], Violation], ...] = (
    (re.compile(r"^Object missing required field"), "occurrence"),
    (re.compile(r"^Expected `array` of length"), "occurrence"),
    (re.compile(r"^Object contains unknown field"), "format"),
    (re.compile(r"^Expected `[^`]*`, got `"), "type"),
    (re.compile(r"^(Expected |Invalid enum value)"), "property"),
)


def classify(message: str) -> Violation:
    """The OCPP constraint behind a msgspec validation message."""
    for pattern, kind in _KINDS:
        if pattern.match(message):
            return kind
    return "generic"


def _decode_hook(type_: type, value: Any) -> Any:
    if isinstance(type_, type) and issubclass(type_, JsonDecimal):
        return type_.from_json(value)
    raise NotImplementedError


def _encode_hook(value: Any) -> Any:
    if isinstance(value, Decimal):
        return Decimal(value)
    raise NotImplementedError


_encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=_encode_hook)
_plain_decoder = msgspec.json.Decoder(float_hook=Decimal)


_typed_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def _typed_decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    decoder = _typed_decoders.get(type_)
    if decoder is None:
        decoder = _typed_decoders[type_] = msgspec.json.Decoder(type_, dec_hook=_decode_hook, float_hook=Decimal)
    return decoder


_type_infos: dict[Any, mi.Type] = {}


def _type_info(type_: Any) -> mi.Type:
    info = _type_infos.get(type_)
    if info is None:
        info = _type_infos[type_] = mi.type_info(type_)
    return info


def _mentions_null(payload: bytes | str) -> bool:
    return b"null" in payload if isinstance(payload, bytes) else "null" in payload


def encode_payload(payload: Any) -> bytes:
    """Compact JSON for a message struct (or plain values), decimals written as numbers."""
    return _encoder.encode(payload)


def decode_plain(data: bytes | str) -> Any:
    """Decode JSON into plain values, numbers with a fraction as exact `Decimal`."""
    return _plain_decoder.decode(data)


def decode_payload(type_: type[T], payload: bytes | str) -> T:
    """Decode a JSON object into `type_` strictly; raises SchemaViolationError."""
    try:
        message: T = _typed_decoder(type_).decode(payload)
    except msgspec.DecodeError as error:
        raise _violation(error) from None
    if _mentions_null(payload):
        _refuse_null(decode_plain(payload), _type_info(type_), "$")
    _check_timestamps(message, _type_info(type_), "$")
    return message


def decode_payload_lenient(type_: type[T], payload: bytes | str) -> tuple[T, list[str]]:
    """Decode like `decode_payload`, repairing what lenient mode allows; returns the repairs made."""
    try:
        return decode_payload(type_, payload), []
    except SchemaViolationError as error:
        if error.kind == "format" and not error.message.startswith("Object contains unknown field"):
            raise
    notes: list[str] = []
    repaired = _repair(decode_plain(payload), _type_info(type_), "$", notes)
    try:
        message: T = msgspec.convert(repaired, type_, dec_hook=_decode_hook)
    except msgspec.ValidationError as error:
        raise _violation(error) from None
    _check_timestamps(message, _type_info(type_), "$")
    return message, notes


def _violation(error: msgspec.DecodeError) -> SchemaViolationError:
    kind = classify(str(error)) if isinstance(error, msgspec.ValidationError) else "format"
    return SchemaViolationError(kind, str(error))


def _check_timestamps(value: Any, info: mi.Type, path: str) -> None:
    """Read every `DateTime` the message holds; one Python cannot hold is a property violation."""
    info = _without_none(info)
    if value is None:
        return
    if isinstance(info, mi.StrType):
        try:
            parse_ocpp_datetime(value)
        except ValueError:
            raise SchemaViolationError(
                "property", f"Expected a calendar date-time in years 1-9999 - at `{path}`"
            ) from None
    elif isinstance(info, mi.StructType):
        for field in _dated_fields(info):
            _check_timestamps(getattr(value, field.name), field.type, f"{path}.{field.encode_name}")
    elif isinstance(info, mi.ListType) and _holds_timestamps(info.item_type):
        for index, item in enumerate(value):
            _check_timestamps(item, info.item_type, f"{path}[{index}]")


_dated: dict[Any, tuple[mi.Field, ...]] = {}


def _dated_fields(info: mi.StructType) -> tuple[mi.Field, ...]:
    """The fields of a struct that may hold a `DateTime` (cached: MeterValues is the hot path)."""
    found = _dated.get(info.cls)
    if found is None:
        found = _dated[info.cls] = tuple(field for field in info.fields if _holds_timestamps(field.type))
    return found


def _holds_timestamps(info: mi.Type) -> bool:
    info = _without_none(info)
    if isinstance(info, mi.StrType):
        return info.pattern == DATE_TIME_PATTERN
    if isinstance(info, mi.ListType):
        return _holds_timestamps(info.item_type)
    return isinstance(info, mi.StructType) and bool(_dated_fields(info))


def _refuse_null(value: Any, info: mi.Type, path: str) -> None:
    if _accepts_any(info):
        return
    if value is None:
        raise SchemaViolationError("type", f"Expected a value, got `null` - at `{path}`")
    info = _without_none(info)
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        fields = {field.encode_name: field.type for field in info.fields}
        for key, item in value.items():
            if key in fields:
                _refuse_null(item, fields[key], f"{path}.{key}")
    elif isinstance(info, mi.ListType) and isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_null(item, info.item_type, f"{path}[{index}]")


def _accepts_any(info: mi.Type) -> bool:
    members = info.types if isinstance(info, mi.UnionType) else (info,)
    return any(isinstance(member, mi.AnyType) for member in members)


def _without_none(info: mi.Type) -> mi.Type:
    if isinstance(info, mi.UnionType):
        rest = [member for member in info.types if not isinstance(member, mi.NoneType)]
        return rest[0] if len(rest) == 1 else info
    return info


def _repair(value: Any, info: mi.Type, path: str, notes: list[str]) -> Any:
    info = _without_none(info)
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        return _repair_object(value, info, path, notes)
    if isinstance(info, mi.ListType) and isinstance(value, list):
        return [_repair(item, info.item_type, f"{path}[{index}]", notes) for index, item in enumerate(value)]
    if isinstance(info, mi.StrType):
        return _repair_string(value, info, path, notes)
    if isinstance(info, mi.IntType) and isinstance(value, str):
        return _number_from_string(value, path, notes, integral=True)
    if isinstance(info, mi.CustomType) and issubclass(info.cls, JsonDecimal) and isinstance(value, str):
        return _number_from_string(value, path, notes, integral=False)
    return value


def _repair_object(value: dict[str, Any], info: mi.StructType, path: str, notes: list[str]) -> dict[str, Any]:
    fields = {field.encode_name: field.type for field in info.fields}
    repaired: dict[str, Any] = {}
    for key, item in value.items():
        if key not in fields:
            if info.forbid_unknown_fields:
                notes.append(f"{path}.{key}: dropped an unknown field")
            else:
                repaired[key] = item
        elif item is None and not _accepts_any(fields[key]):
            notes.append(f"{path}.{key}: dropped a null")
        else:
            repaired[key] = _repair(item, fields[key], f"{path}.{key}", notes)
    return repaired


def _repair_string(value: Any, info: mi.StrType, path: str, notes: list[str]) -> Any:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        value = str(value)
        notes.append(f"{path}: read a number as the string {value!r}")
    if isinstance(value, str) and info.max_length is not None and len(value) > info.max_length:
        notes.append(f"{path}: truncated {len(value)} characters to {info.max_length}")
        value = value[: info.max_length]
    return value


def _number_from_string(value: str, path: str, notes: list[str], *, integral: bool) -> Any:
    try:
        number = Decimal(value.strip())
    except ArithmeticError:
        return value
    if not number.is_finite() or (integral and number != number.to_integral_value()):
        return value
    notes.append(f"{path}: read the string {value!r} as a number")
    return int(number) if integral else number
