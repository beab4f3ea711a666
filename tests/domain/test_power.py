"""Live power and currents: spec/smart-charging.md R-100 (power priority), R-101 (shape), R-102 (staleness), R-104."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from voltline.domain.power import (
    CURRENT,
    EAIR,
    POWER,
    VOLTAGE,
    MeterReading,
    Reading,
    RegisterSample,
    Usage,
    charger_reading,
    current_text,
    instantaneous_power,
    kilowatt_text,
    live_usage,
    meter_totals,
    newer_reading,
    register_power,
    stale_after,
    sum_usages,
)

T0 = datetime(2025, 3, 31, 10, 0, 0)


def r(measurand: str, phase: str, value: str, at: datetime = T0) -> Reading:
    return Reading(measurand, phase, Decimal(value), at)


def three_phase(amps: str, at: datetime = T0) -> list[Reading]:
    return [r(CURRENT, phase, amps, at) for phase in ("L1", "L2", "L3")]


def texts(usage: Usage) -> dict[str, str]:
    return {phase: current_text(usage.currents[phase]) for phase in ("L1", "L2", "L3")} | {
        "kW": kilowatt_text(usage.power)
    }


# -- power by priority ------------------------------------------------------------------------


def test_power_total_comes_first() -> None:
    """spec/smart-charging.md R-100 (1): the phase-less Power.Active.Import wins over everything else."""
    readings = [r(POWER, "", "7364"), r(POWER, "L1", "1000"), *three_phase("16"), r(VOLTAGE, "L1-N", "240")]
    assert instantaneous_power(readings) == Decimal(7364)


def test_per_phase_power_is_summed_without_a_total() -> None:
    """R-100 (2): the sum of per-phase Power.Active.Import (Lx-N counts as Lx)."""
    readings = [r(POWER, "L1", "1000"), r(POWER, "L2-N", "1100.5"), r(POWER, "L3", "900"), *three_phase("16")]
    assert instantaneous_power(readings) == Decimal("3000.5")


def test_voltage_times_current_per_phase() -> None:
    """R-100 (3): Σ V_p * I_p; line-to-line voltages are ignored (R-92)."""
    readings = [
        *three_phase("10"),
        r(VOLTAGE, "L1-N", "230"),
        r(VOLTAGE, "L2-N", "231"),
        r(VOLTAGE, "L3-N", "229"),
        r(VOLTAGE, "L1-L2", "400"),
    ]
    assert instantaneous_power(readings) == Decimal(6900)


def test_a_missing_phase_voltage_falls_back_to_230_volts() -> None:
    """R-100 (4) when (3) is incomplete: 230 * Σ I."""
    readings = [*three_phase("10"), r(VOLTAGE, "L1-N", "240")]
    assert instantaneous_power(readings) == Decimal(6900)


def test_three_times_16_amps_without_power_is_11_04_kw() -> None:
    """spec/smart-charging.md §8.6: L1 = L2 = L3 = 16 A with no power measurand: kW = 230 * 48 / 1000 = "11.04"."""
    usage = live_usage(three_phase("16"), now=T0, open_transaction=True)
    assert usage.power == Decimal(11040)
    assert kilowatt_text(usage.power) == "11.04"


def test_register_delta_gives_power_when_nothing_else_does() -> None:
    """§8.6: 1000 Wh at 10:00:00 and 1100 Wh at 10:00:30 give 100 * 3600 / 30 = 12000 W (R-100 (5))."""
    latest = [r(EAIR, "", "1100", T0 + timedelta(seconds=30))]
    previous = RegisterSample(T0, Decimal(1000))
    assert instantaneous_power(latest, previous) == Decimal(12000)
    assert instantaneous_power(latest) is None
    assert register_power(previous, RegisterSample(T0 + timedelta(seconds=30), Decimal(1100))) == Decimal(12000)


def test_a_register_reset_gives_zero_and_no_elapsed_time_gives_nothing() -> None:
    """R-96 inside R-100 (5): a falling register is a reset (0 W); Δt = 0 has no power."""
    assert (
        register_power(RegisterSample(T0, Decimal(5000)), RegisterSample(T0 + timedelta(seconds=60), Decimal(20))) == 0
    )
    assert register_power(RegisterSample(T0, Decimal(10)), RegisterSample(T0, Decimal(20))) is None


def test_kw_has_two_decimals_rounded_half_up() -> None:
    """R-101: W / 1000 with 2 decimals, half-up ("7.36"); none is "0.00"."""
    assert kilowatt_text(Decimal("7364")) == "7.36"
    assert kilowatt_text(Decimal("7365")) == "7.37"
    assert kilowatt_text(Decimal("-1")) == "0.00"
    assert kilowatt_text(None) == "0.00"
    assert kilowatt_text(Decimal("22080")) == "22.08"


# -- shape ----------------------------------------------------------------------------------


def test_single_phase_charger_shows_dashes_for_unreported_phases() -> None:
    """R-101: a single-phase charger gives "L1":"6.1","L2":"-","L3":"-"."""
    usage = live_usage([r(CURRENT, "L1", "6.1")], now=T0, open_transaction=False)
    assert texts(usage) == {"L1": "6.1", "L2": "-", "L3": "-", "kW": "1.40"}
    assert usage.timestamp == T0


def test_three_phase_currents_are_strings_of_the_values() -> None:
    """R-101: the Current.Import phase values as strings ("15.9")."""
    readings = [r(CURRENT, "L1", "15.9"), r(CURRENT, "L2", "16"), r(CURRENT, "L3", "0"), r(POWER, "", "7360")]
    assert texts(live_usage(readings, now=T0, open_transaction=True)) == {
        "L1": "15.9",
        "L2": "16",
        "L3": "0",
        "kW": "7.36",
    }


def test_a_phaseless_current_stands_for_each_phase_of_the_connector() -> None:
    """R-92: Current.Import without a phase is a per-phase value."""
    single = live_usage([r(CURRENT, "", "10")], now=T0, open_transaction=True, phases=1)
    assert texts(single) == {"L1": "10", "L2": "-", "L3": "-", "kW": "2.30"}
    three = live_usage([r(CURRENT, "", "10")], now=T0, open_transaction=True, phases=3)
    assert texts(three) == {"L1": "10", "L2": "10", "L3": "10", "kW": "6.90"}


def test_no_data_at_all_is_dashes_and_no_timestamp() -> None:
    usage = live_usage([], now=T0, open_transaction=False)
    assert usage.timestamp is None
    assert texts(usage) == {"L1": "-", "L2": "-", "L3": "-", "kW": "0.00"}


def test_values_of_an_older_round_do_not_mix_with_the_newest() -> None:
    """R-101: only the newest reading round describes the connector; a phase reported before reads 0."""
    old = T0 - timedelta(minutes=10)
    readings = [*three_phase("16", old), r(POWER, "", "11000", old), r(CURRENT, "L1", "6", T0)]
    usage = live_usage(readings, now=T0, open_transaction=True)
    assert texts(usage) == {"L1": "6", "L2": "0", "L3": "0", "kW": "1.38"}


# -- staleness ---------------------------------------------------------------------------------


def test_stale_after_is_the_interval_plus_10_s_but_at_least_60_s() -> None:
    """R-102: max(sample_interval + 10 s, 60 s)."""
    assert stale_after(timedelta(seconds=60)) == timedelta(seconds=70)
    assert stale_after(timedelta(seconds=10)) == timedelta(seconds=60)
    assert stale_after(timedelta(seconds=300)) == timedelta(seconds=310)


@pytest.mark.parametrize(("age", "stale"), [(69, False), (70, False), (71, True)])
def test_without_a_transaction_old_data_reads_zero(age: int, stale: bool) -> None:
    """R-102: no open transaction and data older than 70 s (60 s interval): "0" for reported phases, "0.00" kW."""
    now = T0 + timedelta(seconds=age)
    usage = live_usage([r(CURRENT, "L1", "6.1"), r(POWER, "", "1400")], now=now, open_transaction=False)
    if stale:
        assert texts(usage) == {"L1": "0", "L2": "-", "L3": "-", "kW": "0.00"}
        assert usage.timestamp == now
    else:
        assert texts(usage) == {"L1": "6.1", "L2": "-", "L3": "-", "kW": "1.40"}
        assert usage.timestamp == T0


def test_with_an_open_transaction_old_data_keeps_its_values_and_time() -> None:
    """R-102: with an open transaction, the last values and their timestamp, so the client sees the age."""
    usage = live_usage(three_phase("16"), now=T0 + timedelta(hours=1), open_transaction=True)
    assert texts(usage) == {"L1": "16", "L2": "16", "L3": "16", "kW": "11.04"}
    assert usage.timestamp == T0


def test_a_longer_sample_interval_moves_the_staleness_limit() -> None:
    usage = live_usage(
        [r(CURRENT, "L1", "6")],
        now=T0 + timedelta(seconds=200),
        open_transaction=False,
        sample_interval=timedelta(seconds=300),
    )
    assert texts(usage)["L1"] == "6"


# -- meters ------------------------------------------------------------------------------


def test_virtual_meter_sums_connectors_per_phase() -> None:
    """R-104: currents and power summed per phase over the group's connectors."""
    three = live_usage(three_phase("16"), now=T0, open_transaction=True)
    single = live_usage([r(CURRENT, "L1", "6"), r(POWER, "", "1400")], now=T0, open_transaction=True, phases=1)
    silent = live_usage([], now=T0, open_transaction=False)
    totals = sum_usages([three, single, silent])
    assert totals.currents == {"L1": Decimal(22), "L2": Decimal(16), "L3": Decimal(16)}
    assert totals.power == Decimal(11040 + 1400)
    assert totals.phase_power == {"L1": Decimal(3680 + 1380), "L2": Decimal(3680), "L3": Decimal(3680)}
    assert totals.updated_at == T0


