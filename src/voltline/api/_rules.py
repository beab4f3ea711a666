"""Laravel-compatible validation: the same rules, the same messages, every error collected.

Rules are written as Laravel writes them, e.g. ``"required|string|max:45"``. A field that
is absent (or an empty string) only meets implicit rules (`required*`); a `nullable`
field that is null meets none; after an implicit rule fails, the field's other rules are
skipped (Laravel's `shouldStopValidating`). Messages follow `lang/en/validation.php`.

These rule tables are the one source of an endpoint's input contract: api/_contract.py derives
the Struct a handler reads and the OpenAPI schema from them (why rules, not Structs: see there).
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from voltline.domain.credentials import OCPP_PASSWORD_PATTERN
from voltline.domain.emails import is_valid_email
from voltline.domain.firmware import LOCATION_PATTERN as FIRMWARE_LOCATION_PATTERN
from voltline.domain.identities import IDENTITY_PATTERN
from voltline.errors import ValidationError

MISSING: Any = object()
IMPLICIT = frozenset({"required", "required_if", "required_with", "required_without"})
NUMERIC_RULES = frozenset({"integer", "numeric"})

_INT_STRING = re.compile(r"^[+-]?\d+$")
# Laravel's `regex:` rule takes the pattern inline; ours names one of these (patterns may hold `|`).
PATTERNS = {
    "ocpp_identity": IDENTITY_PATTERN,
    "ocpp_password": OCPP_PASSWORD_PATTERN,
    "firmware_location": FIRMWARE_LOCATION_PATTERN,
}
# PHP date() tokens we accept in date_format, mapped to strptime.
_PHP_TO_STRPTIME = {"Y": "%Y", "m": "%m", "d": "%d", "H": "%H", "i": "%M", "s": "%S"}


def attribute_name(field: str) -> str:
    """Laravel's displayable attribute: underscores become spaces ("date_from" -> "date from")."""
    return field.replace("_", " ")


def display_value(value: Any) -> str:
    """Laravel's displayable value for `:value` in messages."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "empty"
    return str(value)


def is_integer(value: Any) -> bool:
    """PHP `FILTER_VALIDATE_INT` on JSON input, without accepting booleans."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer() and abs(value) < 2**63
    return isinstance(value, str) and bool(_INT_STRING.match(value.strip())) and value == value.strip()


def is_numeric(value: Any) -> bool:
    """PHP `is_numeric` on JSON input, without accepting booleans."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str) and value.strip() == value and value:
        try:
            number = Decimal(value)
        except InvalidOperation:
            return False
        return number.is_finite()
    return False


def is_empty(value: Any) -> bool:
    """Laravel's `validateRequired` failure: null, blank string, empty array."""
    if value is None or value is MISSING:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    return isinstance(value, list | dict) and len(value) == 0


@cache
def valid_timezones() -> frozenset[str]:
    """IANA zone names, R-01: only names in `zoneinfo.available_timezones()` count."""
    return frozenset(zoneinfo.available_timezones())


def matches_date_format(value: Any, php_format: str) -> bool:
    """PHP `DateTime::createFromFormat` plus Laravel's round trip: the text must re-format to itself."""
    if not isinstance(value, str):
        return False
    try:
        py_format = "".join(_PHP_TO_STRPTIME.get(ch, ch) for ch in php_format)
        parsed = datetime.strptime(value, py_format)
    except ValueError:
        return False
    return parsed.strftime(py_format) == value


class Rule:
    """One parsed rule: a name and its parameters."""

    __slots__ = ("name", "params")

    def __init__(self, text: str) -> None:
        name, _, params = text.partition(":")
        self.name = name
        self.params = params.split(",") if params else []


@cache
def parse_rules(spec: str) -> tuple[Rule, ...]:
    """Split a Laravel rule string into rules."""
    return tuple(Rule(part) for part in spec.split("|") if part)


def _size(value: Any, numeric: bool) -> Decimal | int:
    if numeric and is_numeric(value):
        return Decimal(str(value))
    if isinstance(value, list | dict):
        return len(value)
    return len(str(value)) if not isinstance(value, str) else len(value)


def _kind(rules: tuple[Rule, ...], value: Any) -> str:
    names = {rule.name for rule in rules}
    if names & NUMERIC_RULES:
        return "numeric"
    if "array" in names or isinstance(value, list | dict):
        return "array"
    return "string"


_SIZE_MESSAGES = {
    "max": {
        "numeric": "The {a} field must not be greater than {n}.",
        "string": "The {a} field must not be greater than {n} characters.",
        "array": "The {a} field must not have more than {n} items.",
    },
    "min": {
        "numeric": "The {a} field must be at least {n}.",
        "string": "The {a} field must be at least {n} characters.",
        "array": "The {a} field must have at least {n} items.",
    },
    "size": {
        "numeric": "The {a} field must be {n}.",
        "string": "The {a} field must be {n} characters.",
        "array": "The {a} field must contain {n} items.",
    },
}


def _check_size(rule: Rule, rules: tuple[Rule, ...], value: Any, attribute: str) -> str | None:
    kind = _kind(rules, value)
    size = _size(value, kind == "numeric")
    limit = Decimal(rule.params[0])
    ok = {"max": size <= limit, "min": size >= limit, "size": size == limit}[rule.name]
    if ok:
        return None
    return _SIZE_MESSAGES[rule.name][kind].format(a=attribute, n=rule.params[0])


