"""A site's smart-charging settings: spec/smart-charging.md §1.3 R-01..R-03, spec/volttime-api.md A9/A10."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.sites import errors_of, make_site, sites_path
from voltline.services.accounts import Account

DEFAULTS = {
    "timezone": None,
    "smart_charging": "disabled",
    "day_ahead_pricing_strategy": "automatic",
    "day_ahead_pricing_threshold": None,
    "day_ahead_pricing_smart_mode_price": None,
    "off_peak_start": "23:00",
    "off_peak_end": "07:00",
}
OFF_PEAK = {
    "timezone": "Europe/Amsterdam",
    "smart_charging": "off_peak",
    "off_peak_start": "22:30",
    "off_peak_end": "06:15",
}
THRESHOLD_REQUIRED = "The day ahead pricing threshold field is required when day ahead pricing strategy is manual."


def settings_path(api: httpx.Client, account: Account) -> str:
    """The smart-charging path of a fresh site of the account's team."""
    site = make_site(api, account)
    return f"{sites_path(account)}/{site['id']}/smart-charging"


def put_ok(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """PUT settings that must be accepted; the returned settings."""
    response = api.put(path, json=body)
    assert response.status_code == 200, response.text
    settings: dict[str, Any] = response.json()["data"]
    return settings


def test_a_new_site_has_the_documented_default_settings(api: httpx.Client, account: Account) -> None:
    """spec A9 / R-03: all seven keys, in the documented order, with the defaults."""
    body = api.get(settings_path(api, account)).json()
    assert body == {"data": DEFAULTS}
    assert list(body["data"]) == list(DEFAULTS)


def test_put_off_peak_stores_and_returns_the_updated_settings(api: httpx.Client, account: Account) -> None:
    """spec A10: the response is the updated object, and GET shows the same."""
    path = settings_path(api, account)
    expected = {**DEFAULTS, **OFF_PEAK}
    settings = put_ok(api, path, OFF_PEAK)
    assert settings == expected and list(settings) == list(DEFAULTS)
    assert api.get(path).json() == {"data": expected}


def test_the_settings_timezone_is_the_sites_timezone(api: httpx.Client, account: Account) -> None:
    """DESIGN: the site's `timezone` is the field the smart-charging settings show."""
    site = make_site(api, account)
    site_path = f"{sites_path(account)}/{site['id']}"
    put_ok(api, f"{site_path}/smart-charging", {"timezone": "Asia/Tokyo", "smart_charging": "disabled"})
    data = api.get(site_path).json()["data"]
    assert (data["timezone"], data["smart_charging"]) == ("Asia/Tokyo", "disabled")
    api.put(site_path, json={"timezone": "America/Hermosillo"})
    assert api.get(f"{site_path}/smart-charging").json()["data"]["timezone"] == "America/Hermosillo"


def test_an_empty_body_reports_both_required_fields(api: httpx.Client, account: Account) -> None:
    response = api.put(settings_path(api, account), json={})
    assert response.status_code == 422
    assert response.json() == {
        "message": "The timezone field is required. (and 1 more error)",
        "errors": {
            "timezone": ["The timezone field is required."],
            "smart_charging": ["The smart charging field is required."],
        },
    }


@pytest.mark.parametrize(
    ("timezone", "message"),
    [
        ("", "The timezone field is required."),
        (None, "The timezone field is required."),
        (":Europe/Amsterdam", "The timezone field must be a valid timezone."),
        ("/etc/localtime", "The timezone field must be a valid timezone."),
        ("Mars/Base", "The timezone field must be a valid timezone."),
        ("europe/amsterdam", "The timezone field must be a valid timezone."),
        (3600, "The timezone field must be a valid timezone."),
        (["UTC"], "The timezone field must be a valid timezone."),
    ],
)
def test_timezone_must_be_an_iana_zone_name(api: httpx.Client, account: Account, timezone: Any, message: str) -> None:
    """R-01: only names in zoneinfo.available_timezones(); no file paths, no leading colon."""
    response = api.put(settings_path(api, account), json={"timezone": timezone, "smart_charging": "disabled"})
    assert errors_of(response) == {"timezone": [message]}


@pytest.mark.parametrize("timezone", ["UTC", "Africa/Accra", "America/Argentina/Buenos_Aires", "Etc/GMT+5"])
def test_timezone_accepts_iana_zone_names(api: httpx.Client, account: Account, timezone: str) -> None:
    settings = put_ok(api, settings_path(api, account), {"timezone": timezone, "smart_charging": "disabled"})
    assert settings["timezone"] == timezone


@pytest.mark.parametrize("mode", ["day_ahead_pricing", "disabled"])
def test_smart_charging_accepts_each_documented_mode(api: httpx.Client, account: Account, mode: str) -> None:
    settings = put_ok(api, settings_path(api, account), {"timezone": "UTC", "smart_charging": mode})
    assert settings["smart_charging"] == mode


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("architecto", "The selected smart charging is invalid."),
        ("Disabled", "The selected smart charging is invalid."),
        (1, "The selected smart charging is invalid."),
        (None, "The smart charging field is required."),
    ],
)
def test_smart_charging_rejects_other_values(api: httpx.Client, account: Account, mode: Any, message: str) -> None:
    response = api.put(settings_path(api, account), json={"timezone": "UTC", "smart_charging": mode})
    assert errors_of(response) == {"smart_charging": [message]}


