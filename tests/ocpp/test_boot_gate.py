"""Nothing is sent to a charger before its BootNotification is Accepted (DESIGN "Load management", OCPP 1.6 §4.2)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import BOOT, Raw, open_charger, run, team_charger
from voltline.errors import ChargerNotBootedError
from voltline.services.accounts import Account

NOT_BOOTED = {"message": "The charger has not booted yet."}


async def nothing_arrives(ws: Any, seconds: float = 0.3) -> None:
    """No frame reaches the charger within `seconds` (after the refusals came back, nothing can be in flight)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            await ws.recv()


def test_a_charger_that_has_not_booted_gets_no_call_until_its_boot_is_accepted(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    """OCPP 1.6 §4.2: a command before an Accepted boot fails at once (the API's 409, nothing on the
    socket, no 30 s wait); a boot answered with a CALLERROR opens nothing; after an Accepted boot
    the command goes through, and it still does on a later socket without a new boot (1.6 chargers
    boot after power-up, not after a reconnect)."""
    charger = team_charger(api, account)
    identity = charger["identity"]
    unlock = f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}/commands/unlock"

    def post_unlock() -> httpx.Response:
        return api.post(unlock, json={"connector_id": 1})

    def reset() -> Any:
        return server.run(lambda: server.runtime.commands.send(identity, "reset", {"type": "Soft"}))

    async def unlocked(ws: Any) -> None:
        """The API's unlock reaches the charger, which answers Unlocked."""
        pending = asyncio.create_task(asyncio.to_thread(post_unlock))
        frame = json.loads(await ws.recv())
        assert frame[0] == 2 and frame[2:] == ["UnlockConnector", {"connectorId": 1}]
        await ws.send(json.dumps([3, frame[1], {"status": "Unlocked"}]))
        answered = await pending
        assert (answered.status_code, answered.json()) == (200, {"message": "Unlocked"})

    async def scenario() -> None:
        async with open_charger(server, identity) as ws:
            cp = Raw(ws)
            response = await asyncio.to_thread(post_unlock)
            assert (response.status_code, response.json()) == (409, NOT_BOOTED)
            refused = await cp.call("BootNotification", {"chargePointVendor": "Alfen BV"})  # no model: a CALLERROR
            assert refused[0] == 4, refused
            with pytest.raises(ChargerNotBootedError):
                await asyncio.to_thread(reset)
            await nothing_arrives(ws)
            assert (await cp.result("BootNotification", BOOT))["status"] == "Accepted"
            await unlocked(ws)
        async with open_charger(server, identity) as ws:
            await unlocked(ws)

    run(scenario())
