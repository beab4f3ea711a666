"""The site gate: off-peak windows (spec §5.3 vectors) and the day-ahead price gate (§6.5)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from voltline.smart.gates import (
    Gate,
    GateError,
    next_off_peak_change,
    off_peak_open,
    price_gate_open,
    site_gate,
)

AMS = "Europe/Amsterdam"


def utc(text: str) -> datetime:
    """A naive UTC datetime from ISO text ending in Z."""
    return datetime.fromisoformat(text.removesuffix("Z"))


# (now UTC, window start, window end, expected inside) — spec §5.3, timezone Europe/Amsterdam.
MEMBERSHIP = [
    pytest.param("2025-01-15T21:59Z", "23:00", "07:00", False, id="22:59-CET-outside"),
    pytest.param("2025-01-15T22:00Z", "23:00", "07:00", True, id="23:00-CET-inside"),
    pytest.param("2025-01-16T05:59Z", "23:00", "07:00", True, id="06:59-CET-inside"),
    pytest.param("2025-01-16T06:00Z", "23:00", "07:00", False, id="07:00-CET-outside"),
    pytest.param("2025-06-01T15:00Z", "08:00", "17:00", False, id="window-08-17-at-17:00-CEST-outside"),
    pytest.param("2025-01-15T12:34Z", "13:42", "13:42", True, id="window-13:42-13:42-inside"),
    pytest.param("2025-07-01T11:42Z", "13:42", "13:42", True, id="window-13:42-13:42-inside-at-bound"),
    pytest.param("2025-03-30T00:59Z", "02:30", "06:00", False, id="spring-window-02:30-at-01:59-CET-outside"),
    pytest.param("2025-03-30T01:00Z", "02:30", "06:00", True, id="spring-window-02:30-at-03:00-CEST-inside"),
    pytest.param("2025-10-26T00:29Z", "01:00", "02:30", True, id="fall-window-01-02:30-at-02:29-CEST-inside"),
    pytest.param("2025-10-26T00:30Z", "01:00", "02:30", False, id="fall-window-01-02:30-at-02:30-CEST-outside"),
    pytest.param("2025-10-26T01:00Z", "01:00", "02:30", True, id="fall-window-01-02:30-at-02:00-CET-inside-again"),
    pytest.param("2025-10-26T01:29Z", "01:00", "02:30", True, id="fall-window-01-02:30-at-02:29-CET-inside"),
    pytest.param("2025-10-26T01:30Z", "01:00", "02:30", False, id="fall-window-01-02:30-at-02:30-CET-outside"),
]


@pytest.mark.parametrize(("now", "start", "end", "inside"), MEMBERSHIP)
def test_off_peak_membership_follows_the_site_wall_clock(now: str, start: str, end: str, inside: bool) -> None:
    """spec/smart-charging.md R-50, §5.3 vectors: half-open wall-clock window in the site timezone."""
    assert off_peak_open(utc(now), AMS, start, end) is inside


# (a UTC instant on the afternoon before the night, window start UTC, window end UTC, duration).
NIGHTS = [
    pytest.param("2025-03-29T12:00Z", "2025-03-29T22:00Z", "2025-03-30T05:00Z", 7, id="spring-forward-night-7h"),
    pytest.param("2025-10-25T12:00Z", "2025-10-25T21:00Z", "2025-10-26T06:00Z", 9, id="fall-back-night-9h"),
    pytest.param("2025-01-15T12:00Z", "2025-01-15T22:00Z", "2025-01-16T06:00Z", 8, id="winter-night-8h"),
]


@pytest.mark.parametrize(("afternoon", "start", "end", "hours"), NIGHTS)
def test_off_peak_night_duration_varies_with_dst(afternoon: str, start: str, end: str, hours: int) -> None:
    """spec/smart-charging.md R-52, R-53, §5.3: 23:00-07:00 lasts 7 h / 9 h on the DST nights."""
    opens = next_off_peak_change(utc(afternoon), AMS, "23:00", "07:00")
    assert opens == utc(start)
    closes = next_off_peak_change(opens, AMS, "23:00", "07:00")
    assert closes == utc(end)
    assert closes - opens == timedelta(hours=hours)


TRANSITIONS = [
    pytest.param("2025-03-30T00:59Z", "02:30", "06:00", "2025-03-30T01:00Z", id="start-in-spring-gap-takes-gap-end"),
    pytest.param("2025-03-29T12:00Z", "02:30", "06:00", "2025-03-30T01:00Z", id="start-in-spring-gap-from-afternoon"),
    pytest.param("2025-03-30T01:00Z", "02:30", "06:00", "2025-03-30T04:00Z", id="spring-window-closes-06:00-CEST"),
    pytest.param("2025-10-25T22:00Z", "01:00", "02:30", "2025-10-25T23:00Z", id="fall-window-opens-01:00-CEST"),
    pytest.param("2025-10-25T23:00Z", "01:00", "02:30", "2025-10-26T00:30Z", id="fall-window-closes-02:30-CEST"),
    pytest.param("2025-10-26T00:30Z", "01:00", "02:30", "2025-10-26T01:00Z", id="fall-window-re-enters-at-jump-back"),
    pytest.param("2025-10-26T01:00Z", "01:00", "02:30", "2025-10-26T01:30Z", id="fall-window-closes-again-02:30-CET"),
    pytest.param("2025-01-15T21:59:30Z", "23:00", "07:00", "2025-01-15T22:00Z", id="seconds-before-start"),
    pytest.param("2025-01-15T22:00Z", "23:00", "07:00", "2025-01-16T06:00Z", id="at-start-next-is-end"),
]


@pytest.mark.parametrize(("now", "start", "end", "expected"), TRANSITIONS)
def test_next_off_peak_change_is_the_first_instant_membership_flips(
    now: str, start: str, end: str, expected: str
) -> None:
    """spec/smart-charging.md R-52: spring gap takes effect at the gap's end; fall-back overlap re-enters."""
    moment = utc(now)
    change = next_off_peak_change(moment, AMS, start, end)
    assert change == utc(expected)
    assert off_peak_open(change, AMS, start, end) is not off_peak_open(moment, AMS, start, end)
    assert off_peak_open(change - timedelta(seconds=1), AMS, start, end) is off_peak_open(moment, AMS, start, end)


