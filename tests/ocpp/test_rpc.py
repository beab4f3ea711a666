"""Sans-I/O OCPP-J framing: frame sorting, CALLERROR codes per version, encoders, one call in flight, leniency."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import msgspec.inspect as mi
import pytest

from voltline.ocpp import rpc
from voltline.ocpp.schema_check import DATE_TIME_PATTERN, Tenths
from voltline.ocpp.v16 import messages as v16

VERSIONS: list[rpc.Version] = ["1.6", "2.0.1"]
BOOT = b'{"chargePointVendor":"Alfen BV","chargePointModel":"NG910-60023"}'


def rejected_code(frame: rpc.Frame) -> tuple[str, str]:
    assert isinstance(frame, rpc.FrameRejected), frame
    return frame.reply.message_id, frame.reply.code


def payload_error(action: str, payload: bytes | str | dict[str, Any], version: rpc.Version = "1.6") -> rpc.OcppError:
    with pytest.raises(rpc.OcppError) as caught:
        rpc.decode_call_payload(version, action, payload)
    return caught.value


# ---------------------------------------------------------------- well-formed frames


def test_call_keeps_its_payload_as_the_raw_json_object() -> None:
    """OCPP-J 1.6 §4.2.1: CALL is [2, messageId, action, payload]."""
    frame = rpc.parse_frame(b'[2,"19223201","BootNotification",' + BOOT + b"]", "1.6")
    assert frame == rpc.Call("19223201", "BootNotification", BOOT)


def test_frames_with_vendor_whitespace_and_text_input_parse() -> None:
    """ABB Terra AC sends `[2, "7053156", ...]` with spaces; the socket may hand over str."""
    frame = rpc.parse_frame(' [2, "7053156", "Heartbeat", { } ]\n', "1.6")
    assert frame == rpc.Call("7053156", "Heartbeat", b"{ }")
    assert rpc.decode_call_payload("1.6", "Heartbeat", frame.payload).message == v16.HeartbeatRequest()


def test_call_result_keeps_its_payload() -> None:
    """OCPP-J 1.6 §4.2.2: CALLRESULT is [3, messageId, payload]."""
    frame = rpc.parse_frame(b'[3, "a1", {"status": "Accepted"}]', "1.6")
    assert frame == rpc.CallResult("a1", b'{"status": "Accepted"}')


def test_call_error_carries_code_description_and_details() -> None:
    """OCPP-J 1.6 §4.2.3: CALLERROR is [4, messageId, errorCode, errorDescription, errorDetails]."""
    frame = rpc.parse_frame(b'[4,"a1","NotSupported","No smart charging",{"profile":7}]', "1.6")
    assert frame == rpc.CallError("a1", "NotSupported", "No smart charging", {"profile": 7})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'[4,"a1","GenericError"]', rpc.CallError("a1", "GenericError", "", {})),
        (b'[4,"a1","GenericError",null,null]', rpc.CallError("a1", "GenericError", "", {})),
        (b'[4,"a1","InternalError","boom",[]]', rpc.CallError("a1", "InternalError", "boom", {})),
    ],
)
def test_call_error_from_sloppy_peers_still_names_the_error(data: bytes, expected: rpc.CallError) -> None:
    """A CALLERROR is never answered; keep what identifies the failed call."""
    assert rpc.parse_frame(data, "1.6") == expected


# ---------------------------------------------------------------- frames that are dropped


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe[2]",
        b'{"messageId": "1"}',
        b'"[2,\\"1\\",\\"Heartbeat\\",{}]"',
        b"[]",
        b"[2]",
        b'[2, 17, "Heartbeat", {}]',
        b'[2, null, "Heartbeat", {}]',
        b"[[], {}]",
        b"[2,",
    ],
)
@pytest.mark.parametrize("version", VERSIONS)
def test_frame_without_a_string_message_id_is_dropped(data: bytes, version: rpc.Version) -> None:
    """DESIGN: a frame that is not a JSON array with a message id is logged and dropped."""
    frame = rpc.parse_frame(data, version)
    assert isinstance(frame, rpc.FrameDropped) and frame.message_id is None and frame.reason


@pytest.mark.parametrize("data", [b'[3,"a1"]', b'[3,"a1",[]]', b'[3,"a1",{},{}]', b'[4,"a1",500,"x",{}]'])
def test_malformed_answer_is_dropped_with_its_message_id(data: bytes) -> None:
    """A CALLRESULT/CALLERROR is never answered (OCPP-J 1.6 §4.2.2-4.2.3); the id lets the session fail the call."""
    frame = rpc.parse_frame(data, "1.6")
    assert isinstance(frame, rpc.FrameDropped) and frame.message_id == "a1"


# ---------------------------------------------------------------- frames answered with a CALLERROR


@pytest.mark.parametrize(
    ("data", "code_16", "code_201"),
    [
        (b'[2,"m1","Heartbeat"]', "FormationViolation", "RpcFrameworkError"),
        (b'[2,"m1","Heartbeat",{},{}]', "FormationViolation", "RpcFrameworkError"),
        (b'[2,"m1",12,{}]', "FormationViolation", "RpcFrameworkError"),
        (b'[2,"m1","Heartbeat",[]]', "FormationViolation", "FormatViolation"),
        (b'[2,"m1","Heartbeat","{}"]', "FormationViolation", "FormatViolation"),
        (b'[2,"m1","Heartbeat",null]', "FormationViolation", "FormatViolation"),
        (b'[5,"m1","Heartbeat",{}]', "FormationViolation", "MessageTypeNotSupported"),
        (b'["2","m1","Heartbeat",{}]', "FormationViolation", "MessageTypeNotSupported"),
        (b'[2.0,"m1","Heartbeat",{}]', "FormationViolation", "MessageTypeNotSupported"),
        (b'[true,"m1","Heartbeat",{}]', "FormationViolation", "MessageTypeNotSupported"),
    ],
)
def test_broken_call_frame_gets_the_versions_callerror(data: bytes, code_16: str, code_201: str) -> None:
    """DESIGN: parseable frames with a message id get a CALLERROR; 1.6 FormationViolation, 2.0.1 its own codes."""
    assert rejected_code(rpc.parse_frame(data, "1.6")) == ("m1", code_16)
    assert rejected_code(rpc.parse_frame(data, "2.0.1")) == ("m1", code_201)


def test_message_id_longer_than_36_characters_is_refused() -> None:
    """OCPP-J 1.6 §4.1: message ids are at most 36 characters (a GUID)."""
    assert isinstance(rpc.parse_frame(b'[2,"' + b"x" * 36 + b'","Heartbeat",{}]', "1.6"), rpc.Call)
    frame = rpc.parse_frame(b'[2,"' + b"x" * 37 + b'","Heartbeat",{}]', "1.6")
    assert rejected_code(frame) == ("x" * 37, "FormationViolation")


def test_every_code_used_is_a_code_of_its_version() -> None:
    """OCPP-J 1.6 §4.2.3 and 2.0.1 list the CALLERROR codes; DESIGN keeps 1.6's `Occurence` spelling."""
    problems = ["format", "occurrence", "type", "property", "generic", "frame", "message_type", "not_implemented"]
    for version, problem in itertools.product(VERSIONS, problems):
        assert rpc.code_for(version, problem) in rpc.ERROR_CODES[version]  # type: ignore[arg-type]
    assert rpc.code_for("1.6", "occurrence") == "OccurenceConstraintViolation"
    assert rpc.code_for("2.0.1", "occurrence") == "OccurrenceConstraintViolation"
    assert len(rpc.ERROR_CODES["1.6"]) == 10 and len(rpc.ERROR_CODES["2.0.1"]) == 12


