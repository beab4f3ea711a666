"""A charger's meter values: spec/volttime-api.md C2, §4 enums, and DESIGN (frames expanded, sample ids).

The samples are sent the way chargers send them: MeterValues over a real OCPP 1.6 socket (a
raw `websockets` peer), stored by the batched writer, read back through the REST API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import Raw, frame_rows, open_charger, run, team_charger
from tests.support.sites import make_site
from tests.support.transactions import get, listed
from voltline.api.meter_values import CONTEXTS, LOCATIONS, MEASURANDS, PHASES, UNITS
from voltline.services.accounts import Account
from voltline.store import chargers as charger_store

METER_VALUE_KEYS = [
    "id",
    "charger_connector_id",
    "connector_id",
    "transaction_id",
    "timestamp",
    "value",
    "context",
    "format",
    "measurand",
    "phase",
    "location",
    "unit",
]
NOT_FOUND = {"message": "Not found."}
DAY = {"date_from": "2025-03-31 00:00:00", "date_to": "2025-03-31 23:59:59"}
EAIR = "Energy.Active.Import.Register"

# (connector, with the transaction?, timestamp, sampled values) per MeterValues frame, oldest first.
FRAMES: list[tuple[int, bool, str, list[dict[str, str]]]] = [
    (
        1,
        True,
        "2025-03-31T12:00:00Z",
        [
            {"value": "1000", "measurand": EAIR, "unit": "Wh", "context": "Sample.Periodic", "location": "Outlet"},
            {"value": "7200.5", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "10.6", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            {"value": "230.10", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
        ],
    ),
    (
        1,
        True,
        "2025-03-31T12:01:00Z",
        [
            {"value": "1.5", "unit": "kWh"},
            {"value": "31.8", "measurand": "Current.Import", "phase": "L2", "unit": "A"},
            {"value": "55", "measurand": "SoC", "location": "EV", "unit": "Percent"},
        ],
    ),
    (
        0,
        False,
        "2025-03-31T12:02:00.250Z",
        [{"value": "25", "measurand": "Temperature", "unit": "Celsius", "location": "Body", "context": "Trigger"}],
    ),
    (
        2,
        False,
        "2025-03-31T12:03:00Z",
        [
            {
                "value": "0",
                "measurand": "Power.Active.Import",
                "unit": "kW",
                "context": "Sample.Clock",
                "location": "Inlet",
            }
        ],
    ),
]
# Sample positions (frame, position), newest first: the default order (timestamp desc, id desc).
NEWEST_FIRST = [(3, 0), (2, 0), (1, 2), (1, 1), (1, 0), (0, 3), (0, 2), (0, 1), (0, 0)]


@dataclass
class Metered:
    """A charger of the account's team that sent FRAMES, and what the store made of them."""

    account: Account
    charger: dict[str, Any]
    transaction_id: int
    frame_ids: list[int]
    connector_ids: dict[int, int]

    @property
    def url(self) -> str:
        return f"/api/v2/teams/{self.account.team_id}/chargers/{self.charger['id']}/metervalues"

    def sample_id(self, frame: int, position: int) -> int:
        """DESIGN: a sample's id is frame_id * 1000 + position."""
        return self.frame_ids[frame] * 1000 + position

    def ids(self, positions: list[tuple[int, int]]) -> list[int]:
        return [self.sample_id(frame, position) for frame, position in positions]


def send_frames(server: LiveServer, identity: str, frames: list[tuple[int, bool, str, list[dict[str, str]]]]) -> int:
    """Boot, report connectors 1 and 2, start a transaction on 1 and send the frames; the transaction id."""

    async def scenario() -> int:
        async with open_charger(server, identity) as ws:
            peer = Raw(ws)
            for number in (1, 2):
                status = {"connectorId": number, "errorCode": "NoError", "status": "Available"}
                await peer.result("StatusNotification", status)
            start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 900, "timestamp": "2025-03-31T11:59:00Z"}
            transaction_id = int((await peer.result("StartTransaction", start))["transactionId"])
            for connector, in_transaction, at, sampled in frames:
                payload: dict[str, Any] = {
                    "connectorId": connector,
                    "meterValue": [{"timestamp": at, "sampledValue": sampled}],
                }
                if in_transaction:
                    payload["transactionId"] = transaction_id
                await peer.result("MeterValues", payload)
            return transaction_id

    transaction_id: int = run(scenario())
    server.run(server.runtime.writer.flush)
    return transaction_id