def test_start_equal_end_has_no_transition() -> None:
    """spec/smart-charging.md R-50 decision: start == end is a 24 h window that never changes."""
    assert next_off_peak_change(utc("2025-03-30T00:59Z"), AMS, "13:42", "13:42") is None


def test_missing_timezone_means_utc() -> None:
    """DESIGN: windows fall back to UTC while the site timezone is null."""
    assert off_peak_open(utc("2025-01-15T23:00Z"), None, "23:00", "07:00") is True
    assert off_peak_open(utc("2025-01-15T22:59Z"), None, "23:00", "07:00") is False
    assert next_off_peak_change(utc("2025-01-15T12:00Z"), None, "23:00", "07:00") == utc("2025-01-15T23:00Z")


@pytest.mark.parametrize(
    ("timezone", "start"),
    [("Mars/Olympus", "23:00"), ("", "23:00"), (AMS, "24:00"), (AMS, "7:00"), (AMS, "23:60")],
)
def test_bad_settings_raise_a_gate_error(timezone: str, start: str) -> None:
    """spec/smart-charging.md R-01: bounds are HH:MM and the timezone must exist."""
    with pytest.raises(GateError):
        off_peak_open(utc("2025-01-15T12:00Z"), timezone, start, "07:00")


def ct_to_eur_per_mwh(ct_per_kwh: Decimal) -> Decimal:
    """ct/kWh -> EUR/MWh (R-63: ct/kWh = EUR/MWh ÷ 10)."""
    return ct_per_kwh * 10