# ---------------------------------------------------------------- payload decoding: one case per code path


def test_unknown_action_is_not_implemented_in_both_versions() -> None:
    """OCPP-J 1.6 §4.2.3: NotImplemented — requested Action is not known by receiver."""
    for version in VERSIONS:
        error = payload_error("FlyToTheMoon", b"{}", version)
        assert (error.code, error.description) == ("NotImplemented", "Unknown action 'FlyToTheMoon'")


@pytest.mark.parametrize(
    ("action", "payload", "code", "description"),
    [
        (
            "BootNotification",
            b'{"chargePointVendor":"ABB"}',
            "OccurenceConstraintViolation",
            "Object missing required field `chargePointModel`",
        ),
        (
            "MeterValues",
            b'{"connectorId":1,"meterValue":[{"timestamp":"2024-05-01T12:00:00Z","sampledValue":[]}]}',
            "OccurenceConstraintViolation",
            "Expected `array` of length >= 1 - at `$.meterValue[0].sampledValue`",
        ),
        (
            "StatusNotification",
            b'{"connectorId":"1"}',
            "TypeConstraintViolation",
            "Expected `int`, got `str` - at `$.connectorId`",
        ),
        ("Authorize", b'{"idTag":12345678}', "TypeConstraintViolation", "Expected `str`, got `int` - at `$.idTag`"),
        ("Authorize", b"[]", "TypeConstraintViolation", "Expected `object`, got `array`"),
        (
            "Authorize",
            b'{"idTag":"0123456789ABCDEF01234"}',
            "PropertyConstraintViolation",
            "Expected `str` of length <= 20 - at `$.idTag`",
        ),
        (
            "StatusNotification",
            b'{"connectorId":1,"errorCode":"NoError","status":"Plugged"}',
            "PropertyConstraintViolation",
            "Invalid enum value 'Plugged' - at `$.status`",
        ),
        (
            "Authorize",
            b'{"idTag":"04A2B3C4","vendor":"x"}',
            "FormationViolation",
            "Object contains unknown field `vendor`",
        ),
    ],
)
def test_payload_violation_maps_to_its_16_code(action: str, payload: bytes, code: str, description: str) -> None:
    """OCPP-J 1.6 §4.2.3: Occurence / Type / Property constraint violations and FormationViolation."""
    error = payload_error(action, payload)
    assert (error.code, error.description) == (code, description)


