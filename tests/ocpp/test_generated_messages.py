"""Generated OCPP 1.6 Structs against the OCA schemas they come from, and against recorded vendor frames.

Examples are built from the schemas (the schemas carry none) and every accepted example is also
checked with fastjsonschema, so the Structs and the reference validator agree (DESIGN: OCPP).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

from voltline.ocpp import rpc
from voltline.ocpp.schema_check import Tenths, decode_payload, encode_payload, parse_ocpp_datetime
from voltline.ocpp.v16 import messages as v16

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src/voltline/ocpp/v16"
SCHEMAS = Path(str(importlib.resources.files("ocpp"))) / "v16" / "schemas"
FIXTURES = ROOT / "tests/fixtures/ocpp"
SCHEMA_FILES = sorted(SCHEMAS.glob("*.json"), key=lambda path: path.name)
Path_ = tuple[str | int, ...]


def load_schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def action_of(path: Path) -> tuple[str, bool]:
    """Action name and whether the file is a response schema."""
    return path.stem.removesuffix("Response"), path.stem.endswith("Response")


def decode(path: Path, payload: Any) -> Any:
    action, response = action_of(path)
    decoder = rpc.decode_call_result if response else rpc.decode_call_payload
    return decoder("1.6", action, json.dumps(payload).encode()).message


# ---------------------------------------------------------------- (a) the committed file is what the generator makes


def test_generator_reproduces_committed_messages_byte_for_byte(tmp_path: Path) -> None:
    """DESIGN: generated messages are committed; regenerating from the pinned schemas changes nothing."""
    subprocess.run(
        [sys.executable, str(ROOT / "tools/generate_ocpp.py"), "--version", "1.6", "--out", str(tmp_path)], check=True
    )
    assert (tmp_path / "messages.py").read_bytes() == (PACKAGE / "messages.py").read_bytes()
    assert (tmp_path / "SCHEMAS.sha256").read_bytes() == (PACKAGE / "SCHEMAS.sha256").read_bytes()


def test_schema_hash_matches_the_installed_ocpp_package() -> None:
    """DESIGN: pin `ocpp` exactly and commit a hash of the schemas used."""
    total = hashlib.sha256(b"".join(path.read_bytes() for path in SCHEMA_FILES)).hexdigest()
    lines = (PACKAGE / "SCHEMAS.sha256").read_text(encoding="utf-8").splitlines()
    version = importlib.metadata.version("ocpp")
    assert lines[0] == f"{total}  ocpp=={version}:ocpp/v16/schemas/*.json (concatenated in name order)"
    assert lines[1:] == [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}" for path in SCHEMA_FILES]
    header = (PACKAGE / "messages.py").read_text(encoding="utf-8").splitlines()[:2]
    assert header[0].endswith(f"from ocpp=={version} (ocpp/v16/schemas).")
    assert header[1] == f"# Schemas sha256: {total}"


def test_every_schema_has_a_struct_in_the_action_maps() -> None:
    """Each of the 78 schema files is a request or a response Struct, keyed by action."""
    requests = {action_of(path)[0] for path in SCHEMA_FILES if not action_of(path)[1]}
    responses = {action_of(path)[0] for path in SCHEMA_FILES if action_of(path)[1]}
    assert set(v16.REQUESTS) == requests and set(v16.RESPONSES) == responses
    assert len(requests) == 39
    assert v16.REQUESTS["BootNotification"] is v16.BootNotificationRequest
    assert v16.RESPONSES["GetCompositeSchedule"] is v16.GetCompositeScheduleResponse


# ---------------------------------------------------------------- (b) examples built from the schemas


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return root["definitions"][schema["$ref"].removeprefix("#/definitions/")]
    return schema


def example(schema: dict[str, Any], root: dict[str, Any], maximal: bool) -> Any:
    """Required fields with small valid values, or (maximal) every field at its limits."""
    schema = resolve(schema, root)
    if "enum" in schema:
        return schema["enum"][-1 if maximal else 0]
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required", [])
        props = schema.get("properties", {})
        return {key: example(sub, root, maximal) for key, sub in props.items() if maximal or key in required}
    if kind == "array":
        count = min(2, schema.get("maxItems", 2)) if maximal else schema.get("minItems", 0)
        return [example(schema["items"], root, maximal) for _ in range(count)]
    return scalar_example(schema, maximal)


def scalar_example(schema: dict[str, Any], maximal: bool) -> Any:
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2024-05-01T12:00:00.123+02:00" if maximal else "2024-05-01T12:00:00Z"
        if schema.get("format") == "uri":
            return "ftp://user:secret@files.example.com/diagnostics/" if maximal else "https://example.com"
        return "é" * schema["maxLength"] if maximal and "maxLength" in schema else "A"
    if kind == "integer":
        return int(schema.get("maximum", 2147483647) if maximal else schema.get("minimum", 0))
    if kind == "number":
        return 31.8 if maximal else 10.6
    if kind is None:  # any JSON value
        return {"free": [1.25, "form", None]}
    return maximal  # boolean


def validator(path: Path) -> Callable[[Any], Any]:
    return fastjsonschema.compile(load_schema(path))


@pytest.mark.parametrize("maximal", [False, True], ids=["minimal", "maximal"])
@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.stem)
def test_schema_example_decodes_and_reencodes_unchanged(path: Path, maximal: bool) -> None:
    """An example valid for the OCA schema decodes into its Struct and encodes back to the same JSON."""
    schema = load_schema(path)
    payload = example(schema, schema, maximal)
    validator(path)(payload)
    message = decode(path, payload)
    assert type(message).__name__ == (path.stem if path.stem.endswith("Response") else path.stem + "Request")
    assert json.loads(encode_payload(message)) == payload


@pytest.mark.slow
def test_generator_is_ready_for_2_0_1(tmp_path: Path) -> None:
    """DESIGN: 2.0.1 is generated the same way (renames per field, e.g. `responderURL`); its examples round-trip."""
    generator = ROOT / "tools/generate_ocpp.py"
    subprocess.run([sys.executable, str(generator), "--version", "2.0.1", "--out", str(tmp_path)], check=True)
    spec = importlib.util.spec_from_file_location("voltline_v201_preview", tmp_path / "messages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        failures = []
        for path in sorted((SCHEMAS.parent.parent / "v201" / "schemas").glob("*.json")):
            schema = load_schema(path)
            action, response = action_of(path)
            struct = (module.RESPONSES if response else module.REQUESTS)[action.removesuffix("Request")]
            for maximal in (False, True):
                payload = example(schema, schema, maximal)
                validator(path)(payload)
                if json.loads(encode_payload(decode_payload(struct, json.dumps(payload)))) != payload:
                    failures.append((path.stem, maximal))
        assert failures == []
        assert len(module.REQUESTS) == len(module.RESPONSES) == 64
        assert b'field(name="responderURL")' in (tmp_path / "messages.py").read_bytes()
    finally:
        del sys.modules[spec.name]


def walk(schema: dict[str, Any], root: dict[str, Any], value: Any, at: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, sub-schema) under a maximal example, the root object included."""
    schema = resolve(schema, root)
    yield at, schema
    if schema.get("type") == "object" and "enum" not in schema:
        for key, sub in schema.get("properties", {}).items():
            yield from walk(sub, root, value[key], (*at, key))
    elif schema.get("type") == "array":
        yield from walk(schema["items"], root, value[0], (*at, 0))


