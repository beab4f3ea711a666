"""Energy per period: spec/smart-charging.md §8.3 (R-95..R-98) and every §8.6 vector, plus DST days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from voltline.domain.energy import (
    DEFAULT_MAX_POWER_W,
    MAX_SPREAD,
    Delta,
    Reading,
    bucket_start,
    energy_deltas,
    frame_reading,
    is_outlier,
    kwh_text,
    local_buckets,
    max_power_w,
    ordered,
    rollup,
    spread,
    sum_into,
    to_local,
    walk,
)
from voltline.domain.meter_values import normalise_sample

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
KW22 = 22_000


def at(text: str) -> datetime:
    """A naive UTC moment on 2025-03-31 from `HH:MM[:SS]`."""
    return datetime.fromisoformat(f"2025-03-31T{text}")


# -- §8.6 vectors -------------------------------------------------------------------------------


def test_register_sequence_with_a_reset_gives_zero_then_the_new_delta() -> None:
    """§8.6 / R-96: register 5000, 20, 120 gives deltas [0 (reset), 100]."""
    assert energy_deltas([5000, 20, 120]) == [0, 100]
    chain = walk([Reading(at("10:00"), 5000), Reading(at("10:01"), 20), Reading(at("10:02"), 120)])
    assert [(d.wh, d.reset) for d in chain.deltas] == [(0, True), (100, False)]
    assert chain.resets == [Reading(at("10:01"), 20)]
    assert chain.baseline == Reading(at("10:02"), 120)


def test_a_drop_of_one_wh_moves_the_baseline_without_a_reset_flag() -> None:
    """R-96: a reset is flagged only when E_i < E_(i-1) - 1 Wh."""
    chain = walk([Reading(at("10:00"), 1000), Reading(at("10:01"), 999), Reading(at("10:02"), 1009)])
    assert [(d.wh, d.reset) for d in chain.deltas] == [(0, False), (10, False)]
    assert chain.resets == []


def test_out_of_order_arrival_is_sorted_before_the_deltas() -> None:
    """§8.6 / R-94: 10:01 -> 1200 then 10:00 -> 1100 after 09:59 -> 1000 gives [100, 100]."""
    arrivals = [Reading(at("09:59"), 1000, order=0), Reading(at("10:01"), 1200, order=1)]
    arrivals.append(Reading(at("10:00"), 1100, order=2))
    assert [d.wh for d in walk(arrivals).deltas] == [100, 100]


def test_a_jump_implying_59_9_mw_on_a_22_kw_connector_is_an_outlier_and_skipped() -> None:
    """§8.6 / R-97: 1000 Wh at 10:00:00 and 1_000_000 at 10:01:00 on 22 kW; the next delta is from 1000."""
    spike = Reading(at("10:01:00"), 1_000_000)
    chain = walk([Reading(at("10:00:00"), 1000), spike, Reading(at("10:02:00"), 1300)], max_power=KW22)
    assert chain.outliers == [spike]
    assert [(d.start, d.end, d.wh) for d in chain.deltas] == [(at("10:00:00"), at("10:02:00"), 300)]


def test_the_outlier_limit_is_one_and_a_half_times_the_connector_power() -> None:
    """R-97: 22 kW x 1.5 = 33 kW; in 60 s that is exactly 550 Wh (allowed), 551 Wh is not."""
    start = Reading(at("10:00"), 0)
    assert not is_outlier(start, Reading(at("10:01"), 550), KW22)
    assert is_outlier(start, Reading(at("10:01"), 551), KW22)
    assert not is_outlier(start, Reading(at("10:01"), -5), KW22)


def test_thirty_seconds_of_100_wh_is_12_kw_and_not_an_outlier_on_22_kw() -> None:
    """§8.6: 10:00:00 -> 1000 Wh and 10:00:30 -> 1100 Wh give 100 Wh (12 kW, under 33 kW)."""
    chain = walk([Reading(at("10:00:00"), 1000), Reading(at("10:00:30"), 1100)], max_power=KW22)
    assert [d.wh for d in chain.deltas] == [100]
    assert chain.outliers == []


def test_ten_minutes_of_500_wh_spread_over_two_quarter_hours() -> None:
    """§8.6 / R-98: 10:10 -> 1000 Wh and 10:20 -> 1500 Wh: 10:00-10:15 gets 250, 10:15-10:30 gets 250."""
    chain = walk([Reading(at("10:10"), 1000), Reading(at("10:20"), 1500)])
    assert rollup(chain.deltas) == {at("10:00"): 250, at("10:15"): 250}


def test_a_kwh_sample_gives_wh_for_1_6_and_2_0_1() -> None:
    """§8.6 / R-90: "1.234" kWh and 2.0.1 1.234 kWh (multiplier 0) both read as 1234 Wh."""
    v16 = frame_reading([normalise_sample("1.234", unit="kWh")], at("10:00"))
    v201 = frame_reading([normalise_sample(1.234, unit="kWh", multiplier=0)], at("10:00"))
    assert v16 is not None and v16.wh == 1234
    assert v201 is not None and v201.wh == 1234


def test_a_2_0_1_multiplier_scales_the_value() -> None:
    """§8.6 / R-90: 2.5 W with multiplier 3 is 2500 W; 1.5 Wh with multiplier 3 is a 1500 Wh register."""
    assert normalise_sample(2.5, measurand="Power.Active.Import", unit="W", multiplier=3).normalised == "2500"
    reading = frame_reading([normalise_sample(1.5, unit="Wh", multiplier=3)], at("10:00"))
    assert reading is not None and reading.wh == 1500


# -- register selection ----------------------------------------------------------------


def test_signed_data_and_inlet_are_ignored_and_outlet_phase_less_wins() -> None:
    """R-91/R-92: signed meter data is evidence only; Outlet over Inlet; the phase-less value first."""
    samples = [
        normalise_sample("2114.1356", signed=True),
        normalise_sample("9000", location="Inlet"),
        normalise_sample("300", phase="L1"),
        normalise_sample("2114135.6"),
    ]
    reading = frame_reading(samples, at("10:00"))
    assert reading is not None and reading.wh == 2114136


def test_only_per_phase_registers_are_summed() -> None:
    """R-92: with only L1..L3 EAIR the total is their sum."""
    samples = [normalise_sample(v, phase=p) for v, p in (("100", "L1"), ("200", "L2"), ("300.4", "L3"))]
    reading = frame_reading([*samples, normalise_sample("16", measurand="Current.Import", phase="L1")], at("10:00"))
    assert reading is not None and reading.wh == 600


def test_a_frame_without_a_numeric_register_has_no_reading() -> None:
    """R-91: power alone, or only signed data, gives no register reading."""
    assert frame_reading([normalise_sample("7200", measurand="Power.Active.Import")], at("10:00")) is None
    assert frame_reading([normalise_sample("1", signed=True)], at("10:00")) is None


def test_duplicate_timestamps_keep_the_higher_context_then_the_later_arrival() -> None:
    """R-95: Transaction.End > Sample.Periodic > Sample.Clock; equal rank: the later arrival."""
    end = frame_reading([normalise_sample("500", context="Transaction.End")], at("10:00"), order=0)
    clock = frame_reading([normalise_sample("400", context="Sample.Clock")], at("10:00"), order=1)
    assert end is not None and clock is not None
    assert ordered([end, clock]) == [end]
    first, second = Reading(at("10:00"), 1, order=0), Reading(at("10:00"), 2, order=1)
    assert ordered([second, first]) == [second]


def test_readings_at_or_before_the_baseline_are_ignored() -> None:
    """The writer's incremental walk starts from the last good reading."""
    chain = walk(
        [Reading(at("09:00"), 10), Reading(at("10:00"), 50), Reading(at("10:05"), 80)], Reading(at("10:00"), 60)
    )
    assert [(d.start, d.wh) for d in chain.deltas] == [(at("10:00"), 20)]