def test_off_peak_requires_both_window_times(api: httpx.Client, account: Account) -> None:
    """spec A10: off_peak_start/off_peak_end are required when smart_charging is off_peak."""
    response = api.put(settings_path(api, account), json={"timezone": "UTC", "smart_charging": "off_peak"})
    assert response.json() == {
        "message": "The off peak start field is required when smart charging is off_peak. (and 1 more error)",
        "errors": {
            "off_peak_start": ["The off peak start field is required when smart charging is off_peak."],
            "off_peak_end": ["The off peak end field is required when smart charging is off_peak."],
        },
    }


@pytest.mark.parametrize("value", ["7:00", "24:00", "07:00:00", "7:0", "07:60", "0700", "noon", 700])
def test_off_peak_times_must_match_h_i(api: httpx.Client, account: Account, value: Any) -> None:
    """spec §1.2: PHP `H:i` with Laravel's round trip rejects these."""
    response = api.put(settings_path(api, account), json={**OFF_PEAK, "off_peak_start": value})
    assert errors_of(response) == {"off_peak_start": ["The off peak start field must match the format H:i."]}


@pytest.mark.parametrize("value", ["00:00", "23:59", "12:05"])
def test_off_peak_times_accept_h_i(api: httpx.Client, account: Account, value: str) -> None:
    settings = put_ok(api, settings_path(api, account), {**OFF_PEAK, "off_peak_end": value})
    assert settings["off_peak_end"] == value


def test_off_peak_times_are_checked_even_while_disabled(api: httpx.Client, account: Account) -> None:
    body = {"timezone": "UTC", "smart_charging": "disabled", "off_peak_start": None, "off_peak_end": "25:00"}
    assert errors_of(api.put(settings_path(api, account), json=body)) == {
        "off_peak_start": ["The off peak start field must match the format H:i."],
        "off_peak_end": ["The off peak end field must match the format H:i."],
    }


def test_manual_strategy_requires_a_threshold_when_none_is_stored(api: httpx.Client, account: Account) -> None:
    """R-01: the threshold is required when the effective strategy is manual."""
    body = {"timezone": "UTC", "smart_charging": "day_ahead_pricing", "day_ahead_pricing_strategy": "manual"}
    response = api.put(settings_path(api, account), json=body)
    assert response.json() == {
        "message": THRESHOLD_REQUIRED,
        "errors": {"day_ahead_pricing_threshold": [THRESHOLD_REQUIRED]},
    }


def test_manual_strategy_accepts_a_threshold_stored_earlier(api: httpx.Client, account: Account) -> None:
    """R-01 recommendation (Plugchoice): a previously set threshold satisfies `manual`."""
    path = settings_path(api, account)
    put_ok(api, path, {"timezone": "UTC", "smart_charging": "disabled", "day_ahead_pricing_threshold": 18})
    settings = put_ok(
        api, path, {"timezone": "UTC", "smart_charging": "day_ahead_pricing", "day_ahead_pricing_strategy": "manual"}
    )
    assert (settings["day_ahead_pricing_strategy"], settings["day_ahead_pricing_threshold"]) == ("manual", 18)


def test_clearing_the_threshold_under_a_stored_manual_strategy_is_refused(api: httpx.Client, account: Account) -> None:
    """R-01: the *effective* strategy counts, also when the request does not repeat it."""
    path = settings_path(api, account)
    put_ok(
        api,
        path,
        {
            "timezone": "UTC",
            "smart_charging": "disabled",
            "day_ahead_pricing_strategy": "manual",
            "day_ahead_pricing_threshold": 10,
        },
    )
    response = api.put(
        path, json={"timezone": "UTC", "smart_charging": "disabled", "day_ahead_pricing_threshold": None}
    )
    assert errors_of(response) == {"day_ahead_pricing_threshold": [THRESHOLD_REQUIRED]}
    assert api.get(path).json()["data"]["day_ahead_pricing_threshold"] == 10


def test_an_automatic_strategy_may_clear_the_threshold(api: httpx.Client, account: Account) -> None:
    path = settings_path(api, account)
    put_ok(api, path, {"timezone": "UTC", "smart_charging": "disabled", "day_ahead_pricing_threshold": 10})
    settings = put_ok(api, path, {"timezone": "UTC", "smart_charging": "disabled", "day_ahead_pricing_threshold": None})
    assert settings["day_ahead_pricing_threshold"] is None