@pytest.mark.parametrize("lenient", [False, True])
def test_payload_that_is_not_json_is_a_formation_violation(lenient: bool) -> None:
    """OCPP-J 1.6 §4.2.3: FormationViolation — payload is syntactically incorrect (raw bytes given directly)."""
    with pytest.raises(rpc.OcppError) as caught:
        rpc.decode_call_payload("1.6", "Authorize", b'{"idTag": "04A2', lenient=lenient)
    assert (caught.value.code, caught.value.description) == ("FormationViolation", "Input data was truncated")


def test_limit_sent_as_a_string_is_a_type_violation() -> None:
    """A `number` field refuses a JSON string, even one holding a number (strict mode)."""
    response = b'{"status":"Accepted","chargingSchedule":{"chargingRateUnit":"A","chargingSchedulePeriod":'
    response += b'[{"startPeriod":0,"limit":"16.0"}]}}'
    with pytest.raises(rpc.OcppError) as caught:
        rpc.decode_call_result("1.6", "GetCompositeSchedule", response)
    assert caught.value.code == "TypeConstraintViolation"
    assert caught.value.description == (
        "Expected `number`, got `str` - at `$.chargingSchedule.chargingSchedulePeriod[0].limit`"
    )


def test_plain_dict_payloads_decode_like_json_text() -> None:
    """decode_call_payload takes raw JSON or already-decoded values (e.g. from the `ocpp` test peer)."""
    decoded = rpc.decode_call_payload("1.6", "BootNotification", json.loads(BOOT))
    assert decoded.message == v16.BootNotificationRequest(
        charge_point_vendor="Alfen BV", charge_point_model="NG910-60023"
    )


def test_version_without_generated_messages_answers_not_implemented() -> None:
    """2.0.1 Structs are not generated yet; every action is unknown rather than a crash."""
    assert payload_error("BootNotification", BOOT, "2.0.1").code == "NotImplemented"


