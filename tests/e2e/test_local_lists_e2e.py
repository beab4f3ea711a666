"""Local authorization lists end to end (OCPP 1.6 §3.5.3, §5.10, §5.15, §6.43): a real server, simulated chargers.

The team's id tags are made and changed through the REST API; the server's local-list service
(services/local_lists.py, run by the control lease's holder) keeps each charger's list: a Full
SendLocalList on its first boot, Differential ones as tags are added, blocked or removed, a Full
resync when the charger's version is not ours or it answers VersionMismatch, a list cut to
LocalAuthListMaxLength and sent in chunks of SendLocalListMaxLength, nothing for a charger without
the feature. Then the charger, cut off from the server, authorizes from the list it was given.
Runs on SQLite and PostgreSQL (the `server` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import dedicated_server
from voltline.services.accounts import Account
from voltline.simulator import SimulatedCharger
from voltline.simulator.connection import FollowUp, Payload
from voltline.simulator.local_list import LocalList

LIST_ACTIONS = ("GetConfiguration", "GetLocalListVersion", "SendLocalList")


class ListCharger(SimulatedCharger):
    """A simulated charger that records the local-list calls it answers; `canned` answers some first
    (a None among them lets the charger answer that one itself)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.list_calls: list[tuple[str, Payload]] = []
        self.canned: dict[str, list[Payload | None]] = {}

    def _answer(self, action: str, payload: Any) -> tuple[Payload, FollowUp | None]:
        if action in LIST_ACTIONS:
            self.list_calls.append((action, payload))
        waiting = self.canned.get(action)
        canned = waiting.pop(0) if waiting else None
        return (canned, None) if canned is not None else super()._answer(action, payload)

    def sends(self) -> list[Payload]:
        """The SendLocalList requests it got, in order."""
        return [payload for action, payload in self.list_calls if action == "SendLocalList"]

    def held(self) -> dict[str, str]:
        """Its list: id tag (lower case, as compared) -> status."""
        return {tag: str(info.get("status")) for tag, info in self.local_list.entries.items()}


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
    """The account's team over the REST API: chargers, id tags and local lists."""

    def __init__(self, client: httpx.AsyncClient, account: Account) -> None:
        self.client, self.base = client, f"/api/v2/teams/{account.team_id}"

    async def charger(self) -> dict[str, Any]:
        """A charger of the team on security profile 0 (identity only)."""
        made = await self.client.post(f"{self.base}/chargers", json={"identity": f"LL-{uuid.uuid4().hex[:10]}"})
        assert made.status_code == 201, made.text
        charger: dict[str, Any] = made.json()["data"]
        changed = await self.client.put(f"{self.base}/chargers/{charger['id']}/ocpp", json={"security_profile": 0})
        assert changed.status_code == 200, changed.text
        return charger

    async def tag(self, id_tag: str, status: str = "Accepted") -> dict[str, Any]:
        made = await self.client.post(f"{self.base}/id-tags", json={"id_tag": id_tag, "status": status})
        assert made.status_code == 201, made.text
        tag: dict[str, Any] = made.json()["data"]
        return tag

    async def set_status(self, tag: dict[str, Any], status: str) -> dict[str, Any]:
        changed = await self.client.put(f"{self.base}/id-tags/{tag['uuid']}", json={"status": status})
        assert changed.status_code == 200, changed.text
        assert changed.json()["data"]["status"] == status
        data: dict[str, Any] = changed.json()["data"]
        return data

    async def delete(self, tag: dict[str, Any]) -> None:
        assert (await self.client.delete(f"{self.base}/id-tags/{tag['id']}")).status_code == 204

    async def local_list(self, charger: dict[str, Any]) -> dict[str, Any]:
        got = await self.client.get(f"{self.base}/chargers/{charger['id']}/local-list")
        assert got.status_code == 200, got.text
        data: dict[str, Any] = got.json()["data"]
        return data

    async def sync(self, charger: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"{self.base}/chargers/{charger['id']}/local-list/sync")


@contextlib.asynccontextmanager
async def online(
    server: LiveServer,
    charger: dict[str, Any],
    canned: dict[str, list[Payload | None]] | None = None,
    **options: Any,
) -> AsyncIterator[ListCharger]:
    """A simulated charger for the API charger (with canned answers from the start), running while the block runs."""
    url = server.base_url.replace("http://", "ws://") + "/ocpp"
    fast = {"meter_interval": 1.0, "auto_sessions": False, "call_timeout": 5.0, "idle_seconds": 0.05}
    cp = ListCharger(url, charger["identity"], connectors=1, **{**fast, **options})
    cp.canned = canned or {}
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


