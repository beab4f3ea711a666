"""Hypothesis strategies for OCPP 1.6 frames a charger may send: valid from the OCA schemas, then mutated.

The schemas are the OCA JSON schemas the `ocpp` package ships (the ones tools/generate_ocpp.py
reads). `payloads(action)` draws payloads valid against the schema: every required field, a
subset of the optional ones, JSON types, enums, `maxLength`, `minItems`, `multipleOf: 0.1`,
`format: date-time` over Python's whole range of years and offsets. Strings are any Unicode
text (NUL and control characters included: the schema allows them). `frames()` mixes those
CALLs with mutations: wrong types, missing required fields, extra fields, huge strings, deep
nesting, invalid UTF-8 in binary frames, bad message ids, wrong message type numbers,
CALLRESULTs and CALLERRORs for unknown ids, unknown actions, frames that are not JSON.
"""

from __future__ import annotations

import importlib.resources
import json
import random
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase, given, settings

# OCPP 1.6 (with the security whitepaper's messages the OCA schemas ship) charger -> CSMS actions.
CHARGER_ACTIONS = (
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "SecurityEventNotification",
    "SignCertificate",
    "SignedFirmwareStatusNotification",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
)
MAX_FRAME_BYTES = 262_144  # VOLTLINE_OCPP_MAX_FRAME_BYTES: a larger frame closes the socket (1009), not fuzzed here
# Values a field of this name takes more often than random text gives: numbers make meter readings.
NUMERIC_TEXT = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
)


@dataclass(frozen=True)
class FuzzFrame:
    """One frame to send; `call_id` is set when the gateway must answer it (a CALL with a usable id)."""

    data: str | bytes
    call_id: str | None = None


@cache
def schema(action: str, *, response: bool = False) -> dict[str, Any]:
    """The OCA JSON schema of a 1.6 request (or response)."""
    folder = importlib.resources.files("ocpp") / "v16" / "schemas"
    loaded: dict[str, Any] = json.loads((folder / f"{action}{'Response' if response else ''}.json").read_text())
    return loaded


