"""Housekeeping: the OCPP log kept a set number of days; upload requests whose token expired unused."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from tests.conftest import LiveServer
from voltline.services.maintenance import Housekeeping, purge_expired_log
from voltline.store import diagnostics as diagnostics_store
from voltline.store.schema import diagnostics_requests, ocpp_messages


def test_log_entries_older_than_the_retention_are_purged(server: LiveServer) -> None:
    account = server.account()
    with server.client(account) as client:
        charger = client.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": f"RET-{account.user_id}"})
    charger_id = charger.json()["data"]["id"]
    now = server.runtime.clock.now()
    days = server.settings.ocpp_log_retention_days
    ages = {"old": now - timedelta(days=days, minutes=1), "recent": now - timedelta(days=days - 1)}

    async def scenario() -> tuple[int, list[str]]:
        async with server.runtime.db.write() as conn:
            for name, created in ages.items():
                row = {"charger_id": charger_id, "direction": "in", "message_type": 2, "message_id": name}
                await conn.execute(
                    insert(ocpp_messages).values(**row, action="Heartbeat", payload="{}", created_at=created)
                )
        removed = await purge_expired_log(server.runtime)
        async with server.runtime.db.read() as conn:
            query = select(ocpp_messages.c.message_id).where(ocpp_messages.c.charger_id == charger_id)
            left = [str(value) for value in (await conn.execute(query)).scalars()]
        return removed, left

    removed, left = server.run(scenario)
    assert removed >= 1
    assert left == ["recent"]


def test_housekeeping_forgets_upload_requests_whose_token_expired_without_a_file(server: LiveServer) -> None:
    """services/diagnostics.py: a request that can take no upload any more goes; one whose file came stays."""
    account = server.account()
    with server.client(account) as client:
        made = client.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": f"DGP-{account.user_id}"})
    charger_id = made.json()["data"]["id"]
    now = server.runtime.clock.now()

    async def add(name: str, expires_at: datetime, with_file: bool) -> None:
        request = {"charger_id": charger_id, "team_id": account.team_id, "log_type": "diagnostics"}
        request |= {"status": "Requested", "file_name": name, "expires_at": expires_at}
        async with server.runtime.db.write() as conn:
            row = await diagnostics_store.insert_request(conn, request)
            if with_file:
                file = {"request_id": row["id"], "charger_id": charger_id, "team_id": account.team_id}
                file |= {"file_name": name, "content_type": "text/plain", "size": 1, "sha256": "0" * 64}
                await diagnostics_store.insert_file(conn, {**file, "content": b"x"}, now)

    async def names() -> list[str]:
        async with server.runtime.db.read() as conn:
            query = select(diagnostics_requests.c.file_name).where(diagnostics_requests.c.charger_id == charger_id)
            return sorted(str(name) for name in (await conn.execute(query)).scalars())

    async def scenario() -> list[str]:
        await add("expired-empty", now - timedelta(minutes=1), with_file=False)
        await add("expired-with-file", now - timedelta(minutes=1), with_file=True)
        await add("open", now + timedelta(hours=1), with_file=False)
        housekeeping = Housekeeping(server.runtime)
        await housekeeping.start()
        try:
            for _ in range(200):
                if "expired-empty" not in await names():
                    break
                await asyncio.sleep(0.02)
        finally:
            await housekeeping.stop()
        return await names()

    assert server.run(scenario) == ["expired-with-file", "open"]
