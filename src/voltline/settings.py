"""Settings: one frozen struct, built from `VOLTLINE_*` variables by a pure function."""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import msgspec

from voltline.domain.prices import ConsumerTaxes, parse_zone_charges, parse_zone_vat
from voltline.domain.proxies import Networks, parse_networks
from voltline.errors import SettingsError, VoltlineError

PREFIX = "VOLTLINE_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the process is configured by; passed to `create_app`, never global."""

    data_dir: str = "./data"
    database_url: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    rate_limit: int = 500
    rate_limit_unauthenticated: int = 60
    max_body_bytes: int = 1024 * 1024
    http_header_timeout: float = 10.0
    http_body_timeout: float = 30.0
    http_keep_alive: int = 5
    http_max_header_bytes: int = 64 * 1024
    sqlite_busy_timeout_ms: int = 5000
    sqlite_synchronous: str = "NORMAL"
    log_level: str = "info"
    log_format: str = "text"
    bus_url: str = ""
    bus_prefix: str = "voltline"
    role: str = "all"
    node_name: str = ""
    gateway_announce_interval: float = 5.0
    auth_cache_seconds: float = 5.0
    ocpp_auto_register: bool = False
    ocpp_min_security_profile: int = 0
    trusted_proxies: str = ""
    ocpp_log: str = "default"
    ocpp_heartbeat_interval: int = 300
    ocpp_call_timeout: float = 30.0
    ocpp_lenient: bool = False
    ocpp_ping_interval: float = 60.0
    ocpp_max_frame_bytes: int = 256 * 1024
    ocpp_log_retention_days: int = 30
    meter_retention_days: int = 0
    audit_retention_days: int = 0
    ocpp_log_max_payload: int = 8 * 1024
    ocpp_log_budget_rows: int = 300
    ocpp_log_budget_bytes: int = 256 * 1024
    ocpp_hold_seconds: float = 20.0
    attach_attempts_per_minute: int = 5
    price_fetch: bool = False
    entsoe_token: str = ""
    entsoe_url: str = "https://web-api.tp.entsoe.eu/api"
    price_charges: str = ""
    price_vat: str = ""
    smart_mode_fraction: str = "1/3"
    smart_control: bool = True
    smart_debounce: float = 1.0
    smart_meter_interval: float = 30.0
    smart_retry_interval: float = 30.0
    smart_reclaim: bool = True
    metrics_token: str = ""
    public_url: str = ""
    upload_max_bytes: int = 50 * 1024 * 1024
    upload_body_timeout: float = 600.0

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir) / 'voltline.sqlite3'}"

    @property
    def is_sqlite(self) -> bool:
        """True when the store is the embedded SQLite database."""
        return self.effective_database_url.startswith("sqlite")

    @property
    def trusted_proxy_networks(self) -> Networks:
        """The proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (DESIGN: Charger security)."""
        return parse_networks(self.trusted_proxies)

    @property
    def consumer_taxes(self) -> ConsumerTaxes:
        """R-63: the per-zone charges (EUR/kWh) and VAT that turn spot prices into consumer prices."""
        return ConsumerTaxes(parse_zone_charges(self.price_charges), parse_zone_vat(self.price_vat))


_FIELDS = frozenset(Settings.__struct_fields__)
_HTTP_LIMITS = ("http_header_timeout", "http_body_timeout", "http_keep_alive", "http_max_header_bytes")
# DESIGN "Durability": NORMAL (WAL) survives a process crash, FULL and EXTRA also a power loss; OFF would not.
SQLITE_SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")
MAX_HOLD_SECONDS = 3600.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(name: str, raw: str, default: object) -> object:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise SettingsError(f"{PREFIX}{name.upper()} must be true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name.upper()} must be a whole number, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name.upper()} must be a number, got {raw!r}") from None
    return raw


def _is_fraction(text: str) -> bool:
    try:
        return 0 < Fraction(text.strip()) <= 1
    except (ValueError, ZeroDivisionError):
        return False


def _check_zone_rates(settings: Settings) -> None:
    for name, parse in (("price_charges", parse_zone_charges), ("price_vat", parse_zone_vat)):
        try:
            parse(getattr(settings, name))
        except VoltlineError as error:
            raise SettingsError(f"{PREFIX}{name.upper()}: {error}") from None


def _check_charger_security(settings: Settings) -> None:
    if settings.ocpp_min_security_profile not in (0, 1, 2):
        raise SettingsError(
            f"{PREFIX}OCPP_MIN_SECURITY_PROFILE must be 0, 1 or 2, got {settings.ocpp_min_security_profile}"
        )
    try:
        parse_networks(settings.trusted_proxies)
    except ValueError as error:
        raise SettingsError(f"{PREFIX}TRUSTED_PROXIES must list addresses or CIDR networks: {error}") from None