def put(payload: Any, at: Path_, value: Any) -> Any:
    changed = copy.deepcopy(payload)
    target = changed
    for step in at[:-1]:
        target = target[step]
    if value is DROP:
        del target[at[-1]]
    else:
        target[at[-1]] = value
    return changed


DROP = object()
WRONG_TYPE = {"string": 12, "integer": "12", "number": "10.6", "boolean": "true", "object": [], "array": {}}


def mutations(schema: dict[str, Any], payload: Any) -> Iterator[tuple[str, Path_, Any, str]]:
    """(name, path, replacement, expected 1.6 CALLERROR code) for every constraint in a schema."""
    for at, sub in walk(schema, schema, payload):
        kind = sub.get("type")
        if kind == "object" and "enum" not in sub:
            yield "unknown field", (*at, "vendorExtra"), 1, "FormationViolation"
            for key in sub.get("required", []):
                yield "missing required", (*at, key), DROP, "OccurenceConstraintViolation"
        if not at:
            continue
        yield "wrong type", at, WRONG_TYPE[kind], "TypeConstraintViolation"
        if kind == "integer":
            yield "fraction for integer", at, 1.5, "TypeConstraintViolation"
        if "maxLength" in sub:
            yield "too long", at, "x" * (sub["maxLength"] + 1), "PropertyConstraintViolation"
        if "enum" in sub:
            yield "not in enum", at, "NotAnOcppValue", "PropertyConstraintViolation"
        if sub.get("format") in ("date-time", "uri"):
            yield "bad format", at, "yesterday at noon", "PropertyConstraintViolation"
        if "multipleOf" in sub:
            yield "not a multiple of 0.1", at, 10.65, "PropertyConstraintViolation"
        if sub.get("minItems"):
            yield "too few items", at, [], "OccurenceConstraintViolation"


