"""Generate msgspec Structs for OCPP messages from the OCA JSON schemas shipped in the `ocpp` package.

    python tools/generate_ocpp.py --version 1.6          # writes src/voltline/ocpp/v16/messages.py
    python tools/generate_ocpp.py --version 1.6 --check  # exits 1 when the committed files are stale

The schemas are read at generation time only; the server never imports `ocpp`. Output is
deterministic: files are read in name order, types are emitted in first-use order, and the
header names the `ocpp` version and the sha256 of the concatenated schema files.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.resources
import json
import keyword
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"1.6": ("v16", "src/voltline/ocpp/v16"), "2.0.1": ("v201", "src/voltline/ocpp/v201")}
LINE_LENGTH = 120

# Schema keywords the generator understands; anything else stops it rather than dropping a rule.
KNOWN_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$ref", "title", "description", "comment", "javaType", "definitions", "default",
        "type", "properties", "required", "additionalProperties", "items", "additionalItems", "enum",
        "format", "maxLength", "minItems", "maxItems", "multipleOf", "minimum", "maximum",
    }
)  # fmt: skip

# OCPP 1.6 inlines its data types; these give them the names the 1.6 specification uses.
OBJECT_NAMES = {
    ("*", "csChargingProfiles"): "ChargingProfile",
    ("*", "configurationKey"): "KeyValue",
    ("*", "localAuthorizationList"): "AuthorizationData",
    ("TransactionData", "sampledValue"): "TransactionSampledValue",
}
ENUM_NAMES = {
    ("*", "chargingProfilePurpose"): "ChargingProfilePurposeType",
    ("*", "chargingProfileKind"): "ChargingProfileKindType",
    ("*", "recurrencyKind"): "RecurrencyKindType",
    ("*", "chargingRateUnit"): "ChargingRateUnitType",
    ("*", "context"): "ReadingContext",
    ("*", "format"): "ValueFormat",
    ("*", "measurand"): "Measurand",
    ("*", "phase"): "Phase",
    ("*", "location"): "Location",
    ("*", "unit"): "UnitOfMeasure",
    ("TransactionSampledValue", "unit"): "TransactionUnitOfMeasure",
    ("IdTagInfo", "status"): "AuthorizationStatus",
    ("BootNotificationResponse", "status"): "RegistrationStatus",
    ("CancelReservationResponse", "status"): "CancelReservationStatus",
    ("ChangeAvailabilityRequest", "type"): "AvailabilityType",
    ("ChangeAvailabilityResponse", "status"): "AvailabilityStatus",
    ("ChangeConfigurationResponse", "status"): "ConfigurationStatus",
    ("ClearCacheResponse", "status"): "ClearCacheStatus",
    ("ClearChargingProfileResponse", "status"): "ClearChargingProfileStatus",
    ("DataTransferResponse", "status"): "DataTransferStatus",
    ("DiagnosticsStatusNotificationRequest", "status"): "DiagnosticsStatus",
    ("FirmwareStatusNotificationRequest", "status"): "FirmwareStatus",
    ("GetCompositeScheduleResponse", "status"): "GetCompositeScheduleStatus",
    ("RemoteStartTransactionResponse", "status"): "RemoteStartStopStatus",
    ("RemoteStopTransactionResponse", "status"): "RemoteStartStopStatus",
    ("ReserveNowResponse", "status"): "ReservationStatus",
    ("ResetRequest", "type"): "ResetType",
    ("ResetResponse", "status"): "ResetStatus",
    ("SendLocalListRequest", "updateType"): "UpdateType",
    ("SendLocalListResponse", "status"): "UpdateStatus",
    ("SetChargingProfileResponse", "status"): "ChargingProfileStatus",
    ("StatusNotificationRequest", "errorCode"): "ChargePointErrorCode",
    ("StatusNotificationRequest", "status"): "ChargePointStatus",
    ("StopTransactionRequest", "reason"): "Reason",
    ("TriggerMessageRequest", "requestedMessage"): "MessageTrigger",
    ("TriggerMessageResponse", "status"): "TriggerMessageStatus",
    ("UnlockConnectorResponse", "status"): "UnlockStatus",
}


class SchemaError(Exception):
    """The schemas use something this generator does not translate."""


@dataclass
class StructDef:
    """One generated Struct: its fields already rendered as source lines."""

    name: str
    doc: str
    lines: list[str]
    open_fields: bool = False


@dataclass
class Model:
    """Everything the generator collected from one version's schemas."""

    version: str
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lengths: set[int] = field(default_factory=set)
    types: dict[str, StructDef] = field(default_factory=dict)
    messages: list[StructDef] = field(default_factory=list)
    requests: dict[str, str] = field(default_factory=dict)
    responses: dict[str, str] = field(default_factory=dict)
    uses: set[str] = field(default_factory=set)


