"""v3 charger settings end to end (spec/volttime-v3.md §3.10): a real server, simulated chargers, on both backends.

- lock / cable-lock: ChangeAvailability Inoperative on connector 0 (OCPP 1.6 §5.2) makes every
  connector Unavailable in the API; unlocking sends Operative; a locked charger that boots again
  (or was locked while offline) gets Inoperative again from the control lease's holder; no toggle
  while a session runs (`interactable` false, 409).
- socket-lock: UnlockConnectorOnEVSideDisconnect (OCPP 1.6 §9.1.35) set by ChangeConfiguration,
  read back by GetConfiguration, re-set after a boot; `error` when the charger cannot be read.
- plug-charge: a connector reporting Preparing (§4.9) gets RemoteStartTransaction (§5.11) with the card.
- 422 for bad bodies, 404 for another team's charger, audit rows for the changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from tests.conftest import LiveServer
from voltline.services import charger_settings
from voltline.services.accounts import Account
from voltline.simulator import SimulatedCharger
from voltline.simulator.connection import FollowUp, Payload

RECORDED = ("ChangeAvailability", "ChangeConfiguration", "GetConfiguration", "RemoteStartTransaction")
SOCKET_KEY = "UnlockConnectorOnEVSideDisconnect"


class RecordingCharger(SimulatedCharger):
    """A simulated charger that records the settings-related calls it answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, Payload]] = []
        self.refuse: dict[str, Payload] = {}  # canned answers by action

    def _answer(self, action: str, payload: Any) -> tuple[Payload, FollowUp | None]:
        if action in RECORDED:
            self.calls.append((action, payload))
        if action in self.refuse:
            return self.refuse[action], None
        return super()._answer(action, payload)

    def got(self, action: str) -> list[Payload]:
        return [payload for name, payload in self.calls if name == action]


async def until(check: Callable[[], Awaitable[Any] | Any], what: str, timeout: float = 15.0) -> Any:
    """Wait until `check()` is truthy (awaiting it when it is a coroutine)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class Team:
    """The account's team: chargers over v2, settings over v3."""

    def __init__(self, client: httpx.AsyncClient, account: Account) -> None:
        self.client, self.base = client, f"/api/v2/teams/{account.team_id}"

    async def v3_blocked(self, charger: dict[str, Any]) -> bool:
        """`blocked` of the charger as v3 shows it, in the single GET and in the list."""
        one = await self.client.get(f"/api/v3/chargers/{charger['uuid']}")
        assert one.status_code == 200, one.text
        listed = (await self.client.get("/api/v3/chargers", params={"per_page": "100"})).json()["data"]
        [row] = [row for row in listed if row["uuid"] == charger["uuid"]]
        assert row["blocked"] is one.json()["data"]["blocked"]
        return bool(one.json()["data"]["blocked"])

    async def charger(self) -> dict[str, Any]:
        """A charger of the team on security profile 0 (identity only)."""
        made = await self.client.post(f"{self.base}/chargers", json={"identity": f"ST-{uuid.uuid4().hex[:10]}"})
        assert made.status_code == 201, made.text
        charger: dict[str, Any] = made.json()["data"]
        changed = await self.client.put(f"{self.base}/chargers/{charger['id']}/ocpp", json={"security_profile": 0})
        assert changed.status_code == 200, changed.text
        return charger

    def url(self, charger: dict[str, Any], setting: str) -> str:
        return f"/api/v3/chargers/{charger['uuid']}/settings/{setting}"

    async def get(self, charger: dict[str, Any], setting: str) -> dict[str, Any]:
        got = await self.client.get(self.url(charger, setting))
        assert got.status_code == 200, got.text
        data: dict[str, Any] = got.json()
        return data

    async def post(self, charger: dict[str, Any], setting: str, body: Any) -> httpx.Response:
        return await self.client.post(self.url(charger, setting), json=body)

    async def statuses(self, charger: dict[str, Any]) -> dict[int, str]:
        got = await self.client.get(f"{self.base}/chargers/{charger['id']}")
        assert got.status_code == 200, got.text
        return {int(c["connector_id"]): c["status"] for c in got.json()["data"]["connectors"]}

    async def actions(self, action: str) -> list[dict[str, Any]]:
        got = await self.client.get(f"{self.base}/audit-log", params={"action": action})
        assert got.status_code == 200, got.text
        rows: list[dict[str, Any]] = got.json()["data"]
        return rows