def test_max_power_from_the_connector_rating() -> None:
    """R-97: 32 A x 230 V x 3 phases; a voltage overrides 230 V; unknown falls back to the default."""
    assert max_power_w(32, None, 3) == 22_080
    assert max_power_w(16, 400, 1) == 6_400
    assert max_power_w(None, None, 3) == DEFAULT_MAX_POWER_W


# -- R-98 spreading -------------------------------------------------------------------------------


def test_a_gap_loses_no_energy_and_is_spread_by_time() -> None:
    """R-98: 09:50 -> 10:35 with 900 Wh: 10 min, 15, 15, 5 of 45 -> 200, 300, 300, 100."""
    shares = dict(spread(Delta(at("09:50"), at("10:35"), 900)))
    assert shares == {at("09:45"): 200, at("10:00"): 300, at("10:15"): 300, at("10:30"): 100}


def test_uneven_shares_round_half_up_cumulatively_and_add_up() -> None:
    """R-98 in whole Wh: 10 Wh over three equal thirds of 10:00-10:45 -> 3, 4 (6.67 -> 7), 3."""
    assert [wh for _, wh in spread(Delta(at("10:00"), at("10:45"), 10))] == [3, 4, 3]


@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=3 * 86_400),
    st.integers(min_value=1, max_value=3 * 86_400),
)
def test_shares_add_up_exactly_and_stay_within_one_wh_of_proportional(wh: int, offset: int, length: int) -> None:
    """R-98: the shares sum to the delta, each within 1 Wh of delta x overlap / duration."""
    start = at("00:00") + timedelta(seconds=offset)
    delta = Delta(start, start + timedelta(seconds=length), wh)
    shares = list(spread(delta))
    assert sum(share for _, share in shares) == wh
    for bucket, share in shares:
        overlap = min(bucket + timedelta(minutes=15), delta.end) - max(bucket, delta.start)
        assert abs(share - Fraction(wh) * Fraction(overlap.total_seconds()) / length) <= 1


