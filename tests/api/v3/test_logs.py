"""v3 OCPP logs (spec volttime-v3 §3.12): calls paired with their answers, filtered, newest first.

Frames are written through the batched writer as the gateway logs them (tests/api/test_logs.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.api.test_logs import T0, entry, new_charger, write_log
from tests.api.v3.support import V3, get
from tests.conftest import LiveServer
from voltline.services.accounts import Account


def profile() -> str:
    """A SetChargingProfile payload as J reads it back (camelCase OCPP)."""
    return (
        '{"connectorId":1,"csChargingProfiles":{"chargingProfileId":7,"stackLevel":1,'
        '"chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Absolute",'
        '"chargingSchedule":{"chargingRateUnit":"A","chargingSchedulePeriod":[{"startPeriod":0,"limit":16}]}}}'
    )


def test_calls_are_paired_with_their_answers_and_filtered(
    server: LiveServer, api: httpx.Client, account: Account
) -> None:
    charger = new_charger(server, account.team_id)
    frames = [
        entry(charger, 1, "Heartbeat"),
        entry(charger, 2, None, message_type=3, direction="out", message_id="msg-1", payload='{"currentTime":"x"}'),
        entry(charger, 3, "SetChargingProfile", direction="out", message_id="p-1", payload=profile()),
        entry(charger, 4, None, message_type=3, direction="in", message_id="p-1", payload='{"status":"Accepted"}'),
        entry(charger, 5, "Reset", direction="out", message_id="r-1", payload='{"type":"Soft"}'),
        entry(charger, 6, "MeterValues", message_id="mv-1", payload='{"connectorId":1,"meterValue":[]}'),
        entry(charger, 7, None, message_type=4, direction="out", message_id="mv-1", payload='["x","NotImplemented"]'),
    ]
    write_log(server, frames)
    url = f"{V3}/chargers/{charger['uuid']}/logs"
    listed = get(api, url)
    assert [e["method"] for e in listed["data"]] == ["MeterValues", "Reset", "SetChargingProfile", "Heartbeat"]
    assert listed["filter_options"] == {"methods": ["Heartbeat", "MeterValues", "Reset", "SetChargingProfile"]}
    by_method: dict[str, Any] = {e["method"]: e for e in listed["data"]}
    assert by_method["Heartbeat"] | {"id": 0} == {
        "id": 0,
        "charger_id": charger["id"],
        "status": "done",
        "version": "1.6",
        "method": "Heartbeat",
        "destination": "centralsystem",
        "params": {"n": 1},
        "result": {"currentTime": "x"},
        "created_at": "2025-03-31T12:00:01.000000Z",
        "updated_at": "2025-03-31T12:00:02.000000Z",
    }
    charge_profile = by_method["SetChargingProfile"]
    assert charge_profile["destination"] == "charger" and charge_profile["status"] == "done"
    assert (
        charge_profile["params"]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16
    )
    assert by_method["Reset"]["status"] == "pending" and by_method["Reset"]["result"] is None
    assert by_method["MeterValues"]["status"] == "failed"

    def methods(**query: str) -> list[str]:
        return [e["method"] for e in get(api, url, **query)["data"]]

    assert methods(**{"filter[method]": "Reset"}) == ["Reset"]
    assert methods(**{"filter[status]": "pending"}) == ["Reset"]
    assert methods(**{"filter[status]": "failed"}) == ["MeterValues"]
    assert methods(**{"filter[status]": "done"}) == ["SetChargingProfile", "Heartbeat"]
    assert methods(**{"filter[destination]": "charger"}) == ["Reset", "SetChargingProfile"]
    assert methods(**{"filter[hide_insignificant]": "1"}) == ["Reset", "Heartbeat"]
    assert methods(sort="created_at") == ["Heartbeat", "SetChargingProfile", "Reset", "MeterValues"]
    later = (T0 + timedelta(seconds=4)).strftime("%Y-%m-%d %H:%M:%S")
    assert methods(**{"filter[date_from]": later}) == ["MeterValues", "Reset"]
    assert methods(**{"filter[date_to]": "2025-03-30"}) == []
    assert methods(**{"filter[date_to]": "2025-03-31"}) == ["MeterValues", "Reset", "SetChargingProfile", "Heartbeat"]
    first = get(api, url, per_page=3)
    assert first["links"]["next"] is not None and get(api, url, per_page=3, page=2)["links"]["next"] is None
    assert get(api, url, per_page=3, page=3)["data"] == []
    bad = api.get(url, params={"filter[date_from]": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["errors"] == {
        "filter[date_from]": ["The filter[date_from] field must match the format Y-m-d H:i:s."]
    }
    assert api.get(url, params={"filter[status]": "lost"}).status_code == 422
