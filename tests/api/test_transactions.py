"""Transactions of a site and of a charger: spec/volttime-api.md A1, C1, C11 and DESIGN wire details.

Transactions are made the way chargers make them: StartTransaction, MeterValues and
StopTransaction over a real OCPP 1.6 socket (a raw `websockets` peer, not our simulator).
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import LiveServer
from tests.support.sites import make_site
from tests.support.transactions import Place, Session, charge, get, listed, make_place
from voltline.domain.transactions import energy_wh, total_kwh, transaction_costs
from voltline.services.accounts import Account
from voltline.store import chargers as charger_store

TRANSACTION_KEYS = [
    "id",
    "charger_id",
    "charger_connector_id",
    "reservation_id",
    "id_tag",
    "meter_start",
    "meter_stop",
    "total_kwh",
    "start_cost",
    "kwh_cost",
    "total_kwh_cost",
    "total_cost",
    "started_at",
    "stopped_at",
    "stop_reason",
    "created_at",
    "updated_at",
]
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
NOT_FOUND = {"message": "Not found."}
FORMAT_FROM = "The date from field must match the format Y-m-d H:i:s."
FORMAT_TO = "The date to field must match the format Y-m-d H:i:s."
FROM_REQUIRED_WITH = "The date from field is required when date to is present."
TO_REQUIRED_WITH = "The date to field is required when date from is present."
CHARGER_INVALID = "The selected charger is invalid."


# -- the money maths (pure; domain/transactions.py) ---------------------------------------------


@pytest.mark.parametrize(
    ("meter_start", "meter_stop", "expected"),
    [(34891, 44009, "9.12"), (17442, 26587, "9.15"), (29317, 37253, "7.94")],
)
def test_total_kwh_matches_the_spec_examples(meter_start: int, meter_stop: int, expected: str) -> None:
    """spec C11: total_kwh = round_half_up((meter_stop - meter_start) / 1000, 2), from the A1/C1 examples."""
    assert total_kwh(energy_wh(meter_start, meter_stop, None, active=False)) == expected


@pytest.mark.parametrize(
    ("wh", "expected"),
    [(5, "0.01"), (15, "0.02"), (25, "0.03"), (4, "0.00"), (9145, "9.15"), (-5, "-0.01"), (-4, "0.00"), (0, "0.00")],
)
def test_total_kwh_rounds_half_up_never_to_even_and_never_to_negative_zero(wh: int, expected: str) -> None:
    """DESIGN: Decimal, half-up from integer Wh (0.025 kWh -> 0.03, where banker's rounding gives 0.02)."""
    assert total_kwh(wh) == expected


def test_missing_readings_give_zero_kwh_and_the_register_stands_in_while_active() -> None:
    """spec C11: "0.00" when meter values are null; from the register while active (spec/smart-charging.md §8)."""
    assert energy_wh(None, 44009, None, active=False) is None
    assert energy_wh(34891, None, None, active=False) is None
    assert energy_wh(34891, None, None, active=True) is None
    assert energy_wh(34891, None, 40000, active=True) == 5109
    assert energy_wh(34891, None, 40000, active=False) is None
    assert energy_wh(100, 200, 999, active=False) == 100
    assert total_kwh(None) == "0.00"


def test_costs_come_from_exact_wh_and_the_copied_prices() -> None:
    """DESIGN: total_kwh_cost = exact kWh x kwh_cost (4 places), total_cost = start + energy (2 places)."""
    costs = transaction_costs(9145, "0.3000", "0.5000")
    assert (costs.total_kwh, costs.start_cost, costs.kwh_cost) == ("9.15", "0.5000", "0.3000")
    assert (costs.total_kwh_cost, costs.total_cost) == ("2.7435", "3.24")
    # From the rounded 9.15 kWh the energy would cost 9.1500; from 9145 Wh it is 9.1450.
    assert transaction_costs(9145, "1.0000", None).total_kwh_cost == "9.1450"


@pytest.mark.parametrize(
    ("wh", "kwh_price", "start_cost", "energy_cost", "total"),
    [
        (1000, "0.0050", None, "0.0050", "0.01"),  # 0.005 -> 0.01 half-up (0.00 to even)
        (1, "0.0500", None, "0.0001", "0.00"),  # 0.00005 -> 0.0001
        (1, "0.0499", None, "0.0000", "0.00"),  # 0.0000499 -> 0.0000
        (2500, "0.0010", "0.0000", "0.0025", "0.00"),
        (0, "0.3000", "1.2350", "0.0000", "1.24"),  # the start cost alone, half-up
        (None, "0.3000", "0.5000", "0.0000", "0.50"),
        (9118, None, None, "0.0000", "0.00"),  # no prices: the spec's zero strings
    ],
)
def test_costs_round_half_up_at_four_and_two_places(
    wh: int | None, kwh_price: str | None, start_cost: str | None, energy_cost: str, total: str
) -> None:
    """DESIGN: money is Decimal, rounded half-up; 4 places for kWh costs, 2 for the total."""
    costs = transaction_costs(wh, kwh_price, start_cost)
    assert (costs.total_kwh_cost, costs.total_cost) == (energy_cost, total)


def _half_up(value: Fraction, places: int) -> Fraction:
    scaled = value * 10**places
    whole = int(abs(scaled) + Fraction(1, 2))
    return Fraction(whole if scaled >= 0 else -whole, 10**places)


@given(
    wh=st.integers(min_value=0, max_value=10**12),
    price_ten_thousandths=st.integers(min_value=0, max_value=10**10),
    start_ten_thousandths=st.integers(min_value=0, max_value=10**10),
)
def test_costs_equal_exact_rational_arithmetic(wh: int, price_ten_thousandths: int, start_ten_thousandths: int) -> None:
    """Decimal half-up agrees with exact fractions for any Wh and any 4-place price."""
    kwh_price, start = Fraction(price_ten_thousandths, 10**4), Fraction(start_ten_thousandths, 10**4)
    costs = transaction_costs(wh, four_places(price_ten_thousandths), four_places(start_ten_thousandths))
    energy = _half_up(Fraction(wh, 1000) * kwh_price, 4)
    assert Fraction(Decimal(costs.total_kwh)) == _half_up(Fraction(wh, 1000), 2)
    assert Fraction(Decimal(costs.total_kwh_cost)) == energy
    assert Fraction(Decimal(costs.total_cost)) == _half_up(start + energy, 2)
    assert re.fullmatch(r"\d+\.\d{2}", costs.total_kwh) and re.fullmatch(r"\d+\.\d{2}", costs.total_cost)
    assert re.fullmatch(r"\d+\.\d{4}", costs.total_kwh_cost) and re.fullmatch(r"\d+\.\d{4}", costs.kwh_cost)


def four_places(ten_thousandths: int) -> str:
    """A price as the site stores it: a decimal string with 4 places."""
    return f"{ten_thousandths // 10**4}.{ten_thousandths % 10**4:04d}"


# -- helpers: a site with a charger, and charging sessions over OCPP ------------------------------


def ids_of(response: httpx.Response) -> list[int]:
    """The transaction ids of a 200 list response, in order."""
    return [item["id"] for item in listed(response)]


@pytest.fixture
def place(api: httpx.Client, account: Account) -> Place:
    return make_place(api, account)


SPEC_SESSION = Session(
    meter_start=34891,
    started="2025-03-16T02:32:03Z",
    meter_stop=44009,
    stopped="2025-03-17T15:27:02Z",
    reason="EVDisconnected",
    id_tag="WRSI4902",
    reservation_id=5719,
)


# -- the transaction object ------------------------------------------------------------------------


def test_site_transactions_show_the_spec_transaction_object(
    server: LiveServer, api: httpx.Client, place: Place
) -> None:
    """spec A1: every field, in order, with the example's values (34891 -> 44009 = "9.12", zero costs)."""
    [transaction_id] = charge(server, place.charger["identity"], SPEC_SESSION)
    body = api.get(place.site_transactions).json()
    [item] = body["data"]
    assert list(item) == TRANSACTION_KEYS
    charger = api.get(f"{place.team}/chargers/{place.charger['id']}").json()["data"]
    [connector] = charger["connectors"]
    assert {k: v for k, v in item.items() if k not in ("created_at", "updated_at")} == {
        "id": transaction_id,
        "charger_id": place.charger["id"],
        "charger_connector_id": connector["id"],
        "reservation_id": 5719,
        "id_tag": "WRSI4902",
        "meter_start": 34891,
        "meter_stop": 44009,
        "total_kwh": "9.12",
        "start_cost": "0.0000",
        "kwh_cost": "0.0000",
        "total_kwh_cost": "0.0000",
        "total_cost": "0.00",
        "started_at": "2025-03-16T02:32:03.000000Z",
        "stopped_at": "2025-03-17T15:27:02.000000Z",
        "stop_reason": "EVDisconnected",
    }
    assert TIMESTAMP.match(item["created_at"]) and TIMESTAMP.match(item["updated_at"])
    assert list(body) == ["data", "links", "meta"]
    assert listed(api.get(place.charger_transactions())) == [item]


def test_costs_use_the_site_prices_copied_when_the_transaction_started(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """DESIGN: kwh_price and start_cost are copied onto a transaction at its start; Decimal half-up."""
    place = make_place(api, account, kwh_price="0.30", start_cost="0.50")
    session = Session(17442, "2025-03-23T03:58:35Z", 26587, "2025-03-27T22:18:55Z", "Local", "VLXJ2316")
    charge(server, place.charger["identity"], session)
    api.put(f"{place.team}/sites/{place.site['id']}", json={"kwh_price": "1.00", "start_cost": "2.00"})
    later = Session(26587, "2025-03-28T08:00:00Z", 27587, "2025-03-28T09:00:00Z", "Local", "VLXJ2316")
    charge(server, place.charger["identity"], later)
    newer, older = listed(api.get(place.site_transactions))
    assert {k: older[k] for k in TRANSACTION_KEYS[7:12]} == {
        "total_kwh": "9.15",
        "start_cost": "0.5000",
        "kwh_cost": "0.3000",
        "total_kwh_cost": "2.7435",
        "total_cost": "3.24",
    }
    assert {k: newer[k] for k in TRANSACTION_KEYS[7:12]} == {
        "total_kwh": "1.00",
        "start_cost": "2.0000",
        "kwh_cost": "1.0000",
        "total_kwh_cost": "1.0000",
        "total_cost": "3.00",
    }


def test_an_active_transaction_counts_kwh_from_the_register(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec/smart-charging.md §8: while active, total_kwh is the register (highest EAIR so far) minus meter_start."""
    place = make_place(api, account, kwh_price="0.25")
    readings = (("2025-04-21T11:30:00Z", 30000), ("2025-04-21T11:45:00Z", 31234))
    session = Session(29317, "2025-04-21T11:22:31Z", registers=readings, id_tag="DLJN5625")
    charge(server, place.charger["identity"], session)
    [item] = listed(api.get(place.charger_transactions()))
    assert (item["meter_start"], item["meter_stop"], item["stopped_at"], item["stop_reason"]) == (
        29317,
        None,
        None,
        None,
    )
    assert (item["total_kwh"], item["total_kwh_cost"], item["total_cost"]) == ("1.92", "0.4793", "0.48")


def test_an_active_transaction_without_readings_shows_zero_kwh(
    server: LiveServer, api: httpx.Client, place: Place
) -> None:
    """spec C11: "0.00" when there is nothing to count yet."""
    charge(server, place.charger["identity"], Session(1000, "2025-04-21T11:22:31Z"))
    [item] = listed(api.get(place.site_transactions))
    assert (item["total_kwh"], item["total_kwh_cost"], item["total_cost"], item["meter_stop"]) == (
        "0.00",
        "0.0000",
        "0.00",
        None,
    )


# -- site transactions: pagination, order and filters ----------------------------------------------


def day_sessions(days: range, **fields: Any) -> list[Session]:
    """One finished session per day of March 2025, 1 kWh each."""
    return [
        Session(day * 1000, f"2025-03-{day:02d}T10:00:00Z", day * 1000 + 1000, f"2025-03-{day:02d}T11:00:00Z", **fields)
        for day in days
    ]


def test_site_transactions_are_paginated_newest_first(server: LiveServer, api: httpx.Client, place: Place) -> None:
    """spec A1 and DESIGN: simple pagination, newest first by started_at (then id)."""
    ids = charge(server, place.charger["identity"], *day_sessions(range(1, 6)))
    pages = [api.get(place.site_transactions, params={"per_page": 2, "page": page}).json() for page in (1, 2, 3)]
    assert [[item["id"] for item in page["data"]] for page in pages] == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    assert [page["links"]["next"] is not None for page in pages] == [True, True, False]
    assert [page["meta"]["from"] for page in pages] == [1, 3, 5]
    assert pages[0]["links"]["next"].endswith(f"{place.site_transactions}?per_page=2&page=2")


def test_site_transactions_with_the_same_start_come_newest_id_first(
    server: LiveServer, api: httpx.Client, place: Place
) -> None:
    same = [Session(0, "2025-03-01T10:00:00Z", id_tag=tag) for tag in ("A1", "B2", "C3")]
    ids = charge(server, place.charger["identity"], *same)
    assert ids_of(api.get(place.site_transactions)) == ids[::-1]


def test_site_transactions_filter_by_status_and_id_tag(server: LiveServer, api: httpx.Client, place: Place) -> None:
    """The status (active|finished) and id_tag filters; id tags compare case-insensitively (OCPP CiString)."""
    finished_a, finished_b = day_sessions(range(1, 3), id_tag="AAA111")
    finished_b.id_tag = "BBB222"
    active = Session(5000, "2025-03-03T10:00:00Z", id_tag="CCC333", connector=2)
    a, b, c = charge(server, place.charger["identity"], finished_a, finished_b, active)
    assert ids_of(api.get(place.site_transactions, params={"status": "active"})) == [c]
    assert ids_of(api.get(place.site_transactions, params={"status": "finished"})) == [b, a]
    assert ids_of(api.get(place.site_transactions, params={"id_tag": "aaa111"})) == [a]
    assert ids_of(api.get(place.site_transactions, params={"id_tag": "BBB222", "status": "active"})) == []


def test_site_transactions_filter_by_start_date_inclusively(
    server: LiveServer, api: httpx.Client, place: Place
) -> None:
    """DESIGN: `Y-m-d H:i:s` inputs are UTC; the range applies to started_at and includes both ends."""
    one, two, three = charge(server, place.charger["identity"], *day_sessions(range(1, 4)))
    both_ends = {"date_from": "2025-03-01 10:00:00", "date_to": "2025-03-02 10:00:00"}
    assert ids_of(api.get(place.site_transactions, params=both_ends)) == [two, one]
    later = {"date_from": "2025-03-01 10:00:01", "date_to": "2025-03-03 09:59:59"}
    assert ids_of(api.get(place.site_transactions, params=later)) == [two]
    everything = {"date_from": "2025-01-01 00:00:00", "date_to": "2025-12-31 23:59:59"}
    assert ids_of(api.get(place.site_transactions, params=everything)) == [three, two, one]


def test_site_transactions_filter_by_charger_id_or_uuid(server: LiveServer, api: httpx.Client, place: Place) -> None:
    """`charger` names a charger by id or uuid (DESIGN: ids accept the integer or the uuid)."""
    other = place.add_charger(api)
    [mine] = charge(server, place.charger["identity"], *day_sessions(range(1, 2)))
    [theirs] = charge(server, other["identity"], *day_sessions(range(2, 3)))
    assert ids_of(api.get(place.site_transactions)) == [theirs, mine]
    for ref in (other["id"], other["uuid"], other["uuid"].upper()):
        assert ids_of(api.get(place.site_transactions, params={"charger": ref})) == [theirs]
    assert ids_of(api.get(place.site_transactions, params={"charger": place.charger["uuid"]})) == [mine]


def test_site_transactions_only_list_the_sites_own(
    server: LiveServer, api: httpx.Client, account: Account, place: Place
) -> None:
    """Transactions are scoped by the site stamped on them: another site of the team shows its own."""
    elsewhere = make_place(api, account)
    [mine] = charge(server, place.charger["identity"], *day_sessions(range(1, 2)))
    [theirs] = charge(server, elsewhere.charger["identity"], *day_sessions(range(1, 2)))
    assert ids_of(api.get(place.site_transactions)) == [mine]
    assert ids_of(api.get(elsewhere.site_transactions)) == [theirs]
    # The team's charger on the other site is a valid filter; it has nothing here.
    assert ids_of(api.get(place.site_transactions, params={"charger": elsewhere.charger["id"]})) == []


@pytest.mark.parametrize("ref", ["abc", "0", "-1", "99999999999", "12345678-1234-1234-1234-1234567890ab", 1.5, True])
def test_site_transactions_refuse_a_charger_that_names_none(api: httpx.Client, place: Place, ref: Any) -> None:
    response = get(api, place.site_transactions, body={"charger": ref})
    assert response.status_code == 422, response.text
    assert response.json() == {"message": CHARGER_INVALID, "errors": {"charger": [CHARGER_INVALID]}}


def test_site_transactions_refuse_another_teams_charger_as_a_filter(
    server: LiveServer, api: httpx.Client, place: Place
) -> None:
    stranger = server.account()
    with server.client(stranger) as their_api:
        theirs = make_place(their_api, stranger)
    response = api.get(place.site_transactions, params={"charger": theirs.charger["uuid"]})
    assert response.json() == {"message": CHARGER_INVALID, "errors": {"charger": [CHARGER_INVALID]}}


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"date_from": "2025-03-01 00:00:00"}, {"date_to": [TO_REQUIRED_WITH]}),
        ({"date_to": "2025-03-01 00:00:00"}, {"date_from": [FROM_REQUIRED_WITH]}),
        ({"date_from": "2025-03-01", "date_to": "2025-03-02 00:00:00"}, {"date_from": [FORMAT_FROM]}),
        ({"date_from": "2025-03-01 00:00:00", "date_to": "2025-02-30 00:00:00"}, {"date_to": [FORMAT_TO]}),
        ({"status": "stopped"}, {"status": ["The selected status is invalid."]}),
        ({"id_tag": "X" * 256}, {"id_tag": ["The id tag field must not be greater than 255 characters."]}),
        ({"per_page": "101"}, {"per_page": ["The per page field must not be greater than 100."]}),
        ({"page": "0"}, {"page": ["The page field must be at least 1."]}),
    ],
)
def test_site_transactions_refuse_bad_filters_with_laravel_messages(
    api: httpx.Client, place: Place, params: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    response = api.get(place.site_transactions, params=params)
    assert response.status_code == 422, response.text
    assert response.json() == {"message": next(iter(errors.values()))[0], "errors": errors}


# -- charger transactions (datapoints) -------------------------------------------------------------


def test_charger_transactions_are_unpaginated_newest_first_with_limit_and_order(
    server: LiveServer, api: httpx.Client, place: Place
) -> None:
    """spec C1 and DESIGN: `{"data": [...]}` only; limit (default 1000, max 10000); order_by desc|asc."""
    ids = charge(server, place.charger["identity"], *day_sessions(range(1, 5)))
    body = api.get(place.charger_transactions()).json()
    assert list(body) == ["data"]
    assert [item["id"] for item in body["data"]] == ids[::-1]
    assert ids_of(api.get(place.charger_transactions(), params={"order_by": "asc"})) == ids
    assert ids_of(api.get(place.charger_transactions(), params={"limit": 2})) == ids[:1:-1]
    assert ids_of(api.get(place.charger_transactions(), params={"limit": "2", "order_by": "asc"})) == ids[:2]
    assert ids_of(api.get(place.charger_transactions(), params={"limit": 10000, "order_by": "desc"})) == ids[::-1]


def test_charger_transactions_filter_by_start_date(server: LiveServer, api: httpx.Client, place: Place) -> None:
    """spec C1: date_from and date_to (`Y-m-d H:i:s`, UTC), inclusive, on started_at."""
    ids = charge(server, place.charger["identity"], *day_sessions(range(1, 5)))
    window = {"date_from": "2025-03-02 10:00:00", "date_to": "2025-03-03 10:00:00", "order_by": "asc"}
    assert ids_of(api.get(place.charger_transactions(), params=window)) == ids[1:3]


def test_charger_transactions_list_only_that_chargers(server: LiveServer, api: httpx.Client, place: Place) -> None:
    other = place.add_charger(api)
    [mine] = charge(server, place.charger["identity"], *day_sessions(range(1, 2)))
    [theirs] = charge(server, other["identity"], *day_sessions(range(1, 2)))
    assert ids_of(api.get(place.charger_transactions())) == [mine]
    assert ids_of(api.get(place.charger_transactions(other))) == [theirs]
    assert ids_of(api.get(f"{place.team}/chargers/{other['uuid']}/transactions")) == [theirs]


def test_charger_transactions_read_parameters_from_a_json_body(
    server: LiveServer, api: httpx.Client, place: Place
) -> None:
    """DESIGN: GET parameters documented as a body are read from the query string and a JSON body (body wins)."""
    ids = charge(server, place.charger["identity"], *day_sessions(range(1, 4)))
    url = place.charger_transactions()
    assert ids_of(get(api, url, body={"order_by": "asc", "limit": 2})) == ids[:2]
    assert ids_of(get(api, url, params={"order_by": "asc"}, body={"order_by": "desc"})) == ids[::-1]
    window = {"date_from": "2025-03-02 00:00:00", "date_to": "2025-03-02 23:59:59"}
    assert ids_of(get(api, url, body=window)) == [ids[1]]
    assert ids_of(get(api, url, params={"date_from": window["date_from"]}, body={"date_to": window["date_to"]})) == [
        ids[1]
    ]
    assert ids_of(get(api, place.site_transactions, body={"status": "finished", "per_page": 1})) == [ids[2]]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"date_from": "2025-03-01 00:00:00"}, {"date_to": [TO_REQUIRED_WITH]}),
        ({"date_to": "2025-03-01 00:00:00"}, {"date_from": [FROM_REQUIRED_WITH]}),
        ({"date_from": "2025-03-01T00:00:00", "date_to": "2025-03-01 00:00:00"}, {"date_from": [FORMAT_FROM]}),
        ({"date_from": "2025-03-01 00:00:00", "date_to": "2025-03-01 24:00:00"}, {"date_to": [FORMAT_TO]}),
        ({"date_from": 20250301, "date_to": "2025-03-01 00:00:00"}, {"date_from": [FORMAT_FROM]}),
        ({"limit": 10001}, {"limit": ["The limit field must not be greater than 10000."]}),
        ({"limit": "99999999999999999999"}, {"limit": ["The limit field must not be greater than 10000."]}),
        ({"limit": 0}, {"limit": ["The limit field must be at least 1."]}),
        ({"limit": "ten"}, {"limit": ["The limit field must be an integer."]}),
        ({"limit": 1.5}, {"limit": ["The limit field must be an integer."]}),
        ({"limit": True}, {"limit": ["The limit field must be an integer."]}),
        ({"limit": [5]}, {"limit": ["The limit field must be an integer."]}),
        ({"limit": None}, {"limit": ["The limit field must be an integer."]}),
        ({"order_by": "newest"}, {"order_by": ["The selected order by is invalid."]}),
        ({"order_by": ["asc"]}, {"order_by": ["The selected order by is invalid."]}),
        ({"order_by": {"a": 1}}, {"order_by": ["The selected order by is invalid."]}),
    ],
)
def test_charger_transactions_refuse_bad_parameters_with_laravel_messages(
    api: httpx.Client, place: Place, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """spec C1 rules: date_from/date_to required_with each other and Y-m-d H:i:s; limit integer 1..10000."""
    response = get(api, place.charger_transactions(), body=body)
    assert response.status_code == 422, response.text
    assert response.json() == {"message": next(iter(errors.values()))[0], "errors": errors}


def test_charger_transactions_report_every_bad_parameter_at_once(api: httpx.Client, place: Place) -> None:
    """DESIGN: the 422 message is the first error plus "(and N more errors)"."""
    response = api.get(place.charger_transactions(), params={"date_from": "x", "limit": "0", "order_by": "up"})
    assert response.json() == {
        "message": f"{FORMAT_FROM} (and 3 more errors)",
        "errors": {
            "date_from": [FORMAT_FROM],
            "date_to": [TO_REQUIRED_WITH],
            "limit": ["The limit field must be at least 1."],
            "order_by": ["The selected order by is invalid."],
        },
    }


@pytest.mark.parametrize("raw", [b"{", b"[1]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_a_400(api: httpx.Client, place: Place, raw: bytes) -> None:
    for url in (place.charger_transactions(), place.site_transactions):
        response = api.request("GET", url, content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text


# -- tenancy ----------------------------------------------------------------------------------------


def test_another_teams_site_and_charger_are_404_even_with_bad_parameters(
    server: LiveServer, api: httpx.Client, place: Place
) -> None:
    """DESIGN: a child resource not in the team is 404 {"message":"Not found."}, before any validation."""
    stranger = server.account()
    with server.client(stranger) as their_api:
        theirs = make_place(their_api, stranger)
    for ref in ("id", "uuid"):
        site_url = f"{place.team}/sites/{theirs.site[ref]}/transactions"
        charger_url = f"{place.team}/chargers/{theirs.charger[ref]}/transactions"
        for url in (site_url, charger_url):
            for params in ({}, {"limit": "0", "date_from": "bad"}):
                response = api.get(url, params=params)
                assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_another_teams_path_is_403(server: LiveServer, api: httpx.Client, place: Place) -> None:
    """DESIGN: a team the caller is not a member of is 403."""
    stranger = server.account()
    with server.client(stranger) as their_api:
        for url in (place.site_transactions, place.charger_transactions()):
            response = their_api.get(url)
            assert (response.status_code, response.json()) == (403, {"message": "This action is unauthorized."})


def test_a_charger_moved_to_another_team_leaves_its_history_behind(
    server: LiveServer, api: httpx.Client, account: Account, place: Place
) -> None:
    """DESIGN: transactions keep the team and site of their time; a moved charger does not carry them along."""
    [old] = charge(server, place.charger["identity"], *day_sessions(range(1, 2)))
    assert api.delete(f"{place.team}/sites/{place.site['id']}/chargers/{place.charger['id']}").status_code == 204
    newcomer = server.account()

    async def pincode() -> str:
        async with server.runtime.db.read() as conn:
            row = await charger_store.get_charger_by_identity(conn, place.charger["identity"])
            assert row is not None
            return str(row["pincode"])

    with server.client(newcomer) as their_api:
        new_site = make_site(their_api, newcomer)
        new_team = f"/api/v2/teams/{newcomer.team_id}"
        attach = {"identity": place.charger["identity"], "pincode": server.run(pincode)}
        assert their_api.post(f"{new_team}/sites/{new_site['id']}/attach-charger", json=attach).status_code == 200
        [new] = charge(server, place.charger["identity"], *day_sessions(range(2, 3)))
        assert ids_of(their_api.get(f"{new_team}/chargers/{place.charger['id']}/transactions")) == [new]
        assert ids_of(their_api.get(f"{new_team}/sites/{new_site['id']}/transactions")) == [new]
    assert ids_of(api.get(place.site_transactions)) == [old]
    assert ids_of(api.get(place.site_transactions, params={"charger": place.charger["uuid"]})) == [old]
    assert api.get(place.charger_transactions()).status_code == 404