@pytest.mark.parametrize(("sent", "stored"), [(16, 16), (-5, -5), (0, 0), ("25", 25), (-2147483647, -2147483647)])
def test_threshold_accepts_integers_including_negative_ones(
    api: httpx.Client, account: Account, sent: Any, stored: int
) -> None:
    """R-01: negative prices exist, so negative thresholds are allowed."""
    body = {
        "timezone": "UTC",
        "smart_charging": "day_ahead_pricing",
        "day_ahead_pricing_strategy": "manual",
        "day_ahead_pricing_threshold": sent,
    }
    assert put_ok(api, settings_path(api, account), body)["day_ahead_pricing_threshold"] == stored


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "The day ahead pricing threshold field must be an integer."),
        ("abc", "The day ahead pricing threshold field must be an integer."),
        (True, "The day ahead pricing threshold field must be an integer."),
        ([16], "The day ahead pricing threshold field must be an integer."),
        (10**20, "The day ahead pricing threshold field must not be greater than 2147483647."),
        (-(10**20), "The day ahead pricing threshold field must be at least -2147483647."),
    ],
)
def test_threshold_rejects_non_integers(api: httpx.Client, account: Account, value: Any, message: str) -> None:
    body = {"timezone": "UTC", "smart_charging": "disabled", "day_ahead_pricing_threshold": value}
    assert errors_of(api.put(settings_path(api, account), json=body)) == {"day_ahead_pricing_threshold": [message]}


@pytest.mark.parametrize("strategy", ["sometimes", "Manual", 1])
def test_strategy_must_be_automatic_or_manual(api: httpx.Client, account: Account, strategy: Any) -> None:
    body = {"timezone": "UTC", "smart_charging": "disabled", "day_ahead_pricing_strategy": strategy}
    assert errors_of(api.put(settings_path(api, account), json=body)) == {
        "day_ahead_pricing_strategy": ["The selected day ahead pricing strategy is invalid."]
    }


@pytest.mark.parametrize("sent", [{}, {"day_ahead_pricing_strategy": None}])
def test_a_strategy_not_sent_keeps_the_stored_one(api: httpx.Client, account: Account, sent: dict[str, Any]) -> None:
    """R-01: day_ahead_pricing_strategy absent (or null) keeps the stored value."""
    path = settings_path(api, account)
    put_ok(
        api,
        path,
        {
            "timezone": "UTC",
            "smart_charging": "day_ahead_pricing",
            "day_ahead_pricing_strategy": "manual",
            "day_ahead_pricing_threshold": 12,
        },
    )
    settings = put_ok(api, path, {"timezone": "UTC", "smart_charging": "day_ahead_pricing", **sent})
    assert (settings["day_ahead_pricing_strategy"], settings["day_ahead_pricing_threshold"]) == ("manual", 12)


def test_the_threshold_is_kept_when_switching_to_automatic(api: httpx.Client, account: Account) -> None:
    """R-02: valid fields not needed by the mode are stored and echoed back."""
    path = settings_path(api, account)
    put_ok(
        api,
        path,
        {
            "timezone": "UTC",
            "smart_charging": "day_ahead_pricing",
            "day_ahead_pricing_strategy": "manual",
            "day_ahead_pricing_threshold": 21,
        },
    )
    settings = put_ok(
        api, path, {"timezone": "UTC", "smart_charging": "day_ahead_pricing", "day_ahead_pricing_strategy": "automatic"}
    )
    assert (settings["day_ahead_pricing_strategy"], settings["day_ahead_pricing_threshold"]) == ("automatic", 21)
    assert api.get(path).json()["data"] == settings


def test_the_off_peak_window_is_kept_while_disabled(api: httpx.Client, account: Account) -> None:
    """R-02: off_peak_* keep their values while the mode is disabled."""
    path = settings_path(api, account)
    put_ok(api, path, OFF_PEAK)
    settings = put_ok(api, path, {"timezone": "Europe/Amsterdam", "smart_charging": "disabled"})
    assert settings == {**DEFAULTS, **OFF_PEAK, "smart_charging": "disabled"}
    back = put_ok(api, path, {**OFF_PEAK, "off_peak_start": "21:00"})
    assert (back["off_peak_start"], back["off_peak_end"]) == ("21:00", "06:15")


@pytest.mark.parametrize("price", [12.5, "abc", None])
def test_the_smart_mode_price_is_read_only(api: httpx.Client, account: Account, price: Any) -> None:
    """R-01: day_ahead_pricing_smart_mode_price is ignored when sent; R-04: null without prices."""
    body = {"timezone": "UTC", "smart_charging": "day_ahead_pricing", "day_ahead_pricing_smart_mode_price": price}
    assert put_ok(api, settings_path(api, account), body)["day_ahead_pricing_smart_mode_price"] is None


def test_settings_of_an_unknown_or_foreign_site_are_a_404(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    other = server.account("Other")
    with server.client(other) as other_api:
        theirs = make_site(other_api, other)
    for ref in (theirs["id"], theirs["uuid"], 999999999, "nope"):
        path = f"{sites_path(account)}/{ref}/smart-charging"
        for response in (api.get(path), api.put(path, json=OFF_PEAK)):
            assert (response.status_code, response.json()) == (404, {"message": "Not found."})
    with server.client(other) as other_api:
        assert other_api.get(f"{sites_path(other)}/{theirs['id']}/smart-charging").json() == {"data": DEFAULTS}


def test_a_body_that_is_not_an_object_is_a_400(api: httpx.Client, account: Account) -> None:
    response = api.put(settings_path(api, account), content=b"[]", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