@contextlib.asynccontextmanager
async def online(server: LiveServer, charger: dict[str, Any], **options: Any) -> AsyncIterator[RecordingCharger]:
    """A simulated two-connector charger for the API charger, running while the block runs."""
    url = server.base_url.replace("http://", "ws://") + "/ocpp"
    fast = {"meter_interval": 1.0, "auto_sessions": False, "call_timeout": 5.0, "idle_seconds": 0.05}
    cp = RecordingCharger(url, charger["identity"], connectors=2, **{**fast, **options})
    stop = asyncio.Event()
    task = asyncio.create_task(cp.run(stop))
    try:
        await until(lambda: cp.connection_state == "accepted", "the charger to boot")
        yield cp
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def play(server: LiveServer, account: Account, body: Callable[[Team], Awaitable[None]]) -> None:
    async def run() -> None:
        headers = {"Authorization": f"Bearer {account.token}", "Accept": "application/json"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as client:
            await body(Team(client, account))

    asyncio.run(run())


def blocked(server: LiveServer, charger: dict[str, Any]) -> bool:
    """`charger_settings.blocked` in the server's runtime."""
    return server.run(lambda: charger_settings.blocked(server.runtime, int(charger["id"])))


def unavailable(statuses: dict[int, str]) -> bool:
    return set(statuses) == {1, 2} and set(statuses.values()) == {"Unavailable"}


def test_lock_makes_every_connector_unavailable_and_unlock_makes_them_available(
    server: LiveServer, account: Account
) -> None:
    async def body(team: Team) -> None:
        charger = await team.charger()
        async with online(server, charger) as cp:
            await until(lambda: team.statuses(charger), "the connectors to be reported")
            assert await team.get(charger, "lock") == {"enabled": False}
            assert await team.get(charger, "cable-lock") == {"enabled": False, "interactable": True}

            locked = await team.post(charger, "lock", {"enabled": True})
            assert locked.status_code == 204, locked.text
            assert locked.content == b""
            assert cp.got("ChangeAvailability") == [{"connectorId": 0, "type": "Inoperative"}]
            assert await team.get(charger, "lock") == {"enabled": True}
            assert await team.get(charger, "cable-lock") == {"enabled": True, "interactable": True}
            await until(lambda: _check(team.statuses(charger), unavailable), "every connector Unavailable")
            assert cp.status0 == "Unavailable"
            assert blocked(server, charger) is True
            assert await team.v3_blocked(charger) is True, "spec v3 §3.2 `blocked`: the lock setting"

            unlocked = await team.post(charger, "cable-lock", {"enabled": False})  # the alias
            assert unlocked.status_code == 204, unlocked.text
            assert cp.got("ChangeAvailability")[-1] == {"connectorId": 0, "type": "Operative"}
            assert await team.get(charger, "lock") == {"enabled": False}
            assert blocked(server, charger) is False
            assert await team.v3_blocked(charger) is False
            await until(
                lambda: _check(team.statuses(charger), lambda s: set(s.values()) == {"Available"}),
                "every connector Available again",
            )
        changes = [row for row in await team.actions("charger.settings_changed") if row["object_id"] == charger["uuid"]]
        assert [row["detail"] for row in reversed(changes)] == [
            {"setting": "lock", "lock_enabled": True},
            {"setting": "lock", "lock_enabled": False},
        ]
        assert all(row["actor"]["kind"] == "token" for row in changes)
        sent = [r for r in await team.actions("charger.change_availability") if r["object_id"] == charger["uuid"]]
        assert [row["outcome"] for row in sent] == ["Accepted", "Accepted"]

    play(server, account, body)


async def _check(statuses: Awaitable[dict[int, str]], test: Callable[[dict[int, str]], bool]) -> bool:
    return test(await statuses)


def test_a_locked_charger_is_locked_again_after_it_boots(server: LiveServer, account: Account) -> None:
    async def body(team: Team) -> None:
        charger = await team.charger()
        # Locked while it was never connected: stored, 204, applied at its first boot.
        assert (await team.post(charger, "lock", {"enabled": True})).status_code == 204
        assert await team.get(charger, "lock") == {"enabled": True}
        async with online(server, charger) as cp:
            await until(lambda: cp.got("ChangeAvailability"), "Inoperative after the first boot")
            assert cp.got("ChangeAvailability")[0] == {"connectorId": 0, "type": "Inoperative"}
            await until(lambda: _check(team.statuses(charger), unavailable), "every connector Unavailable")
        # A fresh charger (operative again, as after a factory reset) connects and boots: locked again.
        async with online(server, charger) as again:
            assert again.status0 in ("Available", "Unavailable")
            await until(lambda: again.got("ChangeAvailability"), "Inoperative after the reboot")
            assert again.got("ChangeAvailability")[0] == {"connectorId": 0, "type": "Inoperative"}
            await until(lambda: again.status0 == "Unavailable", "the charger to be Unavailable")
            await until(lambda: _check(team.statuses(charger), unavailable), "every connector Unavailable")
            # Unlocked while online, then rebooted: nothing locks it again.
            assert (await team.post(charger, "lock", {"enabled": False})).status_code == 204
            await until(lambda: again.status0 == "Available", "the charger to be Available")
        async with online(server, charger) as third:
            await until(lambda: _check(team.statuses(charger), lambda s: set(s.values()) == {"Available"}), "free")
            await asyncio.sleep(1.0)  # time for a wrong re-lock to arrive
            assert third.got("ChangeAvailability") == []
            assert third.status0 == "Available"

    play(server, account, body)


def test_socket_lock_sets_and_reads_unlock_connector_on_ev_side_disconnect(
    server: LiveServer, account: Account
) -> None:
    async def body(team: Team) -> None:
        charger = await team.charger()
        offline = await team.get(charger, "socket-lock")
        assert offline == {"enabled": False, "interactable": False, "error": "The charger is offline."}
        async with online(server, charger) as cp:
            assert cp.config.values[SOCKET_KEY] == "true"
            assert await team.get(charger, "socket-lock") == {"enabled": False, "interactable": False}
            assert (await team.post(charger, "socket-lock", {"enabled": True})).status_code == 204
            assert cp.got("ChangeConfiguration") == [{"key": SOCKET_KEY, "value": "false"}]
            assert cp.config.values[SOCKET_KEY] == "false"
            assert await team.get(charger, "socket-lock") == {"enabled": True, "interactable": True}
            assert cp.got("GetConfiguration")[-1] == {"key": [SOCKET_KEY]}
            cp.config.set_value(SOCKET_KEY, "true")  # changed at the charger: the GET tells the truth
            assert await team.get(charger, "socket-lock") == {"enabled": False, "interactable": False}
            cp.set_status(1, "Preparing")  # a cable is present: it may be locked
            await until(
                lambda: _check(team.statuses(charger), lambda s: s.get(1) == "Preparing"), "the cable to be seen"
            )
            assert await team.get(charger, "socket-lock") == {"enabled": False, "interactable": True}
        # A fresh charger (key back at its default) is set again after its boot.
        async with online(server, charger) as again:
            await until(lambda: again.config.values[SOCKET_KEY] == "false", "the socket lock to be set again")
        rows = [r for r in await team.actions("charger.change_configuration") if r["object_id"] == charger["uuid"]]
        assert rows and rows[-1]["detail"] == {"key": SOCKET_KEY}

    play(server, account, body)


def test_plug_charge_starts_a_session_with_the_card_when_a_cable_is_plugged_in(
    server: LiveServer, account: Account
) -> None:
    async def body(team: Team) -> None:
        charger = await team.charger()
        card = f"PC{uuid.uuid4().hex[:8]}".upper()
        made = await team.client.post(f"{team.base}/id-tags", json={"id_tag": card})
        assert made.status_code == 201, made.text
        assert await team.get(charger, "plug-charge") == {"enabled": False, "current_card": None}
        assert (await team.post(charger, "plug-charge", {"enabled": True, "card_uid": card})).status_code == 204
        assert await team.get(charger, "plug-charge") == {"enabled": True, "current_card": card}
        async with online(server, charger, session_seconds=60.0) as cp:
            assert cp.got("RemoteStartTransaction") == []
            cp.set_status(2, "Preparing")  # a cable plugged into connector 2
            await until(lambda: cp.got("RemoteStartTransaction"), "the plug & charge start")
            assert cp.got("RemoteStartTransaction")[0] == {"connectorId": 2, "idTag": card}
            await until(lambda: cp.transactions.get(2), "the session on connector 2")
            assert len(cp.got("RemoteStartTransaction")) == 1
            # A session runs: the lock cannot be toggled now.
            assert await team.get(charger, "cable-lock") == {"enabled": False, "interactable": False}
            refused = await team.post(charger, "lock", {"enabled": True})
            assert refused.status_code == 409, refused.text
            assert "active session" in refused.json()["message"]
            assert await team.get(charger, "lock") == {"enabled": False}
            assert cp.got("ChangeAvailability") == []
        # Switched off: the card is kept, nothing starts.
        assert (await team.post(charger, "plug-charge", {"enabled": False})).status_code == 204
        assert await team.get(charger, "plug-charge") == {"enabled": False, "current_card": card}
        async with online(server, charger) as quiet:
            quiet.set_status(1, "Preparing")
            await until(lambda: _check(team.statuses(charger), lambda s: s.get(1) == "Preparing"), "the plug")
            await asyncio.sleep(1.0)
            assert quiet.got("RemoteStartTransaction") == []
        # On again but the charger locked: nothing starts either.
        assert (await team.post(charger, "plug-charge", {"enabled": True, "card_uid": card})).status_code == 204
        assert (await team.post(charger, "lock", {"enabled": True})).status_code == 204
        async with online(server, charger) as locked:
            await until(lambda: locked.status0 == "Unavailable", "the lock applied at the boot")
            # Every connector reported Unavailable first, so the plug below is the last status it sends.
            await until(lambda: _check(team.statuses(charger), lambda s: s.get(1) == "Unavailable"), "locked")
            locked.set_status(1, "Preparing")
            await until(lambda: _check(team.statuses(charger), lambda s: s.get(1) == "Preparing"), "the plug")
            await asyncio.sleep(1.0)
            assert locked.got("RemoteStartTransaction") == []
        starts = [r for r in await team.actions("charger.plug_charge_start") if r["object_id"] == charger["uuid"]]
        assert [(r["outcome"], r["detail"], r["actor"]["kind"]) for r in starts] == [
            ("Accepted", {"connector_id": 2}, "system")
        ]

    play(server, account, body)


def test_bad_bodies_are_422_and_another_teams_charger_is_404(server: LiveServer, account: Account) -> None:
    other = server.account("Other settings")

    async def body(team: Team) -> None:
        charger = await team.charger()
        missing = await team.post(charger, "plug-charge", {"enabled": True})
        assert missing.status_code == 422
        assert missing.json() == {
            "message": "The card uid field is required when enabled is true.",
            "errors": {"card_uid": ["The card uid field is required when enabled is true."]},
        }
        too_long = await team.post(charger, "plug-charge", {"enabled": True, "card_uid": "X" * 21})
        assert too_long.status_code == 422
        assert "card_uid" in too_long.json()["errors"]
        for setting in ("lock", "cable-lock", "socket-lock"):
            for bad in ({}, {"enabled": "yes"}, {"enabled": None}):
                answer = await team.post(charger, setting, bad)
                assert answer.status_code == 422, (setting, bad, answer.text)
                assert list(answer.json()["errors"]) == ["enabled"]
        assert await team.get(charger, "lock") == {"enabled": False}
        assert await team.get(charger, "plug-charge") == {"enabled": False, "current_card": None}

        headers = {"Authorization": f"Bearer {other.token}", "Accept": "application/json"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as stranger:
            for setting in ("plug-charge", "lock", "cable-lock", "socket-lock"):
                url = team.url(charger, setting)
                assert (await stranger.get(url)).status_code == 404
                refused = await stranger.post(url, json={"enabled": True, "card_uid": "X"})
                assert refused.status_code == 404
                assert refused.json() == {"message": "Not found."}
        by_id = await team.client.get(f"/api/v3/chargers/{charger['id']}/settings/lock")
        assert by_id.status_code == 404
        assert (await team.client.get(f"/api/v3/chargers/{uuid.uuid4()}/settings/lock")).status_code == 404
        assert await team.get(charger, "lock") == {"enabled": False}

    play(server, account, body)


def test_a_charger_refusing_a_setting_is_a_409_and_the_setting_stays_stored(
    server: LiveServer, account: Account
) -> None:
    async def body(team: Team) -> None:
        charger = await team.charger()
        # Set while offline: 204, set at the boot.
        assert (await team.post(charger, "socket-lock", {"enabled": True})).status_code == 204
        async with online(server, charger) as cp:
            await until(lambda: cp.config.values[SOCKET_KEY] == "false", "the socket lock set at the boot")
            cp.refuse = {"ChangeAvailability": {"status": "Rejected"}, "ChangeConfiguration": {"status": "Rejected"}}
            refused = await team.post(charger, "lock", {"enabled": True})
            assert refused.status_code == 409, refused.text
            assert refused.json() == {"message": "The charger answered Rejected."}
            assert await team.get(charger, "lock") == {"enabled": True}  # stored: tried again at the next boot
            refused = await team.post(charger, "socket-lock", {"enabled": False})
            assert refused.status_code == 409, refused.text
            assert cp.config.values[SOCKET_KEY] == "false"
        sent = [r for r in await team.actions("charger.change_availability") if r["object_id"] == charger["uuid"]]
        assert sent[0]["outcome"] == "Rejected"
        async with online(server, charger) as again:  # accepts now: both applied at its boot
            await until(lambda: again.status0 == "Unavailable", "the lock applied at the boot")
            await until(lambda: again.config.values[SOCKET_KEY] == "true", "the socket lock applied at the boot")

    play(server, account, body)


def test_an_unlock_made_while_offline_reaches_the_charger_when_it_boots(server: LiveServer, account: Account) -> None:
    async def body(team: Team) -> None:
        charger = await team.charger()
        async with online(server, charger) as cp:
            assert (await team.post(charger, "lock", {"enabled": True})).status_code == 204
            await until(lambda: cp.status0 == "Unavailable", "the charger locked")
        # Unlocked while it is away: stored, and Operative is sent when it is back.
        assert (await team.post(charger, "lock", {"enabled": False})).status_code == 204
        async with online(server, charger) as again:
            await until(lambda: again.got("ChangeAvailability"), "the unlock at the boot")
            assert again.got("ChangeAvailability") == [{"connectorId": 0, "type": "Operative"}]
        # Once the charger accepted it, later boots send nothing.
        async with online(server, charger) as third:
            await asyncio.sleep(1.0)
            assert third.got("ChangeAvailability") == []

    play(server, account, body)