@pytest.mark.parametrize(
    ("spot", "allowed"),
    [
        pytest.param(Decimal("80.00"), True, id="80.00-EUR/MWh-equal-to-8ct-allowed"),
        pytest.param(Decimal("80.01"), False, id="80.01-EUR/MWh-above-8ct-paused"),
        pytest.param(Decimal("79.99"), True, id="79.99-EUR/MWh-below-allowed"),
        pytest.param(Decimal("-5.00"), True, id="negative-price-allowed"),
        pytest.param(None, True, id="no-price-allowed"),
    ],
)
def test_manual_threshold_price_gate(spot: Decimal | None, allowed: bool) -> None:
    """spec/smart-charging.md R-66, R-67, R-71, §6.5: threshold 8 ct/kWh, equality counts as cheap."""
    assert price_gate_open(spot, ct_to_eur_per_mwh(Decimal(8))) is allowed


def test_negative_threshold_pauses_positive_prices() -> None:
    """spec/smart-charging.md R-71: a user may set a negative limit."""
    assert price_gate_open(Decimal("0.00"), Decimal("-1")) is False
    assert price_gate_open(Decimal("-1.5"), Decimal("-1")) is True


def test_no_limit_fails_open() -> None:
    """spec/smart-charging.md R-04, R-67: no smart mode price yet -> the gate stays open."""
    assert price_gate_open(Decimal("500"), None) is True


GATE_ARGS: dict[str, object] = {
    "timezone": AMS,
    "off_peak_start": "23:00",
    "off_peak_end": "07:00",
    "price_now": None,
    "limit": None,
    "next_slot": None,
}


def gate(mode: str, now: str, **overrides: object) -> Gate:
    """site_gate with the defaults above and some overrides."""
    args = {**GATE_ARGS, **overrides}
    return site_gate(mode, utc(now), **args)  # type: ignore[arg-type]


def test_site_gate_disabled_is_open_without_wake_up() -> None:
    """spec/smart-charging.md §9: disabled -> always open."""
    assert gate("disabled", "2025-01-15T12:00Z", price_now=Decimal(999), limit=Decimal(1)) == Gate(
        True, "disabled", None
    )


def test_site_gate_off_peak_closed_then_open() -> None:
    """spec/smart-charging.md R-56, R-52: outside the window closed, with the next window edge."""
    assert gate("off_peak", "2025-01-15T12:00Z") == Gate(False, "off_peak_closed", utc("2025-01-15T22:00Z"))
    assert gate("off_peak", "2025-01-15T22:00Z") == Gate(True, "off_peak_open", utc("2025-01-16T06:00Z"))


def test_site_gate_prices() -> None:
    """spec/smart-charging.md R-66, R-67, R-70: price gate, wakes at the next slot."""
    slot = utc("2025-01-15T12:15Z")
    cheap = gate("day_ahead_pricing", "2025-01-15T12:00Z", price_now=Decimal(80), limit=Decimal(80), next_slot=slot)
    dear = gate("day_ahead_pricing", "2025-01-15T12:00Z", price_now=Decimal("80.01"), limit=Decimal(80), next_slot=slot)
    missing = gate("day_ahead_pricing", "2025-01-15T12:00Z", limit=Decimal(80), next_slot=None)
    no_limit = gate("day_ahead_pricing", "2025-01-15T12:00Z", price_now=Decimal(80), next_slot=slot)
    assert cheap == Gate(True, "price_ok", slot)
    assert dear == Gate(False, "price_above_limit", slot)
    assert missing == Gate(True, "prices_unavailable", None)
    assert no_limit == Gate(True, "prices_unavailable", slot)


def test_site_gate_unknown_mode_raises() -> None:
    """spec/smart-charging.md R-01: only the three modes exist."""
    with pytest.raises(GateError):
        gate("solar", "2025-01-15T12:00Z")