def test_2_0_1_uses_its_own_spelling_for_payload_codes() -> None:
    assert rpc.code_for("2.0.1", "format") == "FormatViolation"
    assert (
        rpc.OcppError("OccurrenceConstraintViolation", "x").to_call_error("m1").code == "OccurrenceConstraintViolation"
    )


# ---------------------------------------------------------------- lenient mode


def test_lenient_mode_repairs_known_firmware_faults_and_lists_each_repair() -> None:
    """DESIGN "Lenient mode": unknown fields, over-long strings and numeric strings are accepted and logged."""
    payload = (
        b'{"connectorId":"1","transactionId":42,"meterValue":[{"timestamp":"2024-05-01T12:00:00Z",'
        b'"sampledValue":[{"value":230.1,"measurand":"Voltage","phase":"L1-N","unit":"V","vendorQuality":"good"}]}],'
        b'"vendorSerial":"SN-01","extra":null}'
    )
    decoded = rpc.decode_call_payload("1.6", "MeterValues", payload, lenient=True)
    assert decoded.message == v16.MeterValuesRequest(
        connector_id=1,
        transaction_id=42,
        meter_value=[
            v16.MeterValue(
                timestamp="2024-05-01T12:00:00Z",
                sampled_value=[v16.SampledValue(value="230.1", measurand="Voltage", phase="L1-N", unit="V")],
            )
        ],
    )
    assert decoded.leniencies == (
        "$.connectorId: read the string '1' as a number",
        "$.meterValue[0].sampledValue[0].value: read a number as the string '230.1'",
        "$.meterValue[0].sampledValue[0].vendorQuality: dropped an unknown field",
        "$.vendorSerial: dropped an unknown field",
        "$.extra: dropped an unknown field",
    )


def test_lenient_mode_truncates_over_long_strings_and_reads_decimal_strings() -> None:
    long_vendor = b'{"chargePointVendor":"Elektro-Ladetechnik GmbH","chargePointModel":"X","iccid":null}'
    decoded = rpc.decode_call_payload("1.6", "BootNotification", long_vendor, lenient=True)
    assert decoded.message == v16.BootNotificationRequest(
        charge_point_vendor="Elektro-Ladetechnik ", charge_point_model="X"
    )
    assert decoded.leniencies == (
        "$.chargePointVendor: truncated 24 characters to 20",
        "$.iccid: dropped a null",
    )
    period = rpc.decode_call_result(
        "1.6",
        "GetCompositeSchedule",
        b'{"status":"Accepted","chargingSchedule":{"chargingRateUnit":"A",'
        b'"chargingSchedulePeriod":[{"startPeriod":"0","limit":" 10.60"}]}}',
        lenient=True,
    )
    assert isinstance(period.message, v16.GetCompositeScheduleResponse)
    assert period.message.charging_schedule is not None
    limit = period.message.charging_schedule.charging_schedule_period[0].limit
    assert limit == Decimal("10.6") and isinstance(limit, Tenths)


def test_lenient_mode_leaves_valid_payloads_untouched() -> None:
    assert rpc.decode_call_payload("1.6", "BootNotification", BOOT, lenient=True).leniencies == ()


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("BootNotification", b'{"chargePointVendor":"ABB"}', "OccurenceConstraintViolation"),
        ("BootNotification", b'{"chargePointVendor":"ABB","chargePointModel":["X"]}', "TypeConstraintViolation"),
        (
            "StatusNotification",
            b'{"connectorId":"one","errorCode":"NoError","status":"Available"}',
            "TypeConstraintViolation",
        ),
        (
            "StatusNotification",
            b'{"connectorId":"1.5","errorCode":"NoError","status":"Available"}',
            "TypeConstraintViolation",
        ),
        (
            "StatusNotification",
            b'{"connectorId":1,"errorCode":"NoError","status":"Plugged"}',
            "PropertyConstraintViolation",
        ),
        (
            "StartTransaction",
            b'{"connectorId":1,"idTag":"A","meterStart":0,"timestamp":"soon"}',
            "PropertyConstraintViolation",
        ),
    ],
)
def test_lenient_mode_still_refuses_what_it_cannot_repair(action: str, payload: bytes, code: str) -> None:
    """DESIGN "Lenient mode" covers unknown fields, long strings and numeric strings only."""
    with pytest.raises(rpc.OcppError) as caught:
        rpc.decode_call_payload("1.6", action, payload, lenient=True)
    assert caught.value.code == code