def tags_of(send: Payload) -> list[tuple[str, str | None]]:
    """A SendLocalList's entries as (id tag, status or None for a removal)."""
    return [(e["idTag"], e.get("idTagInfo", {}).get("status")) for e in send.get("localAuthorizationList", [])]


def test_first_boot_sends_the_full_list_and_tag_changes_follow_as_differential_updates(
    server: LiveServer, account: Account
) -> None:
    """§5.15: Full first (Blocked tags left out, Expired kept), then one Differential per change: an added
    tag, a tag Blocked through PUT id-tags (removed: no idTagInfo, §6.43), a deleted tag, a tag Accepted again."""

    async def body(team: Team) -> None:
        first, second = await team.tag("LL-A"), await team.tag("LL-B")
        blocked, _ = await team.tag("LL-C", "Blocked"), await team.tag("LL-D", "Expired")
        charger = await team.charger()
        async with online(server, charger) as cp:
            await until(cp.sends, "the first SendLocalList")
            full = cp.sends()[0]
            assert (full["updateType"], full["listVersion"]) == ("Full", 1)
            assert tags_of(full) == [("LL-A", "Accepted"), ("LL-B", "Accepted"), ("LL-D", "Expired")]
            assert [a for a, _ in cp.list_calls[:2]] == ["GetConfiguration", "GetLocalListVersion"]
            state = await until(lambda: _synced(team, charger, 1), "the sync to be stored")
            assert (state["entries"], state["enabled"], state["last_outcome"]) == (3, True, "Accepted")

            steps: list[tuple[Callable[[], Awaitable[Any]], list[tuple[str, str | None]]]] = [
                (lambda: team.tag("LL-E"), [("LL-E", "Accepted")]),
                (lambda: team.set_status(first, "Blocked"), [("LL-A", None)]),
                (lambda: team.delete(second), [("LL-B", None)]),
                (lambda: team.set_status(blocked, "Accepted"), [("LL-C", "Accepted")]),
            ]
            for version, (change, expected) in enumerate(steps, start=2):
                await change()
                await until(lambda v=version: len(cp.sends()) == v, f"differential update {version}")  # type: ignore[misc]
                sent = cp.sends()[-1]
                assert (sent["updateType"], sent["listVersion"], tags_of(sent)) == ("Differential", version, expected)
            assert cp.held() == {"ll-c": "Accepted", "ll-d": "Expired", "ll-e": "Accepted"}
            state = await until(lambda: _synced(team, charger, 5), "the last sync to be stored")
            assert (state["entries"], state["last_outcome"]) == (3, "Accepted")

    play(server, account, body)


async def _synced(team: Team, charger: dict[str, Any], version: int) -> dict[str, Any] | None:
    state = await team.local_list(charger)
    return state if state["version"] == version and state["last_outcome"] is not None else None


def test_a_version_changed_behind_our_back_or_a_version_mismatch_brings_a_full_resync(
    server: LiveServer, account: Account
) -> None:
    """§5.10: a GetLocalListVersion that is not ours → Full; §5.15: a Differential answered VersionMismatch → Full."""

    async def body(team: Team) -> None:
        await team.tag("VM-A")
        charger = await team.charger()
        async with online(server, charger) as cp:
            await until(lambda: _synced(team, charger, 1), "the first sync")
            cp.local_list = LocalList(42, {"stranger": {"status": "Accepted"}})  # set by someone else
            await team.tag("VM-B")
            await until(lambda: len(cp.sends()) == 2, "the resync")
            resync = cp.sends()[1]
            assert (resync["updateType"], resync["listVersion"]) == ("Full", 43)
            assert tags_of(resync) == [("VM-A", "Accepted"), ("VM-B", "Accepted")]
            assert cp.held() == {"vm-a": "Accepted", "vm-b": "Accepted"}

            cp.canned["SendLocalList"] = [{"status": "VersionMismatch"}]
            await team.tag("VM-C")
            await until(lambda: len(cp.sends()) == 4, "the Full update after the mismatch")
            assert [(s["updateType"], s["listVersion"]) for s in cp.sends()[2:]] == [("Differential", 44), ("Full", 44)]
            assert cp.held() == {"vm-a": "Accepted", "vm-b": "Accepted", "vm-c": "Accepted"}
            state = await until(lambda: _synced(team, charger, 44), "the stored resync")
            assert (state["entries"], state["last_outcome"]) == (3, "Accepted")

    play(server, account, body)