def make_metered(server: LiveServer, api: httpx.Client, account: Account) -> Metered:
    """A fresh team charger that sent FRAMES."""
    charger = team_charger(api, account)
    transaction_id = send_frames(server, charger["identity"], FRAMES)
    frame_ids = [row["id"] for row in frame_rows(server, charger["id"])]
    connectors = api.get(f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}").json()["data"]["connectors"]
    return Metered(account, charger, transaction_id, frame_ids, {c["connector_id"]: c["id"] for c in connectors})


@pytest.fixture
def metered(server: LiveServer, api: httpx.Client, account: Account) -> Metered:
    return make_metered(server, api, account)


def ids_of(response: httpx.Response) -> list[int]:
    return [item["id"] for item in listed(response)]


# -- the meter value object and its order ---------------------------------------------------------------


def test_meter_values_expand_every_sample_newest_first(api: httpx.Client, metered: Metered) -> None:
    """spec C2 and DESIGN: `{"data": [...]}` of samples, by (timestamp, id) descending by default."""
    body = api.get(metered.url, params=DAY).json()
    assert list(body) == ["data"]
    assert [item["id"] for item in body["data"]] == metered.ids(NEWEST_FIRST)
    assert all(list(item) == METER_VALUE_KEYS for item in body["data"])


def test_a_meter_value_shows_the_charger_text_and_its_frame(api: httpx.Client, metered: Metered) -> None:
    """spec C2: value is the raw string; connector_id the OCPP number, charger_connector_id the connector's id."""
    by_id = {item["id"]: item for item in listed(api.get(metered.url, params=DAY))}
    assert by_id[metered.sample_id(1, 0)] == {
        "id": metered.sample_id(1, 0),
        "charger_connector_id": metered.connector_ids[1],
        "connector_id": 1,
        "transaction_id": metered.transaction_id,
        "timestamp": "2025-03-31T12:01:00.000000Z",
        "value": "1.5",
        "context": "Sample.Periodic",
        "format": "Raw",
        "measurand": EAIR,
        "phase": None,
        "location": "Outlet",
        "unit": "kWh",
    }
    assert by_id[metered.sample_id(0, 3)]["value"] == "230.10"
    assert by_id[metered.sample_id(2, 0)] == {
        "id": metered.sample_id(2, 0),
        "charger_connector_id": None,
        "connector_id": 0,
        "transaction_id": None,
        "timestamp": "2025-03-31T12:02:00.250000Z",
        "value": "25",
        "context": "Trigger",
        "format": "Raw",
        "measurand": "Temperature",
        "phase": None,
        "location": "Body",
        "unit": "Celsius",
    }
    assert by_id[metered.sample_id(3, 0)]["charger_connector_id"] == metered.connector_ids[2]


def test_meter_values_order_ascending_and_limit_counts_samples(api: httpx.Client, metered: Metered) -> None:
    """spec C2: order_by asc|desc and limit apply to the expanded samples, not to frames."""
    oldest_first = NEWEST_FIRST[::-1]
    assert ids_of(api.get(metered.url, params={**DAY, "order_by": "asc"})) == metered.ids(oldest_first)
    assert ids_of(api.get(metered.url, params={**DAY, "limit": 2})) == metered.ids(NEWEST_FIRST[:2])
    assert ids_of(api.get(metered.url, params={**DAY, "limit": "3", "order_by": "asc"})) == metered.ids(
        oldest_first[:3]
    )
    assert ids_of(api.get(metered.url, params={**DAY, "limit": 10000})) == metered.ids(NEWEST_FIRST)


def test_meter_values_keep_to_the_date_range_inclusively(api: httpx.Client, metered: Metered) -> None:
    """DESIGN: date_from/date_to are UTC `Y-m-d H:i:s`; both ends are included."""
    window = {"date_from": "2025-03-31 12:01:00", "date_to": "2025-03-31 12:02:00"}
    assert ids_of(api.get(metered.url, params=window)) == metered.ids([(1, 2), (1, 1), (1, 0)])
    window = {"date_from": "2025-03-31 12:01:00", "date_to": "2025-03-31 12:02:01"}
    assert ids_of(api.get(metered.url, params=window)) == metered.ids([(2, 0), (1, 2), (1, 1), (1, 0)])
    window = {"date_from": "2025-03-31 12:00:00", "date_to": "2025-03-31 12:00:00"}
    assert ids_of(api.get(metered.url, params=window)) == metered.ids(NEWEST_FIRST[5:])
    window = {"date_from": "2025-04-01 00:00:00", "date_to": "2025-04-30 00:00:00"}
    assert ids_of(api.get(metered.url, params=window)) == []
    backwards = {"date_from": "2025-03-31 23:59:59", "date_to": "2025-03-31 00:00:00"}
    assert ids_of(api.get(metered.url, params=backwards)) == []