MUTATION_CASES = [
    pytest.param(path, at, value, code, id=f"{path.stem}:{name}:{'.'.join(map(str, at))}")
    for path in SCHEMA_FILES
    for name, at, value, code in mutations(load_schema(path), example(load_schema(path), load_schema(path), True))
]


@pytest.mark.parametrize(("path", "at", "value", "code"), MUTATION_CASES)
def test_schema_violation_gets_the_callerror_code_of_its_kind(path: Path, at: Path_, value: Any, code: str) -> None:
    """OCPP-J 1.6 §4.2.3: missing -> Occurence, JSON type -> Type, value -> Property, shape -> Formation."""
    schema = load_schema(path)
    payload = put(example(schema, schema, True), at, value)
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validator(path)(payload)
    with pytest.raises(rpc.OcppError) as caught:
        decode(path, payload)
    assert caught.value.code == code, caught.value.description


def test_there_is_a_mutation_for_every_kind_of_constraint() -> None:
    codes = {case.values[3] for case in MUTATION_CASES}
    assert len(MUTATION_CASES) > 600
    assert codes == {
        "FormationViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "PropertyConstraintViolation",
    }


def charging_profile(*limits: Any) -> bytes:
    periods = [{"startPeriod": 900 * index, "limit": limit} for index, limit in enumerate(limits)]
    schedule = {"chargingRateUnit": "A", "chargingSchedulePeriod": periods, "minChargingRate": 6.0}
    profile = {
        "chargingProfileId": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": schedule,
    }
    return json.dumps({"connectorId": 1, "csChargingProfiles": profile}).encode()


def test_charging_limits_are_checked_as_decimal_text() -> None:
    """DESIGN: multipleOf 0.1 is checked on the decimal text, not as a float: 10.6 and 31.8 pass."""
    message = rpc.decode_call_payload("1.6", "SetChargingProfile", charging_profile(10.6, 31.8, 16, 0.0)).message
    assert isinstance(message, v16.SetChargingProfileRequest)
    limits = [period.limit for period in message.cs_charging_profiles.charging_schedule.charging_schedule_period]
    assert limits == [Decimal("10.6"), Decimal("31.8"), Decimal("16"), Decimal("0.0")]
    assert all(isinstance(limit, Tenths) for limit in limits)
    assert b'"limit":10.6}' in encode_payload(message) and b'"limit":31.8}' in encode_payload(message)