@cache
def timestamps() -> st.SearchStrategy[str]:
    """RFC 3339 date-times as chargers write them, over years 1-9999 and offsets up to ±23:59 (some past the range)."""
    offsets = st.one_of(
        st.just("Z"),
        st.just(""),
        st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(_offset_text),
    )
    moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
    separators = st.sampled_from(["T", " "])
    fractions = st.sampled_from(["", ".0", ".123", ".123456", ".123456789"])
    recent = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1))
    return st.builds(
        lambda moment, sep, fraction, offset: (
            f"{moment.year:04d}" + moment.strftime(f"-%m-%d{sep}%H:%M:%S") + fraction + offset
        ),
        st.one_of(recent, moments),
        separators,
        fractions,
        offsets,
    )


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@cache
def payloads(action: str) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads of a charger's CALL that are valid against the action's OCA schema."""
    root = schema(action)
    value: st.SearchStrategy[dict[str, Any]] = _from_schema(root, root, "")
    return value


def _from_schema(node: dict[str, Any], root: dict[str, Any], name: str) -> st.SearchStrategy[Any]:
    if "$ref" in node:
        return _from_schema(root["definitions"][node["$ref"].rsplit("/", 1)[-1]], root, name)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        properties = node.get("properties", {})
        required = set(node.get("required", []))
        return st.fixed_dictionaries(
            {key: _from_schema(sub, root, key) for key, sub in properties.items() if key in required},
            optional={key: _from_schema(sub, root, key) for key, sub in properties.items() if key not in required},
        )
    if kind == "array":
        return st.lists(_from_schema(node["items"], root, name), min_size=node.get("minItems", 0), max_size=4)
    if kind == "string":
        return _strings(node, name)
    if kind == "integer":
        return st.one_of(st.integers(0, 100), st.integers(-(2**31), 2**31), st.integers(-(2**70), 2**70))
    if kind == "number":
        if node.get("multipleOf") == 0.1:
            return st.integers(-(10**7), 10**7).map(lambda tenths: tenths / 10)
        return st.one_of(st.integers(-(10**9), 10**9), st.floats(allow_nan=False, allow_infinity=False))
    if kind == "boolean":
        return st.booleans()
    raise ValueError(f"schema node not understood: {node}")


def _strings(node: dict[str, Any], name: str) -> st.SearchStrategy[str]:
    if node.get("format") == "date-time":
        return timestamps()
    if node.get("format") == "uri":
        return st.from_regex(r"\A(https?|ftp)://[a-z0-9.]{1,20}/[A-Za-z0-9/._-]{0,30}\Z")
    limit = node.get("maxLength")
    text = st.text(max_size=limit if limit is not None else 64)
    if name == "value":
        text = st.one_of(NUMERIC_TEXT, text)
    return text


@cache
def message_ids() -> st.SearchStrategy[str]:
    """Message ids a CALL may carry (OCPP-J 1.6 §4.1: a string of at most 36 characters)."""
    return st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=36))


def _call(message_id: str, action: str, payload: Any) -> FuzzFrame:
    return FuzzFrame(json.dumps([2, message_id, action, payload], ensure_ascii=False), message_id)


@st.composite
def mutated_calls(draw: st.DrawFn, action: str) -> FuzzFrame:
    """A CALL of a charger action whose payload breaks its schema in one way."""
    payload = dict(draw(payloads(action)))
    message_id = draw(message_ids())
    mutation = draw(st.sampled_from(["drop", "retype", "extra", "huge", "control", "nested", "not_object"]))
    keys = sorted(payload)
    if mutation == "drop" and keys:
        payload.pop(draw(st.sampled_from(keys)))
    elif mutation == "retype" and keys:
        payload[draw(st.sampled_from(keys))] = draw(_any_json())
    elif mutation == "extra":
        payload[draw(st.text(min_size=1, max_size=20))] = draw(_any_json())
    elif mutation == "huge":
        size = draw(st.integers(1_000, 40_000))  # escaped, up to 6 bytes a character
        payload[draw(st.sampled_from(keys)) if keys else "x"] = (
            draw(st.sampled_from(["A", "\x00", "é", "\u2028"])) * size
        )
    elif mutation == "control":
        text = draw(st.text(alphabet=st.characters(codec="utf-8", max_codepoint=0x1F), min_size=1, max_size=20))
        payload[draw(st.sampled_from(keys)) if keys else "x"] = text
    elif mutation == "nested":
        depth = draw(st.integers(1, 60_000))
        nested = "[" * depth + "]" * depth
        return FuzzFrame(f'[2,{json.dumps(message_id)},{json.dumps(action)},{{"data":{nested}}}]', message_id)
    else:
        return FuzzFrame(json.dumps([2, message_id, action, draw(_any_json())]), message_id)
    return _call(message_id, action, payload)


@cache
def _any_json() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )


@st.composite
def broken_frames(draw: st.DrawFn) -> FuzzFrame:
    """Frames that are not a well-formed CALL: the gateway answers a CALLERROR or drops them, and stays open."""
    message_id = draw(message_ids())
    kind = draw(st.sampled_from(["id", "type", "result", "error", "action", "binary", "text", "deep"]))
    if kind == "id":  # a message id that is not a string, too long, or empty
        bad = draw(
            st.one_of(
                st.integers(),
                st.none(),
                st.text(min_size=37, max_size=80),
                st.just(""),
                st.lists(st.integers(), max_size=2),
            )
        )
        return FuzzFrame(json.dumps([2, bad, "Heartbeat", {}]))
    if kind == "type":  # a message type number OCPP-J does not have
        number = draw(
            st.one_of(st.integers(), st.sampled_from(["2", 2.0, True, None, 5])).filter(
                lambda n: n not in (2, 3, 4) or type(n) is not int
            )
        )
        return FuzzFrame(json.dumps([number, message_id, "Heartbeat", {}]))
    if kind == "result":  # a CALLRESULT for a CALL nobody made
        return FuzzFrame(json.dumps([3, message_id, draw(_any_json())]))
    if kind == "error":  # a CALLERROR for a CALL nobody made
        return FuzzFrame(
            json.dumps([4, message_id, draw(st.text(max_size=30)), draw(st.text(max_size=50)), draw(_any_json())])
        )
    if kind == "action":  # an action 1.6 does not have
        return FuzzFrame(json.dumps([2, message_id, draw(st.text(max_size=40)), {}]), message_id)
    if kind == "binary":  # bytes that are not UTF-8 (or are, with garbage), sent as a binary frame
        head = json.dumps([2, message_id, "Heartbeat"]).encode()[:-1]
        return FuzzFrame(head + b',{"x":"' + draw(st.binary(min_size=1, max_size=64)) + b'"}]')
    if kind == "deep":
        depth = draw(st.integers(900, 100_000))
        return FuzzFrame("[" * depth + "]" * depth)
    return FuzzFrame(draw(st.one_of(st.text(max_size=200), st.from_regex(r"\A\[2,\"[a-z]{1,5}\",\"Heartbeat\",\{\Z"))))


def generate(strategy: st.SearchStrategy[FuzzFrame], count: int, batch: int = 10) -> list[FuzzFrame]:
    """`count` frames drawn by Hypothesis, derandomized: the same frames on every run and machine."""
    drawn: list[FuzzFrame] = []

    @settings(
        max_examples=-(-count // batch),
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(strategy.filter(lambda frame: len(frame.data) < MAX_FRAME_BYTES), min_size=batch, max_size=batch))
    def collect(frames: list[FuzzFrame]) -> None:
        drawn.extend(frames)

    collect()
    return drawn[:count]


def corpus(count: int) -> list[FuzzFrame]:
    """About `count` frames: per action, half schema-valid CALLs and a quarter mutated ones; a quarter broken frames.

    Each kind is drawn by its own derandomized run (Hypothesis favours simple choices, so one run
    over a mix would draw the first branch far more often) and the kinds are shuffled together
    with a fixed seed.
    """
    share = max(1, count // (4 * len(CHARGER_ACTIONS)))
    frames: list[FuzzFrame] = []
    for action in CHARGER_ACTIONS:
        frames += generate(st.builds(_call, message_ids(), st.just(action), payloads(action)), 2 * share)
        frames += generate(mutated_calls(action), share)
    frames += generate(broken_frames(), count - len(frames))
    random.Random(16).shuffle(frames)
    return frames