@pytest.mark.parametrize(
    ("params", "positions"),
    [
        ({"measurand": "Current.Import"}, [(1, 1), (0, 2)]),
        ({"measurand": EAIR}, [(1, 0), (0, 0)]),
        ({"measurand": EAIR, "unit": "Wh"}, [(0, 0)]),
        ({"unit": "kWh"}, [(1, 0)]),
        ({"unit": "kW"}, [(3, 0)]),
        ({"phase": "L1-N"}, [(0, 3)]),
        ({"phase": "L2"}, [(1, 1)]),
        ({"context": "Trigger"}, [(2, 0)]),
        ({"context": "Sample.Clock"}, [(3, 0)]),
        ({"location": "EV"}, [(1, 2)]),
        ({"location": "Inlet"}, [(3, 0)]),
        ({"location": "Outlet", "order_by": "asc", "limit": 2}, [(0, 0), (0, 1)]),
        ({"measurand": "Frequency"}, []),
    ],
)
def test_meter_values_filter_on_sample_fields(
    api: httpx.Client, metered: Metered, params: dict[str, Any], positions: list[tuple[int, int]]
) -> None:
    """spec C2: context, measurand, phase, location and unit narrow the samples (defaults filled in, R-91)."""
    assert ids_of(api.get(metered.url, params={**DAY, **params})) == metered.ids(positions)


def test_meter_values_read_parameters_from_a_json_body(api: httpx.Client, metered: Metered) -> None:
    """DESIGN: GET parameters documented as a body come from the query string and a JSON body (body wins)."""
    assert ids_of(get(api, metered.url, body={**DAY, "measurand": "SoC"})) == metered.ids([(1, 2)])
    assert ids_of(get(api, metered.url, params=DAY, body={"limit": 1, "order_by": "asc"})) == metered.ids([(0, 0)])
    assert ids_of(get(api, metered.url, params={**DAY, "order_by": "asc"}, body={"order_by": "desc", "limit": 1})) == (
        metered.ids([(3, 0)])
    )


def test_every_documented_enum_value_is_accepted(api: httpx.Client, metered: Metered) -> None:
    """spec §4: the context, measurand, phase, location and unit lists, each value accepted."""
    enums = {"context": CONTEXTS, "measurand": MEASURANDS, "phase": PHASES, "location": LOCATIONS, "unit": UNITS}
    assert (len(CONTEXTS), len(MEASURANDS), len(PHASES), len(LOCATIONS), len(UNITS)) == (8, 22, 10, 6, 16)
    for name, values in enums.items():
        for value in values:
            response = api.get(metered.url, params={**DAY, name: value})
            assert response.status_code == 200, (name, value, response.text)


# -- validation ----------------------------------------------------------------------------------------