def test_a_virtual_meter_without_any_data_has_no_power_and_no_time() -> None:
    """R-103: updated_at "-" (None here) when no data has arrived; power unknown."""
    totals = sum_usages([live_usage([], now=T0, open_transaction=False)])
    assert totals.power is None and totals.updated_at is None
    assert totals.currents == {"L1": 0, "L2": 0, "L3": 0}


def test_a_meter_reading_without_power_is_230_volts_times_the_signed_current() -> None:
    """R-103: signed readings (negative = export); power computed per phase and summed."""
    reading = MeterReading(T0, {"L1": Decimal(10), "L2": Decimal(-5), "L3": Decimal(0)})
    totals = meter_totals(reading)
    assert totals.phase_power == {"L1": Decimal(2300), "L2": Decimal(-1150), "L3": Decimal(0)}
    assert totals.power == Decimal(1150)


def test_measured_meter_power_is_kept() -> None:
    reading = MeterReading(
        T0, {"L1": Decimal(10), "L2": Decimal(0), "L3": Decimal(0)}, Decimal(2500), {"L1": Decimal(2400)}
    )
    totals = meter_totals(reading)
    assert totals.power == Decimal(2500)
    assert totals.phase_power["L1"] == Decimal(2400) and totals.phase_power["L2"] == Decimal(0)