def test_a_list_longer_than_the_charger_takes_is_cut_and_sent_in_chunks(server: LiveServer, account: Account) -> None:
    """§5.15: never more than LocalAuthListMaxLength entries (the first by id, outcome `truncated`), each
    SendLocalList at most SendLocalListMaxLength long: one Full chunk, then Differential ones, versions rising."""

    async def body(team: Team) -> None:
        for n in range(7):
            await team.tag(f"CH-{n}")
        charger = await team.charger()
        async with online(server, charger, local_list_max_length=5, send_local_list_max_length=2) as cp:
            state = await until(lambda: _synced(team, charger, 3), "the chunked sync")
            sends = cp.sends()
            assert [(s["updateType"], s["listVersion"], len(tags_of(s))) for s in sends] == [
                ("Full", 1, 2),
                ("Differential", 2, 2),
                ("Differential", 3, 1),
            ]
            assert sorted(cp.held()) == [f"ch-{n}" for n in range(5)]
            assert (state["entries"], state["last_outcome"], state["max_length"], state["chunk_length"]) == (
                5,
                "truncated",
                5,
                2,
            )

    play(server, account, body)


def test_a_charger_without_the_feature_is_sent_nothing_and_a_forced_sync_is_refused(
    server: LiveServer, account: Account
) -> None:
    """No LocalAuthListManagement profile: the list stays off, no GetLocalListVersion or SendLocalList; 409."""

    async def body(team: Team) -> None:
        await team.tag("NF-A")
        charger = await team.charger()
        async with online(server, charger, local_auth_list=False) as cp:
            state = await until(lambda: _features_read(team, charger), "the features to be read")
            assert (state["enabled"], state["supported"], state["version"]) == (False, False, 0)
            await team.tag("NF-B")
            refused = await team.sync(charger)
            assert refused.status_code == 409, refused.text
            await asyncio.sleep(0.5)
            assert [action for action, _ in cp.list_calls if action != "GetConfiguration"] == []

    play(server, account, body)


async def _features_read(team: Team, charger: dict[str, Any]) -> dict[str, Any] | None:
    state = await team.local_list(charger)
    return state if state["supported"] is not None else None


def test_a_charger_answering_not_supported_is_left_off_and_a_forced_sync_is_refused(
    server: LiveServer, account: Account
) -> None:
    """§5.15: SendLocalList NotSupported: recorded, the list off for it; a forced sync answers 409."""

    async def body(team: Team) -> None:
        await team.tag("NS-A")
        charger = await team.charger()
        async with online(server, charger, {"SendLocalList": [{"status": "NotSupported"}] * 3}) as cp:
            state = await until(lambda: _outcome(team, charger), "the refusal to be stored")
            assert (state["last_outcome"], state["enabled"], state["supported"]) == ("NotSupported", False, False)
            refused = await team.sync(charger)
            assert refused.status_code == 409, refused.text
            assert len(cp.sends()) == 1

    play(server, account, body)


async def _outcome(team: Team, charger: dict[str, Any]) -> dict[str, Any] | None:
    state = await team.local_list(charger)
    return state if state["last_outcome"] is not None else None


def test_a_forced_sync_sends_the_full_list_and_answers_409_while_the_charger_is_offline(
    server: LiveServer, account: Account
) -> None:
    """POST .../local-list/sync: a Full update now (its outcome in the answer); 409 for an offline charger."""

    async def body(team: Team) -> None:
        await team.tag("FS-A")
        charger = await team.charger()
        offline = await team.sync(charger)
        assert offline.status_code == 409, offline.text
        assert offline.json() == {"message": "The charger is offline."}
        async with online(server, charger) as cp:
            await until(lambda: _synced(team, charger, 1), "the first sync")
            forced = await team.sync(charger)
            assert forced.status_code == 200, forced.text
            assert forced.json()["data"]["last_outcome"] == "Accepted"
            assert forced.json()["data"]["version"] == 2
            assert [s["updateType"] for s in cp.sends()] == ["Full", "Full"]

    play(server, account, body)


