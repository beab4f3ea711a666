"""The simulator's electrical model: current per phase, suspension, energy register."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voltline.simulator.meter import Car, Meter, amps_from_watts, floor_tenths, random_car, watts_from_amps

THREE_PHASE_32 = Car(max_current=32.0, phases=3, battery_wh=60_000, soc=20.0)
THREE_PHASE_16 = Car(max_current=16.0, phases=3, battery_wh=60_000, soc=20.0)
SINGLE_PHASE_32 = Car(max_current=32.0, phases=1, battery_wh=60_000, soc=20.0)


def charging(car: Car, limit: float | None = None, phases: int = 3, max_current: float = 32.0) -> Meter:
    meter = Meter(random.Random(1), phases=phases, max_current=max_current, register_wh=1000)
    meter.plug(car)
    meter.charging = True
    meter.limit = limit
    return meter


@pytest.mark.parametrize(
    ("car", "max_current", "limit", "expected"),
    [
        (THREE_PHASE_32, 32.0, None, 32.0),
        (THREE_PHASE_16, 32.0, None, 16.0),
        (THREE_PHASE_32, 20.0, None, 20.0),
        (THREE_PHASE_32, 32.0, 10.6, 10.6),
        (THREE_PHASE_16, 32.0, 25.0, 16.0),
        (THREE_PHASE_32, 32.0, 6.0, 6.0),
    ],
)
def test_current_per_phase_is_the_lowest_of_car_connector_and_profile_limit(
    car: Car, max_current: float, limit: float | None, expected: float
) -> None:
    meter = charging(car, limit, max_current=max_current)
    assert meter.currents() == (expected, expected, expected)


@pytest.mark.parametrize("limit", [0.0, 5.9, 3.0])
def test_a_limit_below_six_amps_suspends_charging(limit: float) -> None:
    """IEC 61851 minimum: the EVSE offers nothing below 6 A (SuspendedEVSE)."""
    meter = charging(THREE_PHASE_32, limit)
    assert meter.suspended_by_evse
    assert meter.offered == 0.0
    assert meter.currents() == (0.0, 0.0, 0.0)
    assert meter.advance(3600) == 0
    assert meter.register_wh == 1000


def test_a_single_phase_car_draws_on_l1_only() -> None:
    meter = charging(SINGLE_PHASE_32, 16.0)
    assert meter.currents() == (16.0, 0.0, 0.0)
    assert meter.active_phases == 1


def test_a_single_phase_charger_reports_l1_only() -> None:
    meter = charging(THREE_PHASE_32, phases=1)
    assert meter.currents() == (32.0,)
    assert len(meter.sample().voltages) == 1


def test_power_is_voltage_times_current_over_the_phases() -> None:
    meter = charging(THREE_PHASE_16)
    assert meter.power() == pytest.approx(230 * 16 * 3)
    meter.advance(1)
    assert all(220 < volts < 240 for volts in meter.voltages)
    assert meter.power() == pytest.approx(sum(volts * 16 for volts in meter.voltages))


def test_one_hour_at_eleven_kilowatts_adds_about_eleven_kwh() -> None:
    meter = charging(THREE_PHASE_16)
    added = sum(meter.advance(1.0) for _ in range(3600))
    assert added == meter.register_wh - 1000
    assert 10_900 < added < 11_180


@given(st.lists(st.floats(min_value=0, max_value=120, allow_nan=False), max_size=60))
def test_increments_sum_to_the_register_growth_and_it_never_decreases(steps: list[float]) -> None:
    """R-96 relies on a register that never decreases; meterStop - meterStart is the sum of increments."""
    meter = charging(THREE_PHASE_32)
    readings = [meter.register_wh]
    increments = []
    for index, seconds in enumerate(steps):
        meter.limit = [None, 10.6, 0.0, 6.0][index % 4]
        increments.append(meter.advance(seconds))
        readings.append(meter.register_wh)
    assert readings == sorted(readings)
    assert all(step >= 0 for step in increments)
    assert sum(increments) == meter.register_wh - 1000


def test_no_current_flows_without_a_car_or_before_charging_starts() -> None:
    meter = Meter(random.Random(1))
    assert meter.current == 0.0
    meter.plug(THREE_PHASE_32)
    assert meter.current == 0.0
    meter.charging = True
    assert meter.current == 32.0
    meter.unplug()
    assert (meter.current, meter.car, meter.charging) == (0.0, None, False)


def test_a_full_car_stops_drawing_current() -> None:
    meter = charging(Car(max_current=32.0, phases=3, battery_wh=1000, soc=99.0))
    meter.advance(60)
    assert meter.suspended_by_ev
    assert meter.sample().soc == 100.0
    assert meter.currents() == (0.0, 0.0, 0.0)


def test_state_of_charge_rises_with_the_energy_delivered() -> None:
    meter = charging(THREE_PHASE_16)
    meter.advance(3600)
    assert meter.soc == pytest.approx(20.0 + 100 * meter.power() / 60_000, abs=0.5)


def test_limits_convert_between_watts_and_amps_with_nominal_230_volts() -> None:
    """spec/smart-charging.md R-16: 11 kW on 3 phases = 15.9 A; 16 A single-phase = 3680 W."""
    assert amps_from_watts(11_000, 3) == 15.9
    assert watts_from_amps(16, 1) == 3680.0
    assert watts_from_amps(16, 3) == 11_040.0
    assert floor_tenths(10.6) == 10.6
    assert floor_tenths(10.69) == 10.6


def test_random_cars_come_from_the_seeded_generator() -> None:
    cars = [random_car(random.Random("7:CP-1")) for _ in range(2)]
    assert cars[0] == cars[1]
    assert {random_car(random.Random(seed)).phases for seed in range(50)} == {1, 3}