def schema_files(version: str) -> list[Path]:
    """The version's schema files inside the installed `ocpp` package, in name order."""
    folder = Path(str(importlib.resources.files("ocpp"))) / TARGETS[version][0] / "schemas"
    return sorted(folder.glob("*.json"), key=lambda path: path.name)


def digests(files: list[Path]) -> tuple[str, list[tuple[str, str]]]:
    """sha256 of the concatenated files, and of each file."""
    total = hashlib.sha256()
    each = []
    for path in files:
        data = path.read_bytes()
        total.update(data)
        each.append((hashlib.sha256(data).hexdigest(), path.name))
    return total.hexdigest(), each


def snake(name: str) -> str:
    """camelCase (or responderURL) to a Python attribute name."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()
    return name + "_" if keyword.iskeyword(name) else name


def camel(attr: str) -> str:
    """The name msgspec's rename="camel" gives an attribute."""
    return msgspec.structs.fields(msgspec.defstruct("_", [(attr, int)], rename="camel"))[0].encode_name


def check_keywords(schema: dict[str, Any], where: str) -> None:
    """Refuse schema keywords that would otherwise be silently dropped."""
    unknown = set(schema) - KNOWN_KEYWORDS
    if unknown:
        raise SchemaError(f"{where}: unsupported keywords {sorted(unknown)}")


def table_name(table: dict[tuple[str, str], str], owner: str, prop: str) -> str | None:
    """A name from a naming table: specific owner first, then any owner."""
    return table.get((owner, prop)) or table.get(("*", prop))


def free_name(taken: dict[str, Any], name: str, owner: str, value: Any) -> str:
    """`name` when unused or holding the same value, else a name prefixed with its owner."""
    candidates = [name, owner + name] + [f"{owner}{name}{n}" for n in range(2, 10)]
    for candidate in candidates:
        if candidate not in taken or taken[candidate] == value:
            return candidate
    raise SchemaError(f"no free name for {name} in {owner}")