def test_cut_off_from_the_server_the_charger_authorizes_from_the_list_it_was_sent(
    server: LiveServer, account: Account
) -> None:
    """§3.5.3: the list the server sent lets the charger start for an Accepted tag while it cannot connect
    (its password changed under it); a Blocked tag is refused; the StartTransaction reaches the server later."""

    async def body(team: Team) -> None:
        await team.tag("OFF-OK")
        await team.tag("OFF-NO", "Blocked")
        charger = await team.charger()
        async with online(server, charger) as cp:
            await until(lambda: _synced(team, charger, 1), "the first sync")
            secured = await team.client.put(
                f"{team.base}/chargers/{charger['id']}/ocpp", json={"security_profile": 1, "generate_password": True}
            )
            assert secured.status_code == 200, secured.text
            password = secured.json()["data"]["password"]
            restart = await team.client.post(
                f"{team.base}/chargers/{charger['id']}/commands/restart", json={"type": "Soft"}
            )
            assert restart.status_code == 200, restart.text
            await until(lambda: cp.connection_state != "accepted", "the charger to lose the server")
            await asyncio.sleep(0.3)
            assert cp.connection_state != "accepted"
            assert not cp.present_card(1, "OFF-NO")
            assert cp.present_card(1, "OFF-OK")
            await until(lambda: 1 in cp.transactions, "the local start")
            cp.password = password
            await until(lambda: cp.transactions.get(1) is not None, "the StartTransaction to be answered", 40)
            listed = await team.client.get(f"{team.base}/chargers/{charger['id']}/transactions")
            assert [t["id_tag"] for t in listed.json()["data"]] == ["OFF-OK"]

    play(server, account, body)


def test_a_forced_sync_the_charger_never_answers_is_a_504_and_audited(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """POST .../local-list/sync: no answer within VOLTLINE_OCPP_CALL_TIMEOUT → 504, outcome `timeout`."""
    with dedicated_server(fresh_database, tmp_path_factory, server.backend, ocpp_call_timeout=0.5) as live:
        account = live.account()

        async def body(team: Team) -> None:
            await team.tag("TO-A")
            charger = await team.charger()
            async with online(live, charger, ignore_calls=True):
                response = await team.sync(charger)
                assert response.status_code == 504, response.text
                assert response.json() == {"message": "The charger did not respond in time."}
                assert (await team.local_list(charger))["last_outcome"] == "timeout"
            log = await team.client.get(f"{team.base}/audit-log", params={"action": "charger.local_list_sync"})
            assert [row["outcome"] for row in log.json()["data"]] == ["timeout"]

        play(live, account, body)


def test_a_charger_of_a_team_without_tags_is_left_alone_until_the_first_tag_comes(
    server: LiveServer, account: Account
) -> None:
    """Nothing to hold: no call at boot; the team's first id tag brings the features read and a Full list."""

    async def body(team: Team) -> None:
        charger = await team.charger()
        async with online(server, charger) as cp:
            await asyncio.sleep(0.5)
            assert cp.list_calls == []
            assert (await team.local_list(charger))["supported"] is None
            await team.tag("FIRST")
            await until(cp.sends, "the Full list")
            assert [action for action, _ in cp.list_calls] == [
                "GetConfiguration",
                "GetLocalListVersion",
                "SendLocalList",
            ]
            assert tags_of(cp.sends()[0]) == [("FIRST", "Accepted")]

    play(server, account, body)


def test_an_update_cut_short_after_a_chunk_is_resumed_from_the_chunk_the_charger_took(
    server: LiveServer, account: Account
) -> None:
    """Each accepted chunk's version and entries are stored: after the second chunk of the Full update
    fails, the next sync finds the charger at the first chunk's version and sends only what is missing."""

    async def body(team: Team) -> None:
        for n in range(5):
            await team.tag(f"RS-{n}")
        charger = await team.charger()
        async with online(
            server, charger, {"SendLocalList": [None, {"status": "Failed"}]}, send_local_list_max_length=2
        ) as cp:
            state = await until(lambda: _outcome(team, charger), "the cut-short update")
            assert (state["last_outcome"], state["version"], state["entries"]) == ("Failed", 1, 2)
            assert sorted(cp.held()) == ["rs-0", "rs-1"]
            await team.tag("RS-5")
            await until(lambda: len(cp.sends()) == 4, "the resumed update")
            resumed = cp.sends()[2:]
            assert [(s["updateType"], s["listVersion"]) for s in resumed] == [("Differential", 2), ("Differential", 3)]
            assert [t for s in resumed for t, _ in tags_of(s)] == ["RS-2", "RS-3", "RS-4", "RS-5"]
            assert sorted(cp.held()) == [f"rs-{n}" for n in range(6)]
            state = await until(lambda: _synced(team, charger, 3), "the stored resumption")
            assert (state["last_outcome"], state["entries"]) == ("Accepted", 6)

    play(server, account, body)
