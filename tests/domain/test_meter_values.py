"""Meter value normalisation: spec/smart-charging.md §8.1-§8.2 (R-90..R-94), §8.6 vectors, packing (DESIGN)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voltline.domain.meter_values import (
    EAIR,
    FutureTimestampError,
    Sample,
    base_unit,
    context_priority,
    decimal_text,
    default_unit,
    frame_timestamp,
    is_numeric,
    normalise_sample,
    pack_samples,
    phase_values,
    register_reading,
    register_wh,
    sample_id,
    unpack_samples,
)

# -- R-90 value and unit -------------------------------------------------------------------------


def test_a_kwh_value_is_stored_in_wh() -> None:
    """§8.6: {"value":"1.234","unit":"kWh"} gives 1234 Wh."""
    sample = normalise_sample("1.234", unit="kWh")
    assert (sample.value, sample.unit, sample.normalised) == ("1.234", "kWh", "1234")
    assert base_unit(sample.unit) == "Wh"


def test_a_201_number_with_a_multiplier_is_scaled_by_a_power_of_ten() -> None:
    """§8.6: 1.234 kWh (multiplier 0) gives 1234 Wh; 2.5 W with multiplier 3 gives 2500 W."""
    assert normalise_sample(1.234, unit="kWh", multiplier=0).normalised == "1234"
    sample = normalise_sample(2.5, measurand="Power.Active.Import", unit="W", multiplier=3)
    assert (sample.value, sample.normalised) == ("2.5", "2500")
    assert normalise_sample(1500, measurand="Power.Active.Import", unit="W", multiplier=-3).normalised == "1.5"
    assert normalise_sample(Decimal("2.50"), unit="kWh").normalised == "2500"


@pytest.mark.parametrize(
    ("value", "unit", "normalised", "base"),
    [
        ("7.36", "kW", "7360", "W"),
        ("2", "kvarh", "2000", "varh"),
        ("0.5", "kvar", "500", "var"),
        ("11", "kVA", "11000", "VA"),
        ("1500", "mA", "1.5", "A"),
        ("16.0", "A", "16", "A"),
        ("230.10", "V", "230.1", "V"),
        ("55", "Percent", "55", "Percent"),
        ("21.5", "Celsius", "21.5", "Celsius"),
    ],
)
def test_units_are_scaled_into_their_base_unit(value: str, unit: str, normalised: str, base: str) -> None:
    """R-90: k* times 1000, m* divided by 1000; other units stay as they are."""
    assert normalise_sample(value, unit=unit).normalised == normalised
    assert base_unit(unit) == base


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("5133841.000", "5133841"),
        ("  42.5 ", "42.5"),
        ("+7", "7"),
        ("007.50", "7.5"),
        (".5", "0.5"),
        ("1e3", "1000"),
        ("1.5E-3", "0.0015"),
        ("0.000", "0"),
        ("-0", "0"),
        ("-0.0", "0"),
        ("-5.20", "-5.2"),
    ],
)
def test_the_normalised_text_has_no_exponent_no_trailing_zeros_and_keeps_the_sign(value: str, normalised: str) -> None:
    """R-90: 1.6 values are decimal strings, stripped; stored as plain decimal text (R-103: signed)."""
    sample = normalise_sample(value, measurand="Current.Import")
    assert sample.normalised == normalised
    assert sample.value == value  # the raw text is kept as sent


def test_a_negative_power_in_kw_stays_negative_in_w() -> None:
    """R-103: negative values mean export; the sign survives the unit conversion."""
    assert normalise_sample("-1.5", measurand="Power.Active.Import", unit="kW").normalised == "-1500"


@pytest.mark.parametrize(
    "value",
    ["NaN", "nan", "Infinity", "-inf", "", "   ", "abc", "1,5", "0x10", "1_000", "+-5", "١٢", "1e400", "9" * 65],
)
def test_non_finite_and_non_numeric_values_are_kept_raw_without_a_normalised_value(value: str) -> None:
    """R-90: reject non-finite values (and text that is no decimal number, or no plausible reading)."""
    sample = normalise_sample(value)
    assert sample.value == value and sample.normalised is None
    assert not is_numeric(sample)


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        ("1e999999999", None),
        ("1e-999999999", None),
        ("1e998", "kWh"),
        ("1e31", None),
        ("1e28", "kWh"),
        ("1e-31", None),
        ("0.00000000000000000000000000001234567890123456789012345678901234567", None),
    ],
)
def test_readings_beyond_ten_to_the_30_or_64_characters_have_no_normalised_value(value: str, unit: str | None) -> None:
    """R-90: only plausible readings are normalised (and every normalised text fits its column)."""
    assert normalise_sample(value, unit=unit).normalised is None


def test_the_largest_and_smallest_plausible_readings_are_normalised() -> None:
    """R-90: up to 10^30 and down to 10^-30 after the unit."""
    assert normalise_sample("1e30").normalised == "1" + "0" * 30
    assert normalise_sample("1e-33", unit="kWh").normalised == "0." + "0" * 29 + "1"
    assert normalise_sample("0e999999").normalised == "0"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e308, 5e-324])
def test_non_finite_201_numbers_have_no_normalised_value(value: float) -> None:
    """R-90 for 2.0.1 numbers."""
    assert normalise_sample(value).normalised is None


def test_an_absurd_multiplier_gives_no_normalised_value() -> None:
    """R-90: value x 10^multiplier, bounded so that the result is a plausible reading."""
    assert normalise_sample(1.0, multiplier=99).normalised is None
    assert normalise_sample(1.0, multiplier=-99).normalised is None


# -- R-91 defaults and signed data ---------------------------------------------------------------


def test_a_bare_value_is_an_energy_register_reading_in_wh_with_the_ocpp_defaults() -> None:
    """R-91 and §8.1: measurand EAIR, unit Wh, context Sample.Periodic, location Outlet, format Raw."""
    assert normalise_sample("2114135.6") == Sample(
        value="2114135.6",
        measurand=EAIR,
        phase=None,
        unit="Wh",
        context="Sample.Periodic",
        location="Outlet",
        format="Raw",
        normalised="2114135.6",
    )


@pytest.mark.parametrize(
    ("measurand", "unit"),
    [
        ("Energy.Active.Import.Register", "Wh"),
        ("Energy.Active.Export.Register", "Wh"),
        ("Energy.Active.Import.Interval", "Wh"),
        ("Energy.Active.Net", "Wh"),
        ("Energy.Reactive.Import.Register", "varh"),
        ("Power.Active.Import", "W"),
        ("Power.Active.Export", "W"),
        ("Power.Offered", "W"),
        ("Power.Reactive.Import", "var"),
        ("Power.Factor", None),
        ("Current.Import", "A"),
        ("Current.Offered", "A"),
        ("Voltage", "V"),
        ("SoC", "Percent"),
        ("Temperature", "Celsius"),
        ("Frequency", None),
        ("RPM", None),
    ],
)
def test_a_missing_unit_is_the_unit_of_the_measurand(measurand: str, unit: str | None) -> None:
    """R-91: for energy a missing unit means Wh; other measurands have their own SI unit."""
    assert default_unit(measurand) == unit
    assert normalise_sample("1", measurand=measurand).unit == unit


def test_given_fields_are_kept_as_given() -> None:
    """§8.1: phase, context, location and format pass through; the phase is never rewritten."""
    sample = normalise_sample(
        "230", measurand="Voltage", phase="L1-N", context="Sample.Clock", location="Inlet", format="Raw"
    )
    assert (sample.phase, sample.context, sample.location, sample.format) == ("L1-N", "Sample.Clock", "Inlet", "Raw")


def test_keba_signed_samples_are_evidence_only() -> None:
    """R-91: Keba P30 sends 2114135.6 (no unit, Wh) and an OCMF signed sample 2114.1356 (kWh, no unit)."""
    begin = normalise_sample(2114135.6, context="Transaction.Begin")
    signed = normalise_sample(2114.1356, context="Transaction.Begin", signed=True)
    assert begin.normalised == "2114135.6" and is_numeric(begin)
    assert (signed.value, signed.format, signed.normalised) == ("2114.1356", "SignedData", None)
    assert not is_numeric(signed)
    assert register_reading([signed, begin]) == Decimal("2114135.6")


def test_a_16_signed_data_sample_has_no_normalised_value() -> None:
    """R-91: format = SignedData is ignored for numeric aggregation."""
    sample = normalise_sample("3A4F00BB", format="SignedData")
    assert sample.normalised is None and sample.value == "3A4F00BB"
    assert register_reading([sample]) is None


def test_a_register_beyond_a_terawatt_hour_is_no_reading() -> None:
    """R-92 bounded: 10^25 Wh parses, but would overflow the 64-bit Wh columns of registers and rollups."""
    assert register_reading([normalise_sample("999999999999")]) == Decimal("999999999999")
    assert register_reading([normalise_sample("1e25", unit="kWh")]) is None
    assert (
        register_reading([normalise_sample(value, phase=phase) for value, phase in [("6e11", "L1"), ("6e11", "L2")]])
        is None
    )


# -- R-92 location and phase ---------------------------------------------------------------------


def eair(value: str, phase: str | None = None, location: str | None = None, unit: str | None = None) -> Sample:
    """An EAIR sample."""
    return normalise_sample(value, phase=phase, location=location, unit=unit)


def test_the_phase_less_register_wins_over_per_phase_values() -> None:
    """R-92: for EAIR, use the phase-less value."""
    samples = [eair("100", "L1"), eair("100", "L2"), eair("100", "L3"), eair("305")]
    assert register_reading(samples) == Decimal("305")


def test_per_phase_registers_are_summed_when_no_total_exists() -> None:
    """R-92: if only per-phase EAIR exists, sum L1+L2+L3."""
    assert register_reading([eair("1000", "L1"), eair("2000", "L2"), eair("3000", "L3")]) == Decimal("6000")
    assert register_reading([eair("1", "L1-N", unit="kWh"), eair("2", "L2-N", unit="kWh")]) == Decimal("3000")


def test_a_single_l1_register_is_the_total() -> None:
    """R-92: if only a single L1 EAIR exists, treat it as the total (Home Assistant's rule)."""
    assert register_reading([eair("4242", "L1")]) == Decimal("4242")


def test_the_outlet_register_is_preferred_over_the_inlet() -> None:
    """R-92: prefer location = Outlet for EV energy; Inlet is the grid side."""
    assert register_reading([eair("9000", location="Inlet"), eair("5000")]) == Decimal("5000")
    assert register_reading([eair("9000", location="Inlet")]) == Decimal("9000")


def test_a_register_in_kwh_is_read_in_wh_and_other_measurands_are_ignored() -> None:
    """R-90 + R-92."""
    power = normalise_sample("7.4", measurand="Power.Active.Import", unit="kW")
    assert register_reading([power, eair("1.234", unit="kWh")]) == Decimal("1234")
    assert register_reading([power]) is None


def test_register_readings_round_half_up_to_whole_wh() -> None:
    """DESIGN wire details: energy in integer Wh, rounded half-up."""
    assert register_wh(Decimal("2114135.5")) == 2114136
    assert register_wh(Decimal("2114135.4")) == 2114135
    assert register_wh(Decimal("0.5")) == 1


def test_phase_values_map_line_to_neutral_and_ignore_line_to_line_and_neutral() -> None:
    """R-92: Voltage comes as Lx-N; line-to-line values are ignored; Current.Import per phase."""
    volts = [
        normalise_sample(v, measurand="Voltage", phase=p)
        for v, p in [("400", "L1-L2"), ("230.1", "L1-N"), ("231", "L2-N"), ("229.5", "L3-N"), ("1", "N")]
    ]
    assert phase_values(volts, "Voltage") == {"L1": Decimal("230.1"), "L2": Decimal("231"), "L3": Decimal("229.5")}
    amps = [normalise_sample(v, measurand="Current.Import", phase=p) for v, p in [("16", "L1"), ("15.9", "L2")]]
    assert phase_values(amps, "Current.Import") == {"L1": Decimal("16"), "L2": Decimal("15.9")}
    assert phase_values(amps, "Voltage") == {}


# -- R-94 timestamps -----------------------------------------------------------------------------

ARRIVAL = datetime(2025, 3, 31, 12, 0, 0)


def test_a_meter_value_without_a_timestamp_takes_the_arrival_time() -> None:
    """R-94: if a MeterValue has no timestamp, use the arrival time."""
    assert frame_timestamp(None, ARRIVAL) == ARRIVAL


def test_timestamps_with_an_offset_become_naive_utc() -> None:
    """R-94: use the sample's timestamp (charger clock), stored as UTC."""
    local = datetime(2025, 3, 31, 13, 30, tzinfo=timezone(timedelta(hours=2)))
    assert frame_timestamp(local, ARRIVAL) == datetime(2025, 3, 31, 11, 30)
    assert frame_timestamp(datetime(2025, 3, 31, 12, 1, tzinfo=UTC), ARRIVAL) == datetime(2025, 3, 31, 12, 1)


def test_late_timestamps_are_kept_and_more_than_five_minutes_ahead_is_refused() -> None:
    """R-94 (Decision): reject timestamps more than 5 min in the future; keep late ones."""
    assert frame_timestamp(ARRIVAL - timedelta(days=3), ARRIVAL) == ARRIVAL - timedelta(days=3)
    assert frame_timestamp(ARRIVAL + timedelta(minutes=5), ARRIVAL) == ARRIVAL + timedelta(minutes=5)
    with pytest.raises(FutureTimestampError):
        frame_timestamp(ARRIVAL + timedelta(minutes=5, seconds=1), ARRIVAL)


# -- R-95 ranking, packing and ids ---------------------------------------------------------------


def test_contexts_rank_end_over_periodic_over_clock_over_others() -> None:
    """R-95: Transaction.End > Sample.Periodic > Sample.Clock > others (Transaction.Begin among them)."""
    ranks = [context_priority(c) for c in ("Transaction.End", "Sample.Periodic", "Sample.Clock", "Transaction.Begin")]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == 4
    assert context_priority(None) == context_priority("Sample.Periodic")
    assert context_priority("Trigger") == context_priority("Transaction.Begin")


def test_packed_samples_round_trip_and_leave_defaults_out() -> None:
    """DESIGN: one row per frame with its samples packed; a default EAIR sample packs as [value, normalised]."""
    samples = [
        normalise_sample("5133841.000"),
        normalise_sample("7.4", measurand="Power.Active.Import", unit="kW"),
        normalise_sample("16.1", measurand="Current.Import", phase="L2", context="Sample.Clock"),
        normalise_sample("21", measurand="Temperature", location="Body"),
        normalise_sample("oops", measurand="SoC"),
        normalise_sample("3A4F", format="SignedData", context="Transaction.End"),
    ]
    packed = pack_samples(samples)
    assert unpack_samples(packed) == samples
    assert unpack_samples(packed.encode()) == samples
    assert packed.startswith('[["5133841.000","5133841"],["7.4","7400","Power.Active.Import",null,"kW"],')
    assert pack_samples([]) == "[]" and unpack_samples("[]") == []


def test_a_sample_id_is_the_frame_id_times_1000_plus_its_position() -> None:
    """DESIGN: a sample's id is frame_id * 1000 + position, stable."""
    assert sample_id(7, 0) == 7000
    assert sample_id(7, 3) == 7003
    assert sample_id(123456, 999) == 123456999


@given(st.from_regex(r"[+-]?[0-9]{1,15}(\.[0-9]{0,15})?", fullmatch=True), st.sampled_from(["A", "kWh", "mA"]))
def test_any_decimal_text_normalises_to_the_same_number_scaled_by_its_unit(value: str, unit: str) -> None:
    """R-90 for every plain decimal string: the exact value, times 1000 for k*, divided by 1000 for m*."""
    scale = {"A": Decimal(1), "kWh": Decimal(1000), "mA": Decimal("0.001")}[unit]
    normalised = normalise_sample(value, measurand="Current.Import", unit=unit).normalised
    assert normalised is not None and "e" not in normalised.lower()
    with localcontext(prec=80):  # exact, as the code computes; the default 28 digits would round
        assert Decimal(normalised) == Decimal(value) * scale
    assert normalised == decimal_text(Decimal(normalised))  # canonical: no trailing zeros, no "-0"


_SAMPLES = st.builds(
    normalise_sample,
    st.text(max_size=20),
    measurand=st.sampled_from([None, EAIR, "Power.Active.Import", "Current.Import", "SoC", "Frequency"]),
    phase=st.sampled_from([None, "L1", "L2-N", "L1-L2", "N"]),
    unit=st.sampled_from([None, "Wh", "kWh", "W", "A", "Percent"]),
    context=st.sampled_from([None, "Sample.Periodic", "Transaction.Begin", "Trigger"]),
    location=st.sampled_from([None, "Outlet", "Inlet", "EV"]),
    format=st.sampled_from([None, "Raw", "SignedData"]),
)


@given(st.lists(_SAMPLES, max_size=12))
def test_any_normalised_samples_survive_packing(samples: list[Sample]) -> None:
    """DESIGN: samples packed per frame come back unchanged."""
    assert unpack_samples(pack_samples(samples)) == samples