# ---------------------------------------------------------------- encoders


def test_call_result_and_call_are_compact_json() -> None:
    """OCPP-J 1.6 §4.2.1-4.2.2, with numbers written from their decimal text."""
    response = v16.BootNotificationResponse(status="Accepted", current_time="2024-05-01T12:00:00.000Z", interval=300)
    assert rpc.encode_call_result("19223201", response) == (
        b'[3,"19223201",{"status":"Accepted","currentTime":"2024-05-01T12:00:00.000Z","interval":300}]'
    )
    period = v16.ChargingSchedulePeriod(start_period=0, limit=Tenths("10.6"))
    schedule = v16.ChargingSchedule(charging_rate_unit="A", charging_schedule_period=[period])
    request = v16.GetCompositeScheduleResponse(status="Accepted", connector_id=1, charging_schedule=schedule)
    encoded = rpc.encode_call("m-1", "GetCompositeSchedule", request)
    assert encoded == (
        b'[2,"m-1","GetCompositeSchedule",{"status":"Accepted","connectorId":1,"chargingSchedule":'
        b'{"chargingRateUnit":"A","chargingSchedulePeriod":[{"startPeriod":0,"limit":10.6}]}}]'
    )
    assert rpc.parse_frame(encoded, "1.6") == rpc.Call("m-1", "GetCompositeSchedule", encoded[encoded.index(b"{") : -1])


def test_call_error_encodes_with_empty_details_and_a_bounded_description() -> None:
    """OCPP-J 1.6 §4.2.3: errorDetails is an object, `{}` when there are none."""
    error = rpc.OcppError("NotImplemented", "Unknown action 'X'").to_call_error("m1")
    assert rpc.encode_call_error(error) == b'[4,"m1","NotImplemented","Unknown action \'X\'",{}]'
    long = rpc.CallError("m1", "GenericError", "é" * 300, {"cause": "x"})
    assert json.loads(rpc.encode_call_error(long)) == [4, "m1", "GenericError", "é" * 255, {"cause": "x"}]


def test_rejected_frame_reply_encodes_to_a_callerror_frame() -> None:
    frame = rpc.parse_frame(b'[2,"m9","Heartbeat"]', "1.6")
    assert isinstance(frame, rpc.FrameRejected)
    encoded = rpc.encode_call_error(frame.reply)
    assert json.loads(encoded)[:3] == [4, "m9", "FormationViolation"]
    assert rpc.parse_frame(encoded, "1.6") == frame.reply


# ---------------------------------------------------------------- one call in flight


def test_only_one_csms_call_may_be_outstanding() -> None:
    """OCPP-J 1.6 §4.1.1: no new CALL until the previous one was answered or timed out."""
    pending = rpc.PendingCalls()
    first = pending.start("Reset")
    assert pending.outstanding == first and len(first.message_id) == 36
    with pytest.raises(rpc.CallInFlightError):
        pending.start("ChangeConfiguration")
    assert pending.match(rpc.CallResult(first.message_id, b'{"status":"Accepted"}')) == first
    assert pending.outstanding is None
    second = pending.start("ChangeConfiguration")
    assert second.message_id != first.message_id and second.action == "ChangeConfiguration"


