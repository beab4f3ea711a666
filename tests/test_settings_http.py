"""Settings of the HTTP edge: the guest rate limit and the connection timeouts (README "Configuration")."""

from __future__ import annotations

import pytest

from voltline.errors import SettingsError
from voltline.http_protocol import DeadlineHttpProtocol
from voltline.server import uvicorn_options
from voltline.settings import load_settings


def test_requests_without_a_token_are_limited_to_60_a_minute_by_default() -> None:
    assert load_settings({}).rate_limit_unauthenticated == 60
    assert load_settings({"VOLTLINE_RATE_LIMIT_UNAUTHENTICATED": "0"}).rate_limit_unauthenticated == 0


def test_a_negative_guest_limit_is_refused() -> None:
    with pytest.raises(SettingsError, match="VOLTLINE_RATE_LIMIT_UNAUTHENTICATED must be 0"):
        load_settings({"VOLTLINE_RATE_LIMIT_UNAUTHENTICATED": "-5"})


def test_http_deadlines_have_defaults_for_slow_clients() -> None:
    settings = load_settings({})
    assert (settings.http_header_timeout, settings.http_body_timeout) == (10.0, 30.0)
    assert (settings.http_keep_alive, settings.http_max_header_bytes) == (5, 65536)


@pytest.mark.parametrize(
    "name", ["HTTP_HEADER_TIMEOUT", "HTTP_BODY_TIMEOUT", "HTTP_KEEP_ALIVE", "HTTP_MAX_HEADER_BYTES"]
)
def test_negative_http_limits_are_refused(name: str) -> None:
    with pytest.raises(SettingsError, match=f"VOLTLINE_{name} must be 0"):
        load_settings({f"VOLTLINE_{name}": "-1"})


def test_uvicorn_gets_the_deadline_protocol_and_the_keep_alive() -> None:
    options = uvicorn_options(load_settings({"VOLTLINE_HTTP_HEADER_TIMEOUT": "3", "VOLTLINE_HTTP_KEEP_ALIVE": "75"}))
    assert issubclass(options["http"], DeadlineHttpProtocol)
    assert (options["http"].header_timeout, options["http"].body_timeout) == (3.0, 30.0)
    assert options["timeout_keep_alive"] == 75
