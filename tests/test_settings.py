"""Settings: one pure `load_settings(environ)` (DESIGN: Settings)."""

from __future__ import annotations

import pytest

from voltline.errors import SettingsError
from voltline.settings import load_settings


def test_defaults_use_embedded_sqlite_in_the_data_dir() -> None:
    settings = load_settings({})
    assert settings.effective_database_url == "sqlite+aiosqlite:///data/voltline.sqlite3"
    assert settings.is_sqlite and settings.rate_limit == 500 and settings.port == 8000


def test_environment_variables_with_the_prefix_are_read_and_typed() -> None:
    settings = load_settings(
        {
            "VOLTLINE_DATABASE_URL": "postgresql+asyncpg://u@h/db",
            "VOLTLINE_PORT": "9000",
            "VOLTLINE_OCPP_AUTO_REGISTER": "true",
            "VOLTLINE_OCPP_CALL_TIMEOUT": "2.5",
            "OTHER": "ignored",
        }
    )
    assert settings.effective_database_url == "postgresql+asyncpg://u@h/db" and not settings.is_sqlite
    assert (settings.port, settings.ocpp_auto_register, settings.ocpp_call_timeout) == (9000, True, 2.5)


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("VOLTLINE_PORT", "eighty", "VOLTLINE_PORT must be a whole number"),
        ("VOLTLINE_OCPP_AUTO_REGISTER", "maybe", "must be true or false"),
        ("VOLTLINE_OCPP_LOG", "verbose", "must be all, default or off"),
        ("VOLTLINE_RATE_LIMIT", "-1", "must be 0 (off) or more"),
        ("VOLTLINE_LOG_FORMAT", "yaml", "VOLTLINE_LOG_FORMAT must be text or json, got 'yaml'"),
        ("VOLTLINE_LOG_LEVEL", "loud", "VOLTLINE_LOG_LEVEL must be one of critical, error, warning, info, debug"),
        ("VOLTLINE_OCPP_LOG_MAX_PAYLOAD", "-1", "VOLTLINE_OCPP_LOG_MAX_PAYLOAD must be 0 or more"),
        ("VOLTLINE_OCPP_LOG_BUDGET_ROWS", "-5", "VOLTLINE_OCPP_LOG_BUDGET_ROWS must be 0 or more"),
        ("VOLTLINE_OCPP_LOG_BUDGET_BYTES", "lots", "VOLTLINE_OCPP_LOG_BUDGET_BYTES must be a whole number"),
    ],
)
def test_bad_values_raise_a_clear_settings_error(name: str, value: str, text: str) -> None:
    with pytest.raises(SettingsError, match=text.replace("(", r"\(").replace(")", r"\)")):
        load_settings({name: value})


def test_the_message_log_limits_default_to_8_kib_payloads_and_300_rows_or_256_kib_a_minute() -> None:
    """README: VOLTLINE_OCPP_LOG_MAX_PAYLOAD, VOLTLINE_OCPP_LOG_BUDGET_ROWS, VOLTLINE_OCPP_LOG_BUDGET_BYTES."""
    settings = load_settings({})
    assert (settings.ocpp_log_max_payload, settings.ocpp_log_budget_rows, settings.ocpp_log_budget_bytes) == (
        8192,
        300,
        262144,
    )


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_trusted_proxies_and_the_minimum_security_profile_are_checked_at_start() -> None:
    """DESIGN: Charger security: VOLTLINE_TRUSTED_PROXIES lists addresses or CIDR networks."""
    settings = load_settings(
        {"VOLTLINE_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1", "VOLTLINE_OCPP_MIN_SECURITY_PROFILE": "2"}
    )
    assert [str(n) for n in settings.trusted_proxy_networks] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert settings.ocpp_min_security_profile == 2
    assert load_settings({}).trusted_proxy_networks == () and load_settings({}).ocpp_min_security_profile == 0
    with pytest.raises(SettingsError, match="VOLTLINE_TRUSTED_PROXIES must list addresses or CIDR networks"):
        load_settings({"VOLTLINE_TRUSTED_PROXIES": "10.0.0.1, proxy.example.com"})
    for profile in ("3", "-1"):
        with pytest.raises(SettingsError, match="VOLTLINE_OCPP_MIN_SECURITY_PROFILE must be 0, 1 or 2"):
            load_settings({"VOLTLINE_OCPP_MIN_SECURITY_PROFILE": profile})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VOLTLINE_BUS_URL", "redis://127.0.0.1:6379"),
        ("VOLTLINE_BUS_URL", "127.0.0.1:4222"),
        ("VOLTLINE_BUS_PREFIX", "a b"),
        ("VOLTLINE_BUS_PREFIX", "x.*"),
        ("VOLTLINE_ROLE", "scheduler"),
        ("VOLTLINE_NODE_NAME", "n" * 201),
        ("VOLTLINE_NODE_NAME", " gw-1"),
        ("VOLTLINE_GATEWAY_ANNOUNCE_INTERVAL", "0"),
    ],
)
def test_a_bus_setting_nats_cannot_take_is_refused_at_start(name: str, value: str) -> None:
    """DESIGN "Cluster": a NATS URL or none; a prefix NATS takes as subject tokens; a known role; a node name the
    charger rows can hold; gateways that announce themselves."""
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})
