"""What a charger reports, at the service level: the events published after the commit, and vendor data."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import unique_identity, wait_for
from voltline.bus.events import SMART_EVENTS, decode_event
from voltline.domain.authorization import Verdict
from voltline.domain.ids import ChargerId
from voltline.services import authorization, charger_reports
from voltline.services.accounts import Account
from voltline.store.schema import chargers, connectors


def site_charger(api: httpx.Client, account: Account) -> tuple[int, int]:
    """A charger on a fresh site of the account's team: (charger id, site id)."""
    address = {"street": "Main", "house_number": 1, "postal_code": "1000", "city": "C", "country": "NL"}
    site = api.post(f"/api/v2/teams/{account.team_id}/sites", json={"name": "Depot", **address})
    assert site.status_code == 201, site.text
    path = f"/api/v2/teams/{account.team_id}/sites/{site.json()['data']['id']}/chargers"
    charger = api.post(path, json={"identity": unique_identity()})
    assert charger.status_code == 201, charger.text
    return int(charger.json()["data"]["id"]), int(site.json()["data"]["id"])


def test_status_is_published_with_charger_site_connector_and_status_once_committed(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """spec/smart-charging.md §7.4: a status wakes the site's loop; a listener already reads what it reports."""
    charger_id, site_id = site_charger(api, account)
    seen: list[tuple[dict[str, Any], Any]] = []

    async def record(_subject: str, data: bytes) -> None:
        event = decode_event(data)
        if event.get("charger_id") == charger_id:
            async with server.runtime.db.read() as conn:
                charger = await conn.scalar(select(chargers.c.status).where(chargers.c.id == charger_id))
                query = select(connectors.c.status).where(connectors.c.charger_id == charger_id)
                seen.append((event, (charger, await conn.scalar(query))))

    runtime, charger = server.runtime, ChargerId(charger_id)
    subscription = server.run(lambda: server.runtime.bus.listen(SMART_EVENTS, record))
    try:
        # One report at a time: the listener reads the store when it runs, after its event's commit.
        server.run(
            lambda: charger_reports.record_status(runtime, charger, 0, "Unavailable", error_code="NoError", info=None)
        )
        wait_for(lambda: len(seen) == 1)
        server.run(
            lambda: charger_reports.record_status(runtime, charger, 1, "Preparing", error_code="NoError", info="x")
        )
        wait_for(lambda: len(seen) == 2)
    finally:
        server.run(subscription.unsubscribe)
    common = {"kind": "status", "charger_id": charger_id, "site_id": site_id}
    assert seen == [
        ({**common, "connector": 0, "status": "Unavailable"}, ("Unavailable", None)),
        ({**common, "connector": 1, "status": "Preparing"}, ("Unavailable", "Preparing")),
    ]


def test_a_charger_of_no_team_accepts_every_tag(server: LiveServer) -> None:
    """DESIGN: without a team there are no stored tags and no allow list: every tag is Accepted."""
    verdict = server.run(lambda: authorization.authorize_id_tag(server.runtime, None, "ANYONE"))
    assert verdict == Verdict("Accepted")


def test_vendor_data_is_logged_and_answered_unknown_vendor_id(caplog: pytest.LogCaptureFixture) -> None:
    """OCPP 1.6 §4.3: no vendor extension is implemented, so every vendor id is unknown."""
    with caplog.at_level(logging.INFO, logger="voltline.ocpp"):
        status = charger_reports.receive_data_transfer("CP-1", "com.vestel", "meter")
    assert status == "UnknownVendorId"
    assert [r.getMessage() for r in caplog.records] == [
        "CP-1: DataTransfer from vendor 'com.vestel', message 'meter' (not implemented)"
    ]