def test_answers_are_matched_by_message_id_and_unknown_ids_are_ignored() -> None:
    """OCPP-J 1.6 §4.2.2-4.2.3: the answer repeats the CALL's message id; anything else is not ours."""
    ids = iter(["c-1", "c-2"])
    pending = rpc.PendingCalls(lambda: next(ids))
    call = pending.start("UnlockConnector")
    assert pending.match(rpc.CallResult("c-0", b"{}")) is None
    assert pending.match(rpc.CallError("C-1", "GenericError")) is None
    assert pending.outstanding == call
    assert pending.match(rpc.CallError("c-1", "NotSupported")) == rpc.OutstandingCall("c-1", "UnlockConnector")
    assert pending.match(rpc.CallResult("c-1", b"{}")) is None


def test_abandoned_call_frees_the_connection_for_the_next() -> None:
    """OCPP-J 1.6 §4.1.1: a timed-out CALL no longer blocks; its late answer is ignored."""
    ids = iter(["c-1", "c-2"])
    pending = rpc.PendingCalls(lambda: next(ids))
    pending.start("Reset")
    assert pending.abandon("c-9") is False and pending.outstanding is not None
    assert pending.abandon("c-1") is True and pending.outstanding is None
    pending.start("Reset")
    assert pending.match(rpc.CallResult("c-1", b"{}")) is None
    assert pending.match(rpc.CallResult("c-2", b"{}")) == rpc.OutstandingCall("c-2", "Reset")


def test_result_payload_decodes_into_the_outstanding_actions_response() -> None:
    pending = rpc.PendingCalls(lambda: "c-1")
    pending.start("GetConfiguration")
    frame = rpc.parse_frame(b'[3,"c-1",{"configurationKey":[{"key":"HeartbeatInterval","readonly":false}]}]', "1.6")
    assert isinstance(frame, rpc.CallResult)
    call = pending.match(frame)
    assert call is not None
    message = rpc.decode_call_result("1.6", call.action, frame.payload).message
    assert message == v16.GetConfigurationResponse(
        configuration_key=[v16.KeyValue(key="HeartbeatInterval", readonly=False)]
    )


# ---------------------------------------------------------------- text and shapes the store or Python cannot hold


@pytest.mark.parametrize(
    ("data", "payload", "fields"),
    [
        (rb'[2,"a","Authorize",{"idTag":"x\u0000y"}]', b'{"idTag":"x\\ufffdy"}', ("$.idTag",)),
        (rb'[2,"a","Authorize",{"idTag":"x\\u0000y"}]', rb'{"idTag":"x\\u0000y"}', ()),  # an escaped backslash
        (rb'[2,"a","Authorize",{"idTag":"x\\\u0000"}]', rb'{"idTag":"x\\\ufffd"}', ("$.idTag",)),
        (rb'[2,"a\u0000","Authorize",{"i\u0000":["\u0000"]}]', rb'{"i\ufffd":["\ufffd"]}',
         ("messageId", "$.i\ufffd[0]")),
    ],
)  # fmt: skip
def test_a_nul_escape_becomes_u_fffd_before_the_frame_is_parsed(
    data: bytes, payload: bytes, fields: tuple[str, ...]
) -> None:
    """DESIGN "Durability": text the database cannot store is replaced, and the frame says where."""
    frame = rpc.parse_frame(data, "1.6")
    assert isinstance(frame, rpc.Call)
    assert (frame.payload, frame.nul_fields) == (payload, fields)
    assert "\x00" not in frame.message_id


def test_answers_to_our_calls_get_their_nul_replaced_too() -> None:
    result = rpc.parse_frame(rb'[3,"r",{"key":"\u0000"}]', "1.6")
    error = rpc.parse_frame(rb'[4,"e","GenericError","bad\u0000",{}]', "1.6")
    assert isinstance(result, rpc.CallResult) and result.nul_fields == ("$.key",)
    assert isinstance(error, rpc.CallError) and (error.description, error.nul_fields) == (
        "bad\ufffd",
        ("errorDescription",),
    )