FROM_REQUIRED = "The date from field is required."
TO_REQUIRED = "The date to field is required."
FROM_FORMAT = "The date from field must match the format Y-m-d H:i:s."


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"date_to": DAY["date_to"]}, {"date_from": [FROM_REQUIRED]}),
        ({"date_from": DAY["date_from"]}, {"date_to": [TO_REQUIRED]}),
        ({**DAY, "date_from": None}, {"date_from": [FROM_REQUIRED]}),
        ({**DAY, "date_from": "2025-03-31"}, {"date_from": [FROM_FORMAT]}),
        ({**DAY, "date_from": "2025-03-31T00:00:00Z"}, {"date_from": [FROM_FORMAT]}),
        ({**DAY, "date_from": "2025-13-01 00:00:00"}, {"date_from": [FROM_FORMAT]}),
        ({**DAY, "date_from": ["2025-03-31 00:00:00"]}, {"date_from": [FROM_FORMAT]}),
        ({**DAY, "date_to": 1743379200}, {"date_to": ["The date to field must match the format Y-m-d H:i:s."]}),
        ({**DAY, "measurand": "Energy"}, {"measurand": ["The selected measurand is invalid."]}),
        ({**DAY, "measurand": "energy.active.import.register"}, {"measurand": ["The selected measurand is invalid."]}),
        ({**DAY, "context": "Sample"}, {"context": ["The selected context is invalid."]}),
        ({**DAY, "phase": "L4"}, {"phase": ["The selected phase is invalid."]}),
        ({**DAY, "location": "Roof"}, {"location": ["The selected location is invalid."]}),
        ({**DAY, "unit": "mWh"}, {"unit": ["The selected unit is invalid."]}),
        ({**DAY, "unit": ["Wh"]}, {"unit": ["The selected unit is invalid."]}),
        ({**DAY, "limit": 10001}, {"limit": ["The limit field must not be greater than 10000."]}),
        ({**DAY, "limit": 0}, {"limit": ["The limit field must be at least 1."]}),
        ({**DAY, "limit": "many"}, {"limit": ["The limit field must be an integer."]}),
        ({**DAY, "order_by": "latest"}, {"order_by": ["The selected order by is invalid."]}),
    ],
)
def test_meter_values_refuse_bad_parameters_with_laravel_messages(
    api: httpx.Client, metered: Metered, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """spec C2 rules; DESIGN: metervalues need both dates; Laravel's exact wording."""
    response = get(api, metered.url, body=body)
    assert response.status_code == 422, response.text
    assert response.json() == {"message": next(iter(errors.values()))[0], "errors": errors}


def test_meter_values_without_dates_report_both(api: httpx.Client, metered: Metered) -> None:
    response = api.get(metered.url, params={"limit": "20000"})
    assert response.json() == {
        "message": f"{FROM_REQUIRED} (and 2 more errors)",
        "errors": {
            "date_from": [FROM_REQUIRED],
            "date_to": [TO_REQUIRED],
            "limit": ["The limit field must not be greater than 10000."],
        },
    }


@pytest.mark.parametrize("body", [{"limit": 1e300}, {"limit": {"n": 1}}, {"measurand": None}, {"phase": True}])
def test_odd_json_types_are_422_not_500(api: httpx.Client, metered: Metered, body: dict[str, Any]) -> None:
    response = get(api, metered.url, body={**DAY, **body})
    assert response.status_code == 422, response.text
    assert set(response.json()["errors"]) == set(body)


# -- tenancy -------------------------------------------------------------------------------------------


def test_another_teams_charger_is_404_and_another_teams_path_403(
    server: LiveServer, api: httpx.Client, metered: Metered
) -> None:
    """DESIGN: 404 for another team's object under one's own path (before validation), 403 for its path."""
    stranger = server.account()
    with server.client(stranger) as their_api:
        for ref in ("id", "uuid"):
            url = f"/api/v2/teams/{stranger.team_id}/chargers/{metered.charger[ref]}/metervalues"
            for params in (DAY, {}):
                response = their_api.get(url, params=params)
                assert (response.status_code, response.json()) == (404, NOT_FOUND)
        response = their_api.get(metered.url, params=DAY)
        assert (response.status_code, response.json()) == (403, {"message": "This action is unauthorized."})


def test_a_charger_moved_to_another_team_leaves_its_meter_values_behind(
    server: LiveServer, api: httpx.Client, metered: Metered
) -> None:
    """DESIGN: frames keep the team of their time; the new team sees only what the charger sent since."""
    newcomer = server.account()

    async def pincode() -> str:
        async with server.runtime.db.read() as conn:
            row = await charger_store.get_charger_by_identity(conn, metered.charger["identity"])
            assert row is not None
            return str(row["pincode"])

    with server.client(newcomer) as their_api:
        site = make_site(their_api, newcomer)
        team = f"/api/v2/teams/{newcomer.team_id}"
        attach = {"identity": metered.charger["identity"], "pincode": server.run(pincode)}
        assert their_api.post(f"{team}/sites/{site['id']}/attach-charger", json=attach).status_code == 200
        url = f"{team}/chargers/{metered.charger['id']}/metervalues"
        assert listed(their_api.get(url, params=DAY)) == []
        connector, in_transaction, _, sampled = FRAMES[3]  # the same samples at a new time: a new frame
        send_frames(server, metered.charger["identity"], [(connector, in_transaction, "2025-03-31T12:04:00Z", sampled)])
        [new] = listed(their_api.get(url, params=DAY))
        assert (new["measurand"], new["id"] // 1000 > max(metered.frame_ids)) == ("Power.Active.Import", True)
    assert api.get(metered.url, params=DAY).status_code == 404
