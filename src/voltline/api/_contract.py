"""One contract per request body or query: Laravel rules, and the Struct and schema derived from them.

The rules are the source. They carry what the v2 wire pins and a Struct cannot say: Laravel's
messages, their order, `required_if`/`required_without`, coercion of `"1"` to 1, and the
`sometimes` of a partial update. So a `Contract` is written as a rule table, and everything
else comes from it:

- `struct`: a msgspec Struct made with `defstruct`, one field per rule in rule order. The type
  follows the rules (`string` -> str, `integer` -> int, `numeric` -> float | str, `boolean` ->
  bool, `array` -> list | dict, `in:` of digits -> int, other `in:` and `date_format`,
  `timezone`, `email`, `uuid`, `regex` -> str, no type rule -> any JSON value, as `size:8`
  alone admits 12345678);
  `nullable` adds None; a field without `required` may be left out (its declared default, None
  when nullable, UNSET otherwise). A partial contract (a PUT that changes only the fields sent)
  has every field optional.
- `validate()` checks input with the Laravel validator; `read()` returns the validated input as
  the Struct, so a handler works with typed attributes.
- The OpenAPI component (api/openapi.py) is the Struct's JSON Schema with the rules turned into
  JSON Schema keywords (`max:45` -> `maxLength: 45`, `in:` -> `enum`) and kept under `x-rules`.

A new rule is therefore a new Struct field and a new documented property at once; the reverse
(Struct with `Meta` annotations -> rules) could not express the conditional rules or the
messages, and would make the validator depend on msgspec's error wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import msgspec

from voltline import codec
from voltline.api._rules import parse_rules, validate

IMPLICIT_REQUIRED = "required"
_STRING_RULES = frozenset({"string", "date_format", "timezone", "email", "uuid", "regex"})


def rule_type(spec: str) -> Any:
    """The Python type a value meeting the rule string has after validation (None not included)."""
    parsed = parse_rules(spec)
    names = {rule.name for rule in parsed}
    if "integer" in names:
        return int
    if "numeric" in names:
        return float | str
    if "boolean" in names:
        return bool
    if "array" in names:
        return list[Any] | dict[str, Any]
    if names & _STRING_RULES:
        return str
    choices = [param for rule in parsed if rule.name == "in" for param in rule.params]
    if choices:
        return int if all(choice.lstrip("-").isdigit() for choice in choices) else str
    return Any


def is_required(spec: str) -> bool:
    """Whether the rules demand the field unconditionally (`required`)."""
    return any(rule.name == IMPLICIT_REQUIRED for rule in parse_rules(spec))


def is_nullable(spec: str) -> bool:
    """Whether the rules accept null (`nullable`)."""
    return any(rule.name == "nullable" for rule in parse_rules(spec))


@dataclass(frozen=True, eq=False)
class Contract:
    """A request body or query: its name in the docs, its Laravel rules and what follows from them.

    `defaults` documents what the service assumes for a field left out; `aliases` are extra
    names accepted for a field (documented with its type, checked by the handler); `partial`
    makes every field optional and checks only the fields sent (Laravel's `sometimes`).
    """

    name: str
    doc: str
    rules: Mapping[str, str]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    partial: bool = False

    def __post_init__(self) -> None:
        unknown = (set(self.defaults) | set(self.aliases.values())) - set(self.rules)
        if unknown:
            raise ValueError(f"{self.name}: defaults or aliases for fields without rules: {sorted(unknown)}")

    @cached_property
    def struct(self) -> type[msgspec.Struct]:
        """The Struct the rules describe (fields in rule order, keyword-only)."""
        fields = [self._field(name, spec) for name, spec in self.rules.items()]
        for alias, target in self.aliases.items():
            _, type_, _ = self._field(target, self.rules[target])
            fields.append((alias, type_, msgspec.UNSET))
        made = msgspec.defstruct(self.name, fields, kw_only=True, module=__name__)
        made.__doc__ = self.doc
        return made

    def _field(self, name: str, spec: str) -> tuple[str, Any, Any]:
        type_ = rule_type(spec)
        if is_nullable(spec) and type_ is not Any:
            type_ = type_ | None
        if is_required(spec) and not self.partial:
            return (name, type_, msgspec.NODEFAULT)
        if self.partial:
            return (name, type_ if type_ is Any else type_ | msgspec.UnsetType, msgspec.UNSET)
        if name in self.defaults or is_nullable(spec):
            return (name, type_, self.defaults.get(name))
        return (name, type_ if type_ is Any else type_ | msgspec.UnsetType, msgspec.UNSET)

    @property
    def documented_rules(self) -> dict[str, str]:
        """The rules as the docs show them: a partial contract's fields are `sometimes`."""
        if self.partial:
            return {name: f"sometimes|{spec}" for name, spec in self.rules.items()}
        return dict(self.rules)

    def applicable(self, data: Any) -> dict[str, str]:
        """The rules that apply to the input: all of them, or a partial contract's fields sent."""
        if self.partial and isinstance(data, Mapping):
            return {name: spec for name, spec in self.rules.items() if name in data}
        return dict(self.rules)

    def validate(self, data: Any) -> dict[str, Any]:
        """The validated fields (a partial contract checks only those sent); 422 otherwise."""
        return validate(data, self.applicable(data))

    def read(self, data: Any) -> Any:
        """The validated input as the contract's Struct (fields left out are UNSET or their default)."""
        return codec.convert(self.validate(data), self.struct)


def sent(value: Any) -> dict[str, Any]:
    """A contract Struct's fields that were given (UNSET left out), in field order."""
    return {name: item for name, item in msgspec.structs.asdict(value).items() if item is not msgspec.UNSET}