def test_a_meter_without_readings_is_zero_with_unknown_power() -> None:
    totals = meter_totals(None)
    assert totals.currents == {"L1": 0, "L2": 0, "L3": 0}
    assert totals.power is None and totals.updated_at is None


def test_a_chargers_grid_side_currents_make_a_meter_reading_and_the_newer_reading_wins() -> None:
    """The charger's connector-0 Current.Import per phase is a meter reading; the newer of two wins."""
    samples = [*three_phase("12", T0), r(POWER, "", "8000", T0)]
    from_charger = charger_reading(samples)
    assert from_charger is not None
    assert from_charger.currents == {"L1": Decimal(12), "L2": Decimal(12), "L3": Decimal(12)}
    assert from_charger.power == Decimal(8000)
    posted = MeterReading(T0 + timedelta(seconds=1), {"L1": Decimal(1)})
    assert newer_reading(posted, from_charger) is posted
    assert newer_reading(MeterReading(T0 - timedelta(seconds=1), {}), from_charger) is from_charger
    assert charger_reading([r(POWER, "", "8000")]) is None


def test_a_connector_known_only_by_its_total_power_spreads_it_over_its_phases() -> None:
    """R-104: per-phase power of a connector that reports only Power.Active.Import (no currents)."""
    three = live_usage([r(POWER, "", "6900")], now=T0, open_transaction=True)
    assert three.phase_power == {"L1": Decimal(2300), "L2": Decimal(2300), "L3": Decimal(2300)}
    single = live_usage([r(POWER, "", "2300")], now=T0, open_transaction=True, phases=1)
    assert single.phase_power == {"L1": Decimal(2300)}
    assert texts(single) == {"L1": "-", "L2": "-", "L3": "-", "kW": "2.30"}
