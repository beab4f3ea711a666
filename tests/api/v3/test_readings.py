"""v3 reads of a charger (spec volttime-v3 §3.7, §3.9, §3.11): latest meter values, transactions, meter values.

Meter values and sessions arrive over a real OCPP 1.6 socket (tests/support/stations.py) and are
read back over HTTP.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.api.v3.support import V3, get
from tests.conftest import LiveServer
from tests.support.stations import Station, current, make_station, power, send, stamp, utc_now
from voltline.services.accounts import Account


@pytest.fixture
def station(server: LiveServer, api: httpx.Client, account: Account) -> Station:
    return make_station(server, api, account)


def url(station: Station, tail: str) -> str:
    return f"{V3}/chargers/{station.charger['uuid']}/{tail}"


def test_latest_metervalue_is_the_newest_frame_in_ocpp_shape_with_defaults(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    """spec v3 §3.7 / §6.6: unwrapped, camelCase, values as strings, OCPP defaults written out."""
    assert get(api, url(station, "connectors/1/latest-metervalue")) == {"connectorId": 1, "meterValue": []}
    older, newer = utc_now() - timedelta(minutes=2), utc_now()
    send(server, station, [(1, older, [power("100")]), (1, newer, [{"value": "1234"}, current("L1", "6.1")])])
    body = get(api, url(station, "connectors/1/latest-metervalue"))
    assert body == {
        "connectorId": 1,
        "meterValue": [
            {
                "timestamp": newer.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
                "sampledValue": [
                    {
                        "value": "1234",
                        "context": "Sample.Periodic",
                        "format": "Raw",
                        "measurand": "Energy.Active.Import.Register",
                        "phase": None,
                        "location": "Outlet",
                        "unit": "Wh",
                    },
                    {
                        "value": "6.1",
                        "context": "Sample.Periodic",
                        "format": "Raw",
                        "measurand": "Current.Import",
                        "phase": "L1",
                        "location": "Outlet",
                        "unit": "A",
                    },
                ],
            }
        ],
    }
    assert api.get(url(station, "connectors/7/latest-metervalue")).status_code == 404


def test_transactions_are_newest_first_paged_filtered_and_named_by_voltlines_id(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    """spec v3 §3.9: `sort`, `limit`, `filter[status]`; DESIGN "v3 API": `id` is Voltline's id."""
    for _ in range(3):
        send(server, station, [], start=1, stop=True)
    send(server, station, [], start=2)  # still active
    listed = get(api, url(station, "transactions"))
    rows = listed["data"]
    assert len(rows) == 4 and listed["links"]["next"] is None
    assert [r["started_at"] for r in rows] == sorted((r["started_at"] for r in rows), reverse=True)
    assert rows[0]["stopped_at"] is None and rows[0]["connector"] == {"connector_id": 2}
    assert rows[0]["charger"] == {
        "uuid": station.charger["uuid"],
        "identity": station.charger["identity"],
        "reference": None,
    }
    v2 = get(api, f"{station.base}/chargers/{station.charger['id']}/transactions")["data"]
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in v2)
    finished = rows[1]
    assert finished["total_kwh"] == "0.10" and finished["is_valid"] is True and isinstance(finished["meter_stop"], int)
    oldest = get(api, url(station, "transactions"), sort="started_at")["data"]
    assert [r["id"] for r in oldest] == [r["id"] for r in rows][::-1]
    assert [r["id"] for r in get(api, url(station, "transactions"), **{"filter[status]": "active"})["data"]] == [
        rows[0]["id"]
    ]
    assert len(get(api, url(station, "transactions"), **{"filter[status]": "finished"})["data"]) == 3
    page1 = get(api, url(station, "transactions"), per_page=3)
    page2 = get(api, url(station, "transactions"), per_page=3, page=2)
    assert [r["id"] for r in page1["data"] + page2["data"]] == [r["id"] for r in rows]
    assert page1["links"]["next"] is not None and page2["links"]["next"] is None
    assert get(api, url(station, "transactions"), per_page=3, page=3)["data"] == []
    capped = get(api, url(station, "transactions"), per_page=1, limit=2, page=2)
    assert [r["id"] for r in capped["data"]] == [rows[1]["id"]] and capped["links"]["next"] is None
    bad = api.get(url(station, "transactions"), params={"filter[status]": "paused"})
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["filter[status]"]


def test_meter_values_are_a_length_aware_page_newest_first(
    server: LiveServer, api: httpx.Client, station: Station
) -> None:
    """spec v3 §3.11 / §1.3: `meta.last_page`, `meta.total`, `meta.links`; newest first by default."""
    base = utc_now() - timedelta(minutes=10)
    frames = [(1, base + timedelta(minutes=n), [power(str(100 * n))]) for n in range(3)]
    send(server, station, frames)
    window = {
        "date_from": (base - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S"),
        "date_to": (base + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S"),
    }
    first = get(api, url(station, "metervalues"), per_page=2, **window)
    assert [v["value"] for v in first["data"]] == ["200", "100"]
    assert first["meta"]["total"] == 3 and first["meta"]["last_page"] == 2 and first["meta"]["current_page"] == 1
    assert [link["label"] for link in first["meta"]["links"]] == ["&laquo; Previous", "1", "2", "Next &raquo;"]
    assert first["links"]["next"].endswith("page=2") and first["links"]["last"].endswith("page=2")
    second = get(api, url(station, "metervalues"), per_page=2, page=2, **window)
    assert [v["value"] for v in second["data"]] == ["0"] and second["links"]["next"] is None
    assert get(api, url(station, "metervalues"), per_page=2, page=3, **window)["data"] == []
    sample = first["data"][0]
    assert sample["charger_id"] == station.charger["id"] and sample["connector_id"] == 1
    assert sample["format"] == "Raw" and sample["measurand"] == "Power.Active.Import"
    assert sample["timestamp"] == stamp(base + timedelta(minutes=2)).replace("Z", "000Z")
    oldest = get(api, url(station, "metervalues"), order_by="asc", **window)["data"]
    assert [v["value"] for v in oldest] == ["0", "100", "200"]
    missing = api.get(url(station, "metervalues"), params={"date_from": window["date_from"]})
    assert missing.status_code == 422 and "date_to" in missing.json()["errors"]