class Builder:
    """Walks one schema file and registers its types in the model."""

    def __init__(self, model: Model, file_name: str, schema: dict[str, Any]) -> None:
        self.model = model
        self.file_name = file_name
        self.definitions: dict[str, Any] = schema.get("definitions", {})

    def message(self, name: str, schema: dict[str, Any]) -> StructDef:
        """The Struct for a whole request or response."""
        kind = "response" if name.endswith("Response") else "request"
        action = name.removesuffix("Response").removesuffix("Request")
        doc = f"{action} {kind} (OCPP {self.model.version})."
        return self.struct_def(name, doc, schema)

    def struct_def(self, name: str, doc: str, schema: dict[str, Any]) -> StructDef:
        """Render the fields of an object schema."""
        check_keywords(schema, f"{self.file_name}:{name}")
        required = set(schema.get("required", []))
        lines = []
        for prop, sub in schema.get("properties", {}).items():
            lines.append(self.field_line(name, prop, sub, prop in required))
        open_fields = schema.get("additionalProperties", True) is not False
        return StructDef(name, doc, lines, open_fields)

    def field_line(self, owner: str, prop: str, schema: dict[str, Any], required: bool) -> str:
        """`attr: Type` or `attr: Type | None = None`, with an explicit name when camel case differs."""
        attr = snake(prop)
        annotation = self.type_of(owner, prop, schema)
        renamed = camel(attr) != prop
        if renamed:
            self.model.uses.add("field")
        if required:
            return f"{attr}: {annotation} = field(name={json.dumps(prop)})" if renamed else f"{attr}: {annotation}"
        if renamed:
            return f"{attr}: {annotation} | None = field(default=None, name={json.dumps(prop)})"
        return f"{attr}: {annotation} | None = None"

    def type_of(self, owner: str, prop: str, schema: dict[str, Any]) -> str:
        """The annotation for one property schema."""
        check_keywords(schema, f"{self.file_name}:{owner}.{prop}")
        if "$ref" in schema:
            return self.definition(schema["$ref"])
        if "enum" in schema:
            return self.enum(table_name(ENUM_NAMES, owner, prop) or owner + prop[0].upper() + prop[1:], owner, schema)
        kind = schema.get("type")
        if kind == "object":
            name = table_name(OBJECT_NAMES, owner, prop) or prop[0].upper() + prop[1:]
            return self.data_type(name, owner, schema)
        if kind == "array":
            item = self.type_of(owner, prop, schema["items"])
            limits = {"min_length": schema.get("minItems"), "max_length": schema.get("maxItems")}
            return self.constrained(f"list[{item}]", **limits)
        return self.scalar(owner, prop, schema)

    def scalar(self, owner: str, prop: str, schema: dict[str, Any]) -> str:
        """Strings, integers, numbers and booleans."""
        kind = schema.get("type")
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            return self.constrained("int", ge=schema.get("minimum"), le=schema.get("maximum"))
        if kind == "number":
            return self.number(owner, prop, schema)
        if kind == "boolean":
            return "bool"
        if kind is None:  # any JSON value (2.0.1 DataTransfer.data)
            self.model.uses.add("Any")
            return "Any"
        raise SchemaError(f"{self.file_name}:{owner}.{prop}: unsupported type {kind!r}")

    def string(self, schema: dict[str, Any]) -> str:
        """DateTime or Uri for their formats, StringN for `maxLength: N`, else str."""
        formats = {"date-time": "DateTime", "uri": "Uri"}
        if schema.get("format") in formats:
            if "maxLength" in schema:
                raise SchemaError(f"{self.file_name}: maxLength on a {schema['format']} string")
            self.model.uses.add(formats[schema["format"]])
            return formats[schema["format"]]
        if "format" in schema:
            raise SchemaError(f"{self.file_name}: unsupported string format {schema['format']!r}")
        if "maxLength" in schema:
            self.model.lengths.add(schema["maxLength"])
            self.model.uses.update({"Annotated", "Meta"})
            return f"String{schema['maxLength']}"
        return "str"

    def number(self, owner: str, prop: str, schema: dict[str, Any]) -> str:
        """Numbers stay decimal-exact; `multipleOf: 0.1` becomes Tenths (checked on the decimal text)."""
        if "minimum" in schema or "maximum" in schema:
            raise SchemaError(f"{self.file_name}:{owner}.{prop}: bounds on numbers are not supported yet")
        if "multipleOf" not in schema:
            self.model.uses.add("JsonDecimal")
            return "JsonDecimal"
        if schema["multipleOf"] != 0.1:
            raise SchemaError(f"{self.file_name}:{owner}.{prop}: multipleOf {schema['multipleOf']}")
        self.model.uses.add("Tenths")
        return "Tenths"

    def constrained(self, base: str, **limits: Any) -> str:
        """`base`, or Annotated[base, Meta(...)] when a limit is set."""
        given = {
            key: int(value) if value == int(value) else value for key, value in limits.items() if value is not None
        }
        if not given:
            return base
        self.model.uses.update({"Annotated", "Meta"})
        args = ", ".join(f"{key}={value!r}" for key, value in given.items())
        return f"Annotated[{base}, Meta({args})]"

    def enum(self, name: str, owner: str, schema: dict[str, Any]) -> str:
        """A Literal alias for an enum, shared by name when the values agree."""
        values = tuple(schema["enum"])
        name = free_name(self.model.enums, name, owner, values)
        self.model.enums[name] = values
        return name

    def data_type(self, name: str, owner: str, schema: dict[str, Any]) -> str:
        """A nested Struct, shared by name when its fields agree."""
        built = self.struct_def(name, f"Data type {name} (OCPP {self.model.version}).", schema)
        bodies = {key: (value.lines, value.open_fields) for key, value in self.model.types.items()}
        unique = free_name(bodies, name, owner, (built.lines, built.open_fields))
        if unique != name:
            built = self.struct_def(unique, f"Data type {unique} (OCPP {self.model.version}).", schema)
        self.model.types.setdefault(unique, built)
        return unique

    def definition(self, ref: str) -> str:
        """A `#/definitions/X` reference: named by its javaType, or X without the `Type` suffix."""
        key = ref.removeprefix("#/definitions/")
        target = self.definitions[key]
        name = target.get("javaType") or key.removesuffix("Type")
        if "enum" in target:
            return self.enum(name, "", target)
        return self.data_type(name, "", target)


