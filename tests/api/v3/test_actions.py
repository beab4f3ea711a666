"""v3 charger actions (spec volttime-v3 §3.8) reach a real charger (the `ocpp` package's ChargePoint).

Each answers `200 {"status": <the charger's word>}`; an offline charger is a 409; a charger that
never answers is a 504 `The charger did not respond in time.` (spec v3 §1.4).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from ocpp.v16 import call
from sqlalchemy import update

from tests.api.test_commands_api import InteropCharger
from tests.api.v3.support import V3
from tests.conftest import LiveServer
from tests.ocpp.gateway_support import dedicated_server, identity_only, unique_identity
from tests.support.interop import SilentCharger, connected, now, scenario
from voltline.services.accounts import Account
from voltline.store.schema import transactions


def make_charger(server: LiveServer, account: Account) -> tuple[str, str]:
    identity = unique_identity("V3A")
    with server.client(account) as api:
        charger = api.post(f"{V3}/chargers", json={"identity": identity}).json()["data"]
        identity_only(api, account, charger)
    return identity, f"{V3}/chargers/{charger['uuid']}/actions"


def set_ocpp_id(server: LiveServer, transaction_id: int, ocpp_id: str) -> None:
    """Give a transaction a charger-side id other than ours (as an OCPP 2.0.1 charger's string id would be)."""

    async def write() -> None:
        async with server.runtime.db.write() as conn:
            query = update(transactions).where(transactions.c.id == transaction_id)
            await conn.execute(query.values(ocpp_transaction_id=ocpp_id))

    server.run(write)


def test_every_action_reaches_the_charger_and_answers_its_status_word(server: LiveServer, account: Account) -> None:
    identity, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, identity, InteropCharger) as charger:
            first = await charger.call(
                call.StartTransaction(connector_id=1, id_tag="C1", meter_start=0, timestamp=now())
            )
            second = await charger.call(
                call.StartTransaction(connector_id=2, id_tag="C2", meter_start=0, timestamp=now())
            )
            set_ocpp_id(server, second.transaction_id, "777001")
            answers = [
                await api.post(f"{base}/start", json={"connector_id": 1, "id_token": "HOMEASSISTANT"}),
                await api.post(f"{base}/start", json={"id_token": "HOMEY"}),
                await api.post(f"{base}/stop", json={"transaction_id": first.transaction_id}),
                await api.post(f"{base}/stop", json={"transaction_id": 777001}),
                await api.post(f"{base}/restart"),
                await api.post(f"{base}/unlock", json={"connector_id": 1}),
            ]
            refused = await api.post(f"{base}/stop", json={"transaction_id": 999999})
        assert [(a.status_code, a.json()) for a in answers] == [
            (200, {"status": "Accepted"}),
            (200, {"status": "Accepted"}),
            (200, {"status": "Accepted"}),
            (200, {"status": "Accepted"}),
            (200, {"status": "Accepted"}),
            (200, {"status": "Unlocked"}),
        ]
        assert all(a.headers["content-type"].startswith("application/json") for a in answers)
        assert charger.received == [
            ("RemoteStartTransaction", {"connector_id": 1, "id_tag": "HOMEASSISTANT"}),
            ("RemoteStartTransaction", {"id_tag": "HOMEY"}),
            ("RemoteStopTransaction", {"transaction_id": first.transaction_id}),
            ("RemoteStopTransaction", {"transaction_id": second.transaction_id}),
            ("Reset", {"type": "Soft"}),
            ("UnlockConnector", {"connector_id": 1}),
        ]
        assert refused.status_code == 422 and list(refused.json()["errors"]) == ["transaction_id"]

    scenario(server, account, body)


def test_actions_validate_and_an_offline_charger_is_a_409(server: LiveServer, account: Account) -> None:
    _, base = make_charger(server, account)
    with server.client(account) as api:
        missing = api.post(f"{base}/start", json={})
        assert missing.status_code == 422
        assert missing.json() == {
            "message": "The id token field is required.",
            "errors": {"id_token": ["The id token field is required."]},
        }
        assert api.post(f"{base}/unlock", json={"connector_id": 0}).status_code == 422
        offline = api.post(f"{base}/start", json={"id_token": "X"})
        assert offline.status_code == 409 and offline.json() == {"message": "The charger is offline."}


def test_a_charger_that_never_answers_is_a_504(
    fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    with dedicated_server(fresh_database, tmp_path_factory, "sqlite", ocpp_call_timeout=0.5) as server:
        account = server.account()
        identity, base = make_charger(server, account)

        async def body(api: httpx.AsyncClient) -> httpx.Response:
            async with connected(server, identity, SilentCharger):
                return await api.post(f"{base}/restart")

        response = scenario(server, account, body)
    assert (response.status_code, response.json()) == (504, {"message": "The charger did not respond in time."})
