"""Settings of the HTTP edge: the guest rate limit and the connection timeouts (README "Configuration")."""

from __future__ import annotations

import pytest

from voltline.errors import SettingsError
from voltline.settings import load_settings


def test_requests_without_a_token_are_limited_to_60_a_minute_by_default() -> None:
    assert load_settings({}).rate_limit_unauthenticated == 60
    assert load_settings({"VOLTLINE_RATE_LIMIT_UNAUTHENTICATED": "0"}).rate_limit_unauthenticated == 0


def test_a_negative_guest_limit_is_refused() -> None:
    with pytest.raises(SettingsError, match="VOLTLINE_RATE_LIMIT_UNAUTHENTICATED must be 0"):
        load_settings({"VOLTLINE_RATE_LIMIT_UNAUTHENTICATED": "-5"})