def _present(data: Mapping[str, Any], field: str) -> bool:
    return field in data and not is_empty(data[field])


def _check(rule: Rule, rules: tuple[Rule, ...], field: str, value: Any, data: Mapping[str, Any]) -> str | None:
    a = attribute_name(field)
    name, params = rule.name, rule.params
    if name == "required":
        return f"The {a} field is required." if is_empty(value) else None
    if name == "required_if":
        other, *expected = params
        if other in data and display_value(data[other]) in expected and is_empty(value):
            return f"The {a} field is required when {attribute_name(other)} is {display_value(data[other])}."
        return None
    if name == "required_with":
        if any(_present(data, other) for other in params) and is_empty(value):
            return f"The {a} field is required when {' / '.join(map(attribute_name, params))} is present."
        return None
    if name == "required_without":
        if any(not _present(data, other) for other in params) and is_empty(value):
            others = " / ".join(map(attribute_name, params))
            return f"The {a} field is required when {others} is not present."
        return None
    if value is MISSING or (isinstance(value, str) and value.strip() == ""):
        return None
    return _VALUE_CHECKS[name](rule, rules, a, value)


def _simple(test: Callable[[Any], bool], message: str) -> Callable[[Rule, tuple[Rule, ...], str, Any], str | None]:
    def check(_rule: Rule, _rules: tuple[Rule, ...], a: str, value: Any) -> str | None:
        return None if test(value) else message.format(a=a)

    return check


def _in(rule: Rule, _rules: tuple[Rule, ...], a: str, value: Any) -> str | None:
    ok = not isinstance(value, list | dict | bool) and value is not None and str(value) in rule.params
    return None if ok else f"The selected {a} is invalid."


def _date_format(rule: Rule, _rules: tuple[Rule, ...], a: str, value: Any) -> str | None:
    php_format = ",".join(rule.params)
    return None if matches_date_format(value, php_format) else f"The {a} field must match the format {php_format}."


def _regex(rule: Rule, _rules: tuple[Rule, ...], a: str, value: Any) -> str | None:
    ok = isinstance(value, str | int | float) and not isinstance(value, bool)
    ok = ok and re.fullmatch(PATTERNS[rule.params[0]], str(value)) is not None
    return None if ok else f"The {a} field format is invalid."


def _sized(rule: Rule, rules: tuple[Rule, ...], a: str, value: Any) -> str | None:
    return _check_size(rule, rules, value, a)


_VALUE_CHECKS: dict[str, Callable[[Rule, tuple[Rule, ...], str, Any], str | None]] = {
    "string": _simple(lambda v: isinstance(v, str), "The {a} field must be a string."),
    "integer": _simple(is_integer, "The {a} field must be an integer."),
    "numeric": _simple(is_numeric, "The {a} field must be a number."),
    "boolean": _simple(lambda v: v in (True, False, 0, 1, "0", "1"), "The {a} field must be true or false."),
    "email": _simple(
        lambda v: isinstance(v, str) and is_valid_email(v), "The {a} field must be a valid email address."
    ),
    "timezone": _simple(
        lambda v: isinstance(v, str) and v in valid_timezones(), "The {a} field must be a valid timezone."
    ),
    "array": _simple(lambda v: isinstance(v, list | dict), "The {a} field must be an array."),
    "uuid": _simple(
        lambda v: isinstance(v, str) and bool(re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", v)),
        "The {a} field must be a valid UUID.",
    ),
    "in": _in,
    "date_format": _date_format,
    "regex": _regex,
    "max": _sized,
    "min": _sized,
    "size": _sized,
    "nullable": lambda *_: None,
    "sometimes": lambda *_: None,
}


def _coerce(rules: tuple[Rule, ...], value: Any) -> Any:
    names = {rule.name for rule in rules}
    if value is None or (isinstance(value, str) and not value.strip()):
        return None if value is None or names & (NUMERIC_RULES | {"boolean"}) else value
    if "integer" in names and isinstance(value, str | float):
        return int(value)
    if "boolean" in names and not isinstance(value, bool):
        return value in (1, "1")
    return value


def validate(data: Any, rules: Mapping[str, str]) -> dict[str, Any]:
    """Check `data` against `rules`; return the validated fields (coerced) or raise `ValidationError`.

    Only fields named in `rules` are returned, and only when present in the input.
    """
    if not isinstance(data, Mapping):
        data = {}
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for field, spec in rules.items():
        parsed = parse_rules(spec)
        value = data.get(field, MISSING)
        nullable = any(rule.name == "nullable" for rule in parsed)
        messages: list[str] = []
        for rule in parsed:
            if value is None and nullable and rule.name not in IMPLICIT:
                continue
            message = _check(rule, parsed, field, value, data)
            if message is None:
                continue
            messages.append(message)
            if rule.name in IMPLICIT:
                break
        if messages:
            errors[field] = messages
        elif value is not MISSING:
            clean[field] = _coerce(parsed, value)
    if errors:
        raise ValidationError(errors)
    return clean


def error_summary(errors: Mapping[str, list[str]]) -> str:
    """Laravel's 422 `message`: the first error, plus "(and N more error(s))"."""
    messages = [message for field_messages in errors.values() for message in field_messages]
    if not messages:
        return "The given data was invalid."
    rest = len(messages) - 1
    if rest == 0:
        return messages[0]
    return f"{messages[0]} (and {rest} more error{'s' if rest > 1 else ''})"