DEEP = b"[" * 100_000 + b"]" * 100_000
TOO_DEEP = rpc.CallError("deep", "FormationViolation", "Frame nested too deeply")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'[2,"deep","Heartbeat",' + DEEP + b"]", rpc.FrameRejected(TOO_DEEP)),
        (b' [ 2 , "d\\"q" ,"DataTransfer",{"data":' + DEEP + b"}]",
         rpc.FrameRejected(replace(TOO_DEEP, message_id='d"q'))),
        (b'[3,"deep",{"a":' + DEEP + b"}]", rpc.FrameDropped("nested too deeply", "deep")),
        (b'[5,"deep",' + DEEP + b"]", rpc.FrameDropped("nested too deeply", "deep")),
        (DEEP, rpc.FrameDropped("nested too deeply, and no OCPP-J message id at its head")),
    ],
)  # fmt: skip
def test_a_frame_nested_deeper_than_the_decoder_goes_is_answered_by_its_head_or_dropped(
    data: bytes, expected: rpc.Frame
) -> None:
    """OCPP-J 1.6 §4.2.3: a CALL we cannot read is a FormationViolation; the decoder's RecursionError never escapes."""
    assert rpc.parse_frame(data, "1.6") == expected


def _minimal(info: Any, timestamp: str) -> Any:
    """The smallest JSON value of a message type, every date-time (required or not) set to `timestamp`."""
    info = (
        next((t for t in info.types if not isinstance(t, mi.NoneType)), info)
        if isinstance(info, mi.UnionType)
        else info
    )
    if isinstance(info, mi.StructType):
        return {f.encode_name: _minimal(f.type, timestamp) for f in info.fields if f.required or _dated(f.type)}
    if isinstance(info, mi.ListType):
        return [_minimal(info.item_type, timestamp)]
    if isinstance(info, mi.StrType):
        return timestamp if info.pattern == DATE_TIME_PATTERN else "https://x" if info.pattern else "x"
    if isinstance(info, mi.LiteralType):
        return info.values[0]
    return True if isinstance(info, mi.BoolType) else 1


def _dated(info: Any) -> bool:
    """Whether a message type holds a date-time anywhere."""
    if isinstance(info, mi.UnionType):
        return any(_dated(t) for t in info.types)
    if isinstance(info, mi.StructType):
        return any(_dated(f.type) for f in info.fields)
    if isinstance(info, mi.ListType):
        return _dated(info.item_type)
    return isinstance(info, mi.StrType) and info.pattern == DATE_TIME_PATTERN


DATED_MESSAGES = sorted(
    (kind, action)
    for kind, types in (("request", v16.REQUESTS), ("response", v16.RESPONSES))
    for action, type_ in types.items()
    if _dated(mi.type_info(type_))
)


def test_the_16_messages_hold_date_times_in_requests_and_responses() -> None:
    assert ("request", "MeterValues") in DATED_MESSAGES and ("response", "GetCompositeSchedule") in DATED_MESSAGES
    assert len(DATED_MESSAGES) >= 10


@pytest.mark.parametrize(("kind", "action"), DATED_MESSAGES)
def test_every_date_time_of_every_16_message_python_cannot_hold_is_a_property_violation(kind: str, action: str) -> None:
    """OCPP-J 1.6 §4.2.3: RFC 3339 allows year 0000; such a timestamp is a CALLERROR, never an InternalError."""
    decode = rpc.decode_call_payload if kind == "request" else rpc.decode_call_result
    type_ = (v16.REQUESTS if kind == "request" else v16.RESPONSES)[action]
    fine = _minimal(mi.type_info(type_), "2025-03-31T12:18:52Z")
    assert decode("1.6", action, json.dumps(fine).encode()).message is not None
    for lenient in (False, True):
        with pytest.raises(rpc.OcppError) as caught:
            decode(
                "1.6",
                action,
                json.dumps(_minimal(mi.type_info(type_), "0000-01-01T00:00:00Z")).encode(),
                lenient=lenient,
            )
        assert caught.value.code == "PropertyConstraintViolation"
        assert caught.value.description.startswith("Expected a calendar date-time in years 1-9999 - at `$.")