@pytest.mark.parametrize("text", ["10.65", "0.05", "31.80000000000000000001", "1e-1000"])
def test_charging_limit_with_a_digit_below_the_tenths_is_refused(text: str) -> None:
    """SetChargingProfile.json: limit has multipleOf 0.1; 10.65 -> PropertyConstraintViolation."""
    payload = charging_profile(10.6).replace(b'"limit": 10.6', b'"limit": ' + text.encode())
    with pytest.raises(rpc.OcppError) as caught:
        rpc.decode_call_payload("1.6", "SetChargingProfile", payload)
    assert caught.value.code == "PropertyConstraintViolation"
    assert caught.value.description.endswith("chargingSchedulePeriod[0].limit`")


@pytest.mark.parametrize("text", ["10.60", "1e3", "-0.3", "31.800000000000000000000"])
def test_charging_limit_written_with_extra_zeros_or_exponent_passes(text: str) -> None:
    payload = charging_profile(10.6).replace(b'"limit": 10.6', b'"limit": ' + text.encode())
    message = rpc.decode_call_payload("1.6", "SetChargingProfile", payload).message
    assert isinstance(message, v16.SetChargingProfileRequest)
    assert message.cs_charging_profiles.charging_schedule.charging_schedule_period[0].limit == Decimal(text)


def test_limits_built_from_whole_tenths_encode_exactly() -> None:
    """DESIGN R-82: limits are encoded from integer tenths, so 10.6 is exactly "10.6"."""
    period = v16.ChargingSchedulePeriod(start_period=0, limit=Tenths.from_tenths(106))
    assert encode_payload(period) == b'{"startPeriod":0,"limit":10.6}'
    assert encode_payload(v16.ChargingSchedulePeriod(start_period=0, limit=Tenths.from_tenths(160))).endswith(b"16.0}")


def test_optional_fields_left_unset_are_omitted() -> None:
    """omit_defaults: absent optional fields stay absent on the wire."""
    response = v16.BootNotificationResponse(status="Accepted", current_time="2024-05-01T12:00:00Z", interval=300)
    assert encode_payload(response) == b'{"status":"Accepted","currentTime":"2024-05-01T12:00:00Z","interval":300}'
    assert encode_payload(v16.StatusNotificationResponse()) == b"{}"


def test_explicit_null_is_refused_even_for_an_optional_field() -> None:
    """No OCPP 1.6 schema allows null; msgspec alone would read it as absent."""
    payload = b'{"chargePointVendor":"ABB","chargePointModel":"Terra","iccid":null}'
    with pytest.raises(rpc.OcppError) as caught:
        rpc.decode_call_payload("1.6", "BootNotification", payload)
    assert (caught.value.code, caught.value.description) == (
        "TypeConstraintViolation",
        "Expected a value, got `null` - at `$.iccid`",
    )
    text = b'{"chargePointVendor":"nullable","chargePointModel":"null"}'
    assert rpc.decode_call_payload("1.6", "BootNotification", text).message == v16.BootNotificationRequest(
        charge_point_vendor="nullable", charge_point_model="null"
    )


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456789Z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-05T14:58:38+10:00", datetime(2026, 1, 5, 4, 58, 38, tzinfo=UTC)),
        ("2024-05-01 12:00:00-0130", datetime(2024, 5, 1, 13, 30, tzinfo=UTC)),
    ],
)
def test_ocpp_timestamps_parse_to_utc_and_no_offset_means_utc(text: str, moment: datetime) -> None:
    """DESIGN: timestamps without an offset become UTC."""
    parsed = parse_ocpp_datetime(text)
    assert parsed == moment and parsed.utcoffset() == timedelta(0) and parsed.tzinfo is UTC
    assert moment.astimezone(timezone(timedelta(hours=3))) == parsed


@pytest.mark.parametrize("text", ["2024-05-01", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "1714564800", ""])
def test_impossible_timestamps_do_not_parse(text: str) -> None:
    with pytest.raises(ValueError, match=r"Invalid|out of range|must be in"):
        parse_ocpp_datetime(text)