# The writer reads back a day of raw frames for a connector whose readings arrive out of order.
MIN_METER_RETENTION_DAYS = 2
BUS_SCHEMES = ("nats://", "tls://")
ROLES = ("all", "api", "gateway", "worker")  # DESIGN "Cluster"
NODE_NAME_MAX = 200  # chargers.gateway_id
BUS_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def _check_bus(settings: Settings) -> None:
    """DESIGN "Cluster": a NATS URL (or none: the in-memory bus) and a prefix NATS takes as subject tokens."""
    urls = [url.strip() for url in settings.bus_url.split(",") if url.strip()]
    if any(not url.startswith(BUS_SCHEMES) for url in urls):
        raise SettingsError(f"{PREFIX}BUS_URL must be nats://host:port (or tls://), got {settings.bus_url!r}")
    if not BUS_PREFIX.fullmatch(settings.bus_prefix):
        raise SettingsError(
            f"{PREFIX}BUS_PREFIX must be dot-separated letters, digits, - and _, got {settings.bus_prefix!r}"
        )
    if settings.role not in ROLES:
        raise SettingsError(f"{PREFIX}ROLE must be one of {', '.join(ROLES)}, got {settings.role!r}")
    if len(settings.node_name) > NODE_NAME_MAX or settings.node_name != settings.node_name.strip():
        raise SettingsError(
            f"{PREFIX}NODE_NAME must be at most {NODE_NAME_MAX} characters without surrounding spaces, "
            f"got {settings.node_name!r}"
        )
    if not settings.gateway_announce_interval > 0:
        raise SettingsError(
            f"{PREFIX}GATEWAY_ANNOUNCE_INTERVAL must be more than 0 seconds, got {settings.gateway_announce_interval}"
        )


def _check_uploads(settings: Settings) -> None:
    """Diagnostics uploads (docs/api.md "Diagnostics"): the base URL chargers reach, the size cap, the body deadline."""
    url = settings.public_url
    if url and (not url.startswith(("http://", "https://")) or any(c.isspace() for c in url) or "?" in url):
        raise SettingsError(f"{PREFIX}PUBLIC_URL must be an http:// or https:// base URL, got {url!r}")
    if settings.upload_max_bytes < 1:
        raise SettingsError(f"{PREFIX}UPLOAD_MAX_BYTES must be 1 or more, got {settings.upload_max_bytes}")
    if settings.upload_body_timeout < 0:
        raise SettingsError(f"{PREFIX}UPLOAD_BODY_TIMEOUT must be 0 (off) or more, got {settings.upload_body_timeout}")


def load_settings(environ: Mapping[str, str], **overrides: object) -> Settings:
    """Build settings from an environment mapping (`VOLTLINE_*`) plus explicit overrides."""
    defaults = Settings()
    values: dict[str, object] = {}
    for name in Settings.__struct_fields__:
        raw = environ.get(PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _parse(name, raw, getattr(defaults, name))
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
    settings = msgspec.structs.replace(defaults, **values)
    if settings.log_level.lower() not in LOG_LEVELS:
        raise SettingsError(f"{PREFIX}LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {settings.log_level!r}")
    if settings.log_format not in {"text", "json"}:
        raise SettingsError(f"{PREFIX}LOG_FORMAT must be text or json, got {settings.log_format!r}")
    if settings.ocpp_log not in {"all", "default", "off"}:
        raise SettingsError(f"{PREFIX}OCPP_LOG must be all, default or off, got {settings.ocpp_log!r}")
    if not _is_fraction(settings.smart_mode_fraction):
        raise SettingsError(
            f"{PREFIX}SMART_MODE_FRACTION must be a fraction in (0, 1], got {settings.smart_mode_fraction!r}"
        )
    _check_zone_rates(settings)
    _check_charger_security(settings)
    _check_bus(settings)
    if settings.meter_retention_days < 0 or 0 < settings.meter_retention_days < MIN_METER_RETENTION_DAYS:
        raise SettingsError(
            f"{PREFIX}METER_RETENTION_DAYS must be 0 (keep for ever) or at least {MIN_METER_RETENTION_DAYS}, "
            f"got {settings.meter_retention_days}"
        )
    if settings.audit_retention_days < 0:
        raise SettingsError(
            f"{PREFIX}AUDIT_RETENTION_DAYS must be 0 (keep for ever) or more, got {settings.audit_retention_days}"
        )
    for name in ("rate_limit", "rate_limit_unauthenticated", *_HTTP_LIMITS):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{PREFIX}{name.upper()} must be 0 (off) or more, got {getattr(settings, name)}")
    for name in ("ocpp_log_max_payload", "ocpp_log_budget_rows", "ocpp_log_budget_bytes"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{PREFIX}{name.upper()} must be 0 or more, got {getattr(settings, name)}")
    synchronous = settings.sqlite_synchronous.strip().upper()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise SettingsError(
            f"{PREFIX}SQLITE_SYNCHRONOUS must be NORMAL or FULL (or EXTRA), got {settings.sqlite_synchronous!r}"
        )
    if not 0 < settings.ocpp_hold_seconds <= MAX_HOLD_SECONDS:
        raise SettingsError(
            f"{PREFIX}OCPP_HOLD_SECONDS must be more than 0 and at most {MAX_HOLD_SECONDS}, "
            f"got {settings.ocpp_hold_seconds}"
        )
    settings = msgspec.structs.replace(settings, sqlite_synchronous=synchronous)
    _check_uploads(settings)
    if settings.rate_limit < 0:
        raise SettingsError(f"{PREFIX}RATE_LIMIT must be 0 (off) or more, got {settings.rate_limit}")
    return settings
