"""Housekeeping: OCPP log retention (the message log is kept for a configurable number of days)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from tests.conftest import LiveServer
from voltline.services.maintenance import purge_expired_log
from voltline.store.schema import ocpp_messages


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