def build_model(version: str, files: list[Path]) -> Model:
    """Read every schema file of a version into a model."""
    model = Model(version)
    for path in files:
        schema = json.loads(path.read_bytes())
        stem = path.stem
        name = stem if stem.endswith(("Request", "Response")) else stem + "Request"
        struct = Builder(model, path.name, schema).message(name, schema)
        model.messages.append(struct)
        action = name.removesuffix("Response").removesuffix("Request")
        (model.responses if name.endswith("Response") else model.requests)[action] = name
    return model


def render_alias(name: str, values: tuple[str, ...]) -> list[str]:
    """`Name = Literal[...]`, exploded one value a line when it would not fit."""
    one_line = f"{name} = Literal[{', '.join(json.dumps(value) for value in values)}]"
    if len(one_line) <= LINE_LENGTH:
        return [one_line]
    return [f"{name} = Literal[", *(f"    {json.dumps(value)}," for value in values), "]"]


def render_struct(struct: StructDef) -> list[str]:
    """A class statement for one Struct."""
    options = ", forbid_unknown_fields=False" if struct.open_fields else ""
    lines = ["", "", f"class {struct.name}(Message, kw_only=True{options}):", f'    """{struct.doc}"""']
    if struct.lines:
        lines += ["", *(f"    {line}" for line in struct.lines)]
    return lines


def render_mapping(name: str, entries: dict[str, str]) -> list[str]:
    """A dict from action name to Struct, sorted by action."""
    body = [f'    "{action}": {entries[action]},' for action in sorted(entries)]
    return ["", f"{name}: dict[str, type[Message]] = {{", *body, "}"]


def render(model: Model, package_version: str, total: str, source: str) -> str:
    """The whole messages.py text."""
    schema_names = sorted(model.uses & {"DateTime", "JsonDecimal", "Tenths", "Uri"})
    typing_names = ", ".join(sorted({"Literal"} | (model.uses & {"Annotated", "Any"})))
    msgspec_names = ", ".join(sorted({"Struct"} | (model.uses & {"Meta", "field"})))
    lines = [
        f"# GENERATED by tools/generate_ocpp.py --version {model.version} from ocpp=={package_version} ({source}).",
        f"# Schemas sha256: {total}",
        "# Do not edit: change the generator and run it again.",
        f'"""OCPP {model.version} requests and responses as msgspec Structs, generated from the OCA JSON schemas."""',
        "",
        "from __future__ import annotations",
        "",
        f"from typing import {typing_names}",
        "",
        f"from msgspec import {msgspec_names}",
        "",
        f"from voltline.ocpp.schema_check import {', '.join(schema_names)}",
        "",
        "",
        "class Message(Struct, "
        + 'rename="camel", omit_defaults=True, forbid_unknown_fields=True, kw_only=True, gc=False):',
        f'    """Base of every OCPP {model.version} Struct: camelCase on the wire, absent optional fields left out."""',
        "",
        "",
    ]
    lines += [f"String{n} = Annotated[str, Meta(max_length={n})]" for n in sorted(model.lengths)]
    for name, values in model.enums.items():
        lines += render_alias(name, values)
    for struct in [*model.types.values(), *model.messages]:
        lines += render_struct(struct)
    lines += ["", "", "# Action name -> Struct of the request (CALL payload) and of the response (CALLRESULT payload)."]
    lines += render_mapping("REQUESTS", model.requests) + render_mapping("RESPONSES", model.responses)
    return "\n".join(lines) + "\n"


def generate(version: str) -> dict[str, str]:
    """File name -> text for the version's package folder."""
    files = schema_files(version)
    if not files:
        raise SchemaError(f"no schemas for {version} in the installed ocpp package")
    package_version = importlib.metadata.version("ocpp")
    total, each = digests(files)
    source = f"ocpp/{TARGETS[version][0]}/schemas"
    model = build_model(version, files)
    sums = [f"{total}  ocpp=={package_version}:{source}/*.json (concatenated in name order)"]
    sums += [f"{digest}  {name}" for digest, name in each]
    return {"messages.py": render(model, package_version, total, source), "SCHEMAS.sha256": "\n".join(sums) + "\n"}


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the generated files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", choices=sorted(TARGETS), default="1.6")
    parser.add_argument("--out", type=Path, help="folder to write into (default: the package folder)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files on disk differ")
    args = parser.parse_args(argv)
    out = args.out or ROOT / TARGETS[args.version][1]
    stale = []
    for name, text in generate(args.version).items():
        target = out / name
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(str(target))
            continue
        out.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"stale: {path}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
