"""Live usage of a connector: spec/volttime-api.md A12, spec/smart-charging.md R-100-R-102.

Samples arrive the way chargers send them: MeterValues over a real OCPP 1.6 socket (a raw
`websockets` peer), stored by the batched writer; the usage is read back through the REST API.
Staleness is tested with samples stamped in the past (the server's clock is the real one).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.sites import make_site
from tests.support.stations import Station, current, make_station, power, send, stamp, utc_now
from voltline.services.accounts import Account

NOT_FOUND = {"message": "Not found."}
EAIR = "Energy.Active.Import.Register"


@pytest.fixture
def station(server: LiveServer, api: httpx.Client, account: Account) -> Station:
    return make_station(server, api, account)


def usage(api: httpx.Client, url: str) -> dict[str, Any]:
    response = api.get(url)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- shape ----------------------------------------------------------------------------------------------


def test_three_phase_usage_is_unwrapped_with_strings_and_a_millisecond_timestamp(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    """spec A12 / C4 and R-101: {timestamp, L1, L2, L3, kW}, not wrapped in data; kW from Power.Active.Import."""
    at = utc_now()
    samples = [current("L1", "15.9"), current("L2", "16.0"), current("L3", "15.8"), power("11.04", "kW")]
    send(server, station, [(1, at, samples)])
    body = usage(api, station.site_url(station.connectors[1]["id"]))
    assert list(body) == ["timestamp", "L1", "L2", "L3", "kW"]
    assert body == {"timestamp": stamp(at), "L1": "15.9", "L2": "16", "L3": "15.8", "kW": "11.04"}


def test_the_connector_is_named_by_id_uuid_or_ocpp_number_and_all_agree(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    send(server, station, [(2, utc_now(), [current("L1", "6.1"), power("1403")])])
    by_id = usage(api, station.site_url(station.connectors[2]["id"]))
    by_uuid = usage(api, station.site_url(station.connectors[2]["uuid"]))
    by_number = usage(api, station.charger_url(2))
    by_charger_uuid = usage(api, station.charger_url(2, station.charger["uuid"]))
    assert by_id == by_uuid == by_number == by_charger_uuid
    assert {k: by_id[k] for k in ("L1", "L2", "L3", "kW")} == {"L1": "6.1", "L2": "-", "L3": "-", "kW": "1.40"}
    assert usage(api, station.charger_url(1))["L1"] == "-"


def test_without_a_power_measurand_three_times_16_amps_is_11_04_kw(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    """spec/smart-charging.md §8.6: L1 = L2 = L3 = 16 A with no power measurand gives kW "11.04" (R-100 4)."""
    send(server, station, [(1, utc_now(), [current("L1", "16"), current("L2", "16"), current("L3", "16")])])
    assert usage(api, station.charger_url(1))["kW"] == "11.04"


def test_voltage_times_current_when_voltages_are_reported(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    """R-100 (3): Σ V*I with Lx-N voltages: 10 A at 240 V = 2400 W."""
    voltage = {"value": "240", "measurand": "Voltage", "phase": "L1-N", "unit": "V"}
    send(server, station, [(1, utc_now(), [current("L1", "10"), voltage])])
    assert usage(api, station.charger_url(1))["kW"] == "2.40"


def test_register_samples_alone_give_power_from_the_energy_delta(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    """§8.6: 1000 Wh then 1100 Wh 30 s later is 12000 W (R-100 5), read from the stored frames."""
    first = utc_now() - timedelta(seconds=30)
    frames = [
        (1, first, [{"value": "1000", "measurand": EAIR, "unit": "Wh"}]),
        (1, first + timedelta(seconds=30), [{"value": "1.1", "measurand": EAIR, "unit": "kWh"}]),
    ]
    send(server, station, frames)
    body = usage(api, station.charger_url(1))
    assert body == {"timestamp": stamp(first + timedelta(seconds=30)), "L1": "-", "L2": "-", "L3": "-", "kW": "12.00"}


def test_a_connector_that_never_reported_shows_dashes_and_no_timestamp(api: httpx.Client, station: Station) -> None:
    """docs/api.md decision: no data at all gives timestamp null, every phase "-", kW "0.00"."""
    assert usage(api, station.charger_url(1)) == {"timestamp": None, "L1": "-", "L2": "-", "L3": "-", "kW": "0.00"}


# -- staleness --------------------------------------------------------------------------------------------


def test_old_samples_without_a_transaction_read_zero(server: LiveServer, api: httpx.Client, station: Station) -> None:
    """R-102: no open transaction, latest sample older than max(60 s + 10 s, 60 s): "0" for reported phases."""
    old = utc_now() - timedelta(minutes=5)
    send(server, station, [(1, old, [current("L1", "6.1"), current("L2", "6.2"), power("2800")])])
    before = datetime.now(UTC).replace(tzinfo=None)
    body = usage(api, station.charger_url(1))
    assert {k: body[k] for k in ("L1", "L2", "L3", "kW")} == {"L1": "0", "L2": "0", "L3": "-", "kW": "0.00"}
    read_at = datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert read_at >= before - timedelta(seconds=1)


def test_samples_just_inside_the_limit_are_still_live(server: LiveServer, api: httpx.Client, station: Station) -> None:
    """R-102: 40 s old is within the 70 s limit of a 60 s sample interval."""
    at = utc_now() - timedelta(seconds=40)
    send(server, station, [(1, at, [current("L1", "6.1"), power("1400")])])
    assert usage(api, station.charger_url(1)) == {
        "timestamp": stamp(at),
        "L1": "6.1",
        "L2": "-",
        "L3": "-",
        "kW": "1.40",
    }


def test_old_samples_during_a_transaction_keep_their_values_and_time(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    """R-102: with an open transaction, the last values and their timestamp, so the client sees the age."""
    old = utc_now() - timedelta(minutes=4)
    send(server, station, [(1, old, [current("L1", "16"), current("L2", "16"), current("L3", "16")])], start=1)
    assert usage(api, station.charger_url(1)) == {
        "timestamp": stamp(old),
        "L1": "16",
        "L2": "16",
        "L3": "16",
        "kW": "11.04",
    }


def test_after_the_transaction_stops_old_samples_read_zero(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    """R-102 (evcc zeroes on StopTransaction): once stopped, stale values are zeros."""
    old = utc_now() - timedelta(minutes=4)
    send(server, station, [(1, old, [current("L1", "16"), power("3680")])], start=1, stop=True)
    body = usage(api, station.charger_url(1))
    assert {k: body[k] for k in ("L1", "L2", "L3", "kW")} == {"L1": "0", "L2": "-", "L3": "-", "kW": "0.00"}


# -- lookups --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["3", "abc", "-1", "99999999999"])
def test_an_unknown_connector_number_is_a_404(api: httpx.Client, station: Station, number: str) -> None:
    response = api.get(station.charger_url(number))
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_connector_zero_is_the_charger_as_a_whole(server: LiveServer, api: httpx.Client, station: Station) -> None:
    """Connector 0 (no row of its own) reads the samples the charger sends for connectorId 0."""
    at = utc_now()
    samples = [{**current("L1", "20"), "location": "Inlet"}, {**current("L2", "-3"), "location": "Inlet"}]
    send(server, station, [(0, at, samples)])
    body = usage(api, station.charger_url(0))
    assert {k: body[k] for k in ("L1", "L2", "L3")} == {"L1": "20", "L2": "-3", "L3": "-"}


def test_a_connector_of_another_site_or_team_is_a_404(
    server: LiveServer, api: httpx.Client, account: Account, station: Station
) -> None:
    other_site = make_site(api, account)
    url = f"{station.base}/sites/{other_site['id']}/connectors/{station.connectors[1]['id']}/power-usage"
    assert api.get(url).status_code == 404
    stranger = server.account("Stranger")
    with server.client(stranger) as theirs:
        mine = f"/api/v2/teams/{stranger.team_id}/chargers/{station.charger['id']}/connectors/1/power-usage"
        assert (theirs.get(mine).status_code, theirs.get(mine).json()) == (404, NOT_FOUND)
        assert theirs.get(station.charger_url(1)).status_code == 403
