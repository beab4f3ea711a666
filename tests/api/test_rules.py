"""Laravel-compatible validation rules and messages (DESIGN: REST validation reproduces Laravel)."""

from __future__ import annotations

from typing import Any

import pytest

from voltline.api._rules import error_summary, validate
from voltline.errors import ValidationError


def errors_of(data: dict[str, Any], rules: dict[str, str]) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        validate(data, rules)
    return caught.value.errors


@pytest.mark.parametrize(
    ("data", "rules", "message"),
    [
        ({}, {"identity": "required|string"}, "The identity field is required."),
        ({"identity": ""}, {"identity": "required|string"}, "The identity field is required."),
        ({"identity": "   "}, {"identity": "required|string"}, "The identity field is required."),
        ({"identity": None}, {"identity": "required|string"}, "The identity field is required."),
        ({"identity": 12}, {"identity": "string"}, "The identity field must be a string."),
        (
            {"identity": "x" * 46},
            {"identity": "string|max:45"},
            "The identity field must not be greater than 45 characters.",
        ),
        ({"limit": 10001}, {"limit": "integer|max:10000"}, "The limit field must not be greater than 10000."),
        ({"limit": "abc"}, {"limit": "integer"}, "The limit field must be an integer."),
        ({"limit": 1.5}, {"limit": "integer"}, "The limit field must be an integer."),
        ({"limit": True}, {"limit": "integer"}, "The limit field must be an integer."),
        ({"house_number": -1}, {"house_number": "integer|min:0"}, "The house number field must be at least 0."),
        ({"name": "ab"}, {"name": "string|min:3"}, "The name field must be at least 3 characters."),
        ({"pincode": "1234567"}, {"pincode": "size:8"}, "The pincode field must be 8 characters."),
        ({"price": "x"}, {"price": "numeric"}, "The price field must be a number."),
        ({"flag": "yes"}, {"flag": "boolean"}, "The flag field must be true or false."),
        ({"email": "nope"}, {"email": "email"}, "The email field must be a valid email address."),
        ({"order_by": "up"}, {"order_by": "in:desc,asc"}, "The selected order by is invalid."),
        ({"timezone": "Mars/Base"}, {"timezone": "timezone"}, "The timezone field must be a valid timezone."),
        (
            {"date_from": "2025-13-01 00:00:00"},
            {"date_from": "date_format:Y-m-d H:i:s"},
            "The date from field must match the format Y-m-d H:i:s.",
        ),
        (
            {"off_peak_start": "7:00"},
            {"off_peak_start": "date_format:H:i"},
            "The off peak start field must match the format H:i.",
        ),
        (
            {"smart_charging": "off_peak"},
            {"off_peak_start": "required_if:smart_charging,off_peak"},
            "The off peak start field is required when smart charging is off_peak.",
        ),
        (
            {"date_to": "2025-01-01 00:00:00"},
            {"date_from": "required_with:date_to"},
            "The date from field is required when date to is present.",
        ),
        (
            {},
            {"identity": "required_without:serial_number"},
            "The identity field is required when serial number is not present.",
        ),
    ],
)
def test_each_rule_rejects_with_laravels_message(data: dict[str, Any], rules: dict[str, str], message: str) -> None:
    field = next(iter(rules))
    assert errors_of(data, rules) == {field: [message]}


@pytest.mark.parametrize(
    ("data", "rules"),
    [
        ({"identity": "x" * 45}, {"identity": "required|string|max:45"}),
        ({"limit": 10000}, {"limit": "integer|max:10000"}),
        ({"limit": "42"}, {"limit": "integer"}),
        ({"house_number": 0}, {"house_number": "integer|min:0"}),
        ({"price": "0.25"}, {"price": "numeric|min:0"}),
        ({"flag": "1"}, {"flag": "boolean"}),
        ({"timezone": "Europe/Amsterdam"}, {"timezone": "timezone"}),
        ({"date_from": "2025-03-12 13:49:24"}, {"date_from": "date_format:Y-m-d H:i:s"}),
        ({"off_peak_start": "23:59"}, {"off_peak_start": "date_format:H:i"}),
        ({"reference": None}, {"reference": "nullable|string|max:255"}),
        ({}, {"reference": "nullable|string|max:255"}),
        ({"serial_number": "S1"}, {"identity": "required_without:serial_number"}),
    ],
)
def test_each_rule_accepts_valid_values(data: dict[str, Any], rules: dict[str, str]) -> None:
    assert set(validate(data, rules)) <= set(data)


@pytest.mark.parametrize("text", ["24:00", "07:00:00", "7:0", "07:60", " 07:00", ""])
def test_h_i_format_rejects_what_php_would_not_round_trip(text: str) -> None:
    """spec/smart-charging.md §1.2: `7:00`, `24:00`, `07:00:00` and `7:0` are rejected."""
    rules = {"off_peak_start": "required|date_format:H:i"}
    assert "off_peak_start" in errors_of({"off_peak_start": text}, rules)


@pytest.mark.parametrize(
    "zone", ["", ":Europe/Amsterdam", "/etc/localtime", "Europe/../etc/passwd", "europe/amsterdam"]
)
def test_timezone_accepts_only_iana_names(zone: str) -> None:
    """spec/smart-charging.md R-01: only names in zoneinfo.available_timezones()."""
    assert "timezone" in errors_of({"timezone": zone}, {"timezone": "required|timezone"})


def test_coercion_returns_integers_and_booleans() -> None:
    assert validate({"limit": "25", "flag": "0"}, {"limit": "integer", "flag": "boolean"}) == {
        "limit": 25,
        "flag": False,
    }


def test_a_failed_required_stops_the_fields_other_rules() -> None:
    """Laravel shouldStopValidating: after an implicit rule fails, no further messages for the field."""
    assert errors_of({"identity": ""}, {"identity": "required|string|max:45"}) == {
        "identity": ["The identity field is required."]
    }


def test_every_failing_rule_of_a_field_is_reported() -> None:
    """Laravel sizes a non-string by its text, so 123456 is both not a string and over 5 characters."""
    errors = errors_of({"code": 123456}, {"code": "string|max:5"})
    assert errors == {
        "code": ["The code field must be a string.", "The code field must not be greater than 5 characters."]
    }


def test_summary_counts_the_remaining_errors() -> None:
    assert error_summary({"a": ["First."]}) == "First."
    assert error_summary({"a": ["First."], "b": ["Second."]}) == "First. (and 1 more error)"
    assert error_summary({"a": ["First.", "Also."], "b": ["Second."]}) == "First. (and 2 more errors)"


def test_non_object_input_counts_as_empty() -> None:
    assert errors_of([1, 2], {"name": "required"}) == {"name": ["The name field is required."]}  # type: ignore[arg-type]
