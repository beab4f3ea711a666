"""The only module that calls msgspec's encoders and decoders."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

DecodeError = msgspec.DecodeError
ConvertError = msgspec.ValidationError


def encode_json(value: Any) -> bytes:
    """Encode a value (structs, dicts, lists, scalars) as compact JSON bytes."""
    return _encoder.encode(value)


def decode_json(data: bytes | str) -> Any:
    """Decode JSON into plain Python values; raises `DecodeError` on malformed input."""
    return _decoder.decode(data)


def convert(value: Any, type_: type[T]) -> T:
    """Convert plain values into a typed struct; raises `ConvertError` on a mismatch."""
    return msgspec.convert(value, type_, strict=False)


def to_builtins(value: Any) -> Any:
    """Turn structs into plain dicts and lists."""
    return msgspec.to_builtins(value)


def json_schema_components(types: list[Any]) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """JSON Schemas for the given types, with shared definitions under `#/components/schemas`."""
    return msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
