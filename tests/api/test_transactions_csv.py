"""CSV export of transactions for bookkeeping: `Accept: text/csv` or `?format=csv`, checked against the JSON."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.conftest import LiveServer
from tests.support.sites import errors_of
from tests.support.transactions import Place, Session, charge, listed, make_place
from voltline.api import transactions as transactions_api
from voltline.services.accounts import Account

SESSIONS = (
    Session(34891, "2025-03-16T02:32:03Z", 44009, "2025-03-17T15:27:02Z", "EVDisconnected", "WRSI4902"),
    Session(44009, "2025-03-18T08:00:00Z", 45500, "2025-03-18T09:30:00Z", None, "=HYPERLINK"),
    Session(45500, "2025-03-20T07:00:00Z"),  # still active
)


@pytest.fixture
def place(server: LiveServer, api: httpx.Client, account: Account) -> Place:
    made = make_place(api, account, kwh_price="0.30", start_cost="0.50")
    charge(server, made.charger["identity"], *SESSIONS)
    return made


def parsed(response: httpx.Response) -> list[dict[str, str]]:
    """The CSV rows of a 200 text/csv response, by header."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


def as_csv(item: dict[str, object]) -> dict[str, str]:
    """What a JSON transaction looks like as a CSV row: null is empty, formulas are quoted with '."""
    row = {key: "" if value is None else str(value) for key, value in item.items()}
    return {key: "'" + value if value.startswith("=") else value for key, value in row.items()}


def test_site_transactions_as_csv_match_the_json(api: httpx.Client, place: Place) -> None:
    """Every transaction of the site, newest first, the JSON's fields and values, as an attachment."""
    response = api.get(place.site_transactions, params={"format": "csv"})
    assert response.headers["content-disposition"] == f'attachment; filename="transactions-site-{place.site["id"]}.csv"'
    assert response.text.startswith("id,charger_id,charger_connector_id,reservation_id,id_tag,meter_start,")
    assert response.text.endswith("\r\n")
    expected = [as_csv(item) for item in listed(api.get(place.site_transactions))]
    assert parsed(response) == expected
    assert [row["total_kwh"] for row in expected] == ["0.00", "1.49", "9.12"]
    assert expected[1]["id_tag"] == "'=HYPERLINK"


def test_the_accept_header_asks_for_csv_and_an_explicit_format_wins(api: httpx.Client, place: Place) -> None:
    csv_rows = parsed(api.get(place.site_transactions, headers={"Accept": "text/csv"}))
    assert len(csv_rows) == 3
    json_response = api.get(place.site_transactions, params={"format": "json"}, headers={"Accept": "text/csv"})
    assert json_response.headers["content-type"].startswith("application/json")


def test_csv_ignores_pagination_and_keeps_the_filters(api: httpx.Client, place: Place) -> None:
    """All matching rows, not one page; status and dates filter as in JSON."""
    assert len(parsed(api.get(place.site_transactions, params={"format": "csv", "per_page": 1}))) == 3
    finished = parsed(api.get(place.site_transactions, params={"format": "csv", "status": "finished"}))
    assert [row["stop_reason"] for row in finished] == ["Local", "EVDisconnected"]  # OCPP 1.6: no reason is Local
    period = {"format": "csv", "date_from": "2025-03-18 00:00:00", "date_to": "2025-03-31 00:00:00"}
    assert [row["meter_start"] for row in parsed(api.get(place.site_transactions, params=period))] == ["45500", "44009"]


def test_charger_transactions_as_csv_follow_order_and_limit(api: httpx.Client, place: Place) -> None:
    url = place.charger_transactions()
    response = api.get(url, params={"order_by": "asc"}, headers={"Accept": "text/csv"})
    assert response.headers["content-disposition"] == (
        f'attachment; filename="transactions-charger-{place.charger["id"]}.csv"'
    )
    assert parsed(response) == [as_csv(item) for item in listed(api.get(url, params={"order_by": "asc"}))]
    assert len(parsed(api.get(url, params={"format": "csv", "limit": 2}))) == 2


def test_an_empty_export_has_only_the_header(api: httpx.Client, account: Account) -> None:
    empty = make_place(api, account)
    response = api.get(empty.site_transactions, params={"format": "csv"})
    assert parsed(response) == []
    assert response.text.count("\r\n") == 1


def test_an_unknown_format_is_422(api: httpx.Client, place: Place) -> None:
    assert errors_of(api.get(place.site_transactions, params={"format": "xml"})) == {
        "format": ["The selected format is invalid."]
    }
    assert errors_of(api.get(place.charger_transactions(), params={"format": "pdf"})) == {
        "format": ["The selected format is invalid."]
    }


def test_another_teams_site_is_not_exported(server: LiveServer, place: Place) -> None:
    """Tenancy: 403 on another team's path, 404 for its site under one's own team."""
    other = server.account("Other")
    with server.client(other) as api:
        assert api.get(place.site_transactions, params={"format": "csv"}).status_code == 403
        own = f"/api/v2/teams/{other.team_id}/sites/{place.site['id']}/transactions"
        assert api.get(own, params={"format": "csv"}).json() == {"message": "Not found."}


def test_an_export_over_the_limit_is_422_and_asks_for_a_narrower_period(
    api: httpx.Client, place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export cap (50,000 rows; 2 here, the server runs in this process): a 422, not a truncated file."""
    monkeypatch.setattr(transactions_api, "CSV_MAX_ROWS", 2)
    too_many = {"date_from": [transactions_api.CSV_TOO_MANY]}
    assert errors_of(api.get(place.site_transactions, params={"format": "csv"})) == too_many
    assert errors_of(api.get(place.charger_transactions(), params={"format": "csv"})) == too_many
    narrower = {"format": "csv", "date_from": "2025-03-18 00:00:00", "date_to": "2025-03-21 00:00:00"}
    assert len(parsed(api.get(place.site_transactions, params=narrower))) == 2