def test_timestamp_without_offset_is_accepted_although_the_schema_format_refuses_it() -> None:
    """DESIGN: a deliberate difference from `format: date-time`, read as UTC."""
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "2024-05-01T12:00:00"}
    with pytest.raises(fastjsonschema.JsonSchemaException):
        validator(SCHEMAS / "StatusNotification.json")(payload)
    message = rpc.decode_call_payload("1.6", "StatusNotification", json.dumps(payload)).message
    assert isinstance(message, v16.StatusNotificationRequest) and message.timestamp == "2024-05-01T12:00:00"


# ---------------------------------------------------------------- (c) frames recorded from real chargers

FIXTURE_FILES = sorted(path for path in FIXTURES.glob("*/*.json"))


def recorded(path: Path) -> tuple[rpc.Frame, str, bool]:
    """The parsed frame, its action (from the file name) and whether it is a CALLRESULT."""
    frame = rpc.parse_frame(path.read_bytes(), "1.6")
    return frame, path.name.split(".")[0], path.name.endswith(".result.json")


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_recorded_vendor_frame_decodes_reencodes_and_validates(path: Path) -> None:
    """STYLE: recorded real device payloads as fixtures; each passes strict decoding unchanged."""
    frame, action, is_result = recorded(path)
    assert isinstance(frame, rpc.CallResult if is_result else rpc.Call)
    decoded = (rpc.decode_call_result if is_result else rpc.decode_call_payload)("1.6", action, frame.payload)
    assert decoded.leniencies == ()
    payload = json.loads(frame.payload)
    assert json.loads(encode_payload(decoded.message)) == payload
    validator(SCHEMAS / f"{action}{'Response' if is_result else ''}.json")(payload)
    assert json.loads(path.read_bytes())[-1] == payload


def test_recorded_meter_values_carry_per_phase_samples_with_unit_context_and_location() -> None:
    frame = rpc.parse_frame((FIXTURES / "alfen/MeterValues.json").read_bytes(), "1.6")
    assert isinstance(frame, rpc.Call)
    message = rpc.decode_call_payload("1.6", "MeterValues", frame.payload).message
    assert isinstance(message, v16.MeterValuesRequest)
    samples = message.meter_value[0].sampled_value
    assert len(samples) >= 8
    assert samples[0] == v16.SampledValue(
        value="5133841.000",
        context="Sample.Periodic",
        measurand="Energy.Active.Import.Register",
        location="Outlet",
        unit="Wh",
    )
    assert [sample.phase for sample in samples if sample.measurand == "Current.Import"] == ["L1", "L2", "L3"]


def test_recorded_stop_transaction_keeps_its_transaction_data() -> None:
    frame = rpc.parse_frame((FIXTURES / "abb/StopTransaction.json").read_bytes(), "1.6")
    assert isinstance(frame, rpc.Call)
    message = rpc.decode_call_payload("1.6", "StopTransaction", frame.payload).message
    assert isinstance(message, v16.StopTransactionRequest) and message.transaction_data is not None
    contexts = [data.sampled_value[0].context for data in message.transaction_data]
    assert contexts == ["Transaction.Begin", "Transaction.End"] and message.meter_stop == 1187552


def test_recorded_alfen_current_max_context_is_refused_strict_and_lenient() -> None:
    """A known-bad firmware frame: `CurrentMax` is not a ReadingContext; lenient mode does not excuse enums."""
    frame = rpc.parse_frame((FIXTURES / "alfen/rejected/MeterValues.current_max.json").read_bytes(), "1.6")
    assert isinstance(frame, rpc.Call)
    for lenient in (False, True):
        with pytest.raises(rpc.OcppError) as caught:
            rpc.decode_call_payload("1.6", "MeterValues", frame.payload, lenient=lenient)
        assert caught.value.code == "PropertyConstraintViolation"
        assert (
            caught.value.description == "Invalid enum value 'CurrentMax' - at `$.meterValue[0].sampledValue[1].context`"
        )