def test_an_interval_of_centuries_is_spread_over_its_last_quarter_only() -> None:
    """R-98 bounded: a reading stamped in year 1 and one now must not make 70 million buckets."""
    delta = Delta(datetime(1, 1, 1), at("10:00"), 8_832)
    shares = list(spread(delta))
    assert sum(share for _, share in shares) == 8_832
    assert len(shares) == MAX_SPREAD // timedelta(minutes=15) == 8_832
    assert shares[0] == (at("10:00") - MAX_SPREAD, 1)


def test_bucket_start_is_the_quarter_hour() -> None:
    assert bucket_start(at("10:29:59.999")) == at("10:15")


# -- local buckets: DST days ----------------------------------------------------------------------


def hourly(day: date) -> list[datetime]:
    return local_buckets(day, day, AMSTERDAM, "hour")


def test_spring_forward_day_in_amsterdam_has_23_hours() -> None:
    """R-98: buckets aligned in the site timezone; 2025-03-30 skips 02:00-03:00 CEST."""
    bounds = hourly(date(2025, 3, 30))
    assert len(bounds) - 1 == 23
    assert (bounds[0], bounds[-1]) == (datetime(2025, 3, 29, 23), datetime(2025, 3, 30, 22))
    labels = [to_local(b, AMSTERDAM).isoformat() for b in bounds[1:4]]
    assert labels == ["2025-03-30T01:00:00+01:00", "2025-03-30T03:00:00+02:00", "2025-03-30T04:00:00+02:00"]


def test_fall_back_day_in_amsterdam_has_25_hours_with_02_00_twice() -> None:
    """R-98: 2025-10-26 repeats 02:00-03:00 (first +02:00, then +01:00)."""
    bounds = hourly(date(2025, 10, 26))
    assert len(bounds) - 1 == 25
    labels = [to_local(b, AMSTERDAM).isoformat() for b in bounds[2:5]]
    assert labels == ["2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00", "2025-10-26T03:00:00+01:00"]


def test_a_steady_kilowatt_over_the_spring_day_sums_to_23_kwh() -> None:
    """Hand computation: +1000 Wh every UTC hour; 23 local hours of 1000 Wh, the local day 23000 Wh."""
    start = datetime(2025, 3, 29, 21)
    readings = [Reading(start + timedelta(hours=n), 1000 * n) for n in range(30)]
    buckets = rollup(walk(readings).deltas)
    day = date(2025, 3, 30)
    assert sum_into(hourly(day), buckets) == [1000] * 23
    assert sum_into(local_buckets(day, day, AMSTERDAM, "day"), buckets) == [23000]


def test_a_steady_kilowatt_over_the_fall_day_sums_to_25_kwh() -> None:
    """Hand computation: 25 local hours of 1000 Wh on 2025-10-26, the day 25000 Wh, its neighbours 24000."""
    start = datetime(2025, 10, 24, 20)
    readings = [Reading(start + timedelta(hours=n), 1000 * n) for n in range(80)]
    buckets = rollup(walk(readings).deltas)
    assert sum_into(hourly(date(2025, 10, 26)), buckets) == [1000] * 25
    days = local_buckets(date(2025, 10, 25), date(2025, 10, 27), AMSTERDAM, "day")
    assert sum_into(days, buckets) == [24000, 25000, 24000]


def test_fifteen_minute_buckets_of_a_local_day_and_a_half_hour_zone() -> None:
    """96 quarter hours on a normal day, 92 on the spring day; Asia/Kolkata hours start at :30 UTC."""
    assert len(local_buckets(date(2025, 3, 31), date(2025, 3, 31), AMSTERDAM, "15m")) - 1 == 96
    assert len(local_buckets(date(2025, 3, 30), date(2025, 3, 30), AMSTERDAM, "15m")) - 1 == 92
    kolkata = local_buckets(date(2025, 3, 31), date(2025, 3, 31), ZoneInfo("Asia/Kolkata"), "hour")
    assert len(kolkata) - 1 == 24
    assert kolkata[1] == datetime(2025, 3, 30, 19, 30)


def test_kwh_text_has_three_decimals_from_whole_wh() -> None:
    assert [kwh_text(wh) for wh in (0, 1, 1250, 9145, 123456789)] == ["0.000", "0.001", "1.250", "9.145", "123456.789"]
