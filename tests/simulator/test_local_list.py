"""The simulated charger's local authorization list (OCPP 1.6 §3.5.3, §5.10, §5.15, §6.43)."""

from __future__ import annotations

from typing import Any

from tests.simulator import CentralSystem, charger, run, running, station


def entry(id_tag: str, status: str | None = "Accepted", **info: Any) -> dict[str, Any]:
    if status is None:
        return {"idTag": id_tag}
    return {"idTag": id_tag, "idTagInfo": {"status": status, **info}}


def send(version: int, kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"listVersion": version, "updateType": kind, "localAuthorizationList": list(entries)}


def test_full_and_differential_updates_follow_versions() -> None:
    """§6.43: a Differential whose version is not above the list's is a VersionMismatch; no idTagInfo removes."""

    async def scenario() -> None:
        async with station("CP-LL-1") as (csms, cp):
            assert await csms.result(cp.identity, "GetLocalListVersion", {}) == {"listVersion": 0}
            full = send(3, "Full", entry("A"), entry("B", "Expired"))
            assert await csms.result(cp.identity, "SendLocalList", full) == {"status": "Accepted"}
            assert await csms.result(cp.identity, "GetLocalListVersion", {}) == {"listVersion": 3}
            stale = send(3, "Differential", entry("C"))
            assert await csms.result(cp.identity, "SendLocalList", stale) == {"status": "VersionMismatch"}
            diff = send(4, "Differential", entry("A", None), entry("C", "Blocked"))
            assert await csms.result(cp.identity, "SendLocalList", diff) == {"status": "Accepted"}
            assert sorted(cp.local_list.entries) == ["b", "c"]
            assert cp.local_list.version == 4

    run(scenario)


def test_a_list_over_the_limits_fails_and_a_charger_without_the_feature_answers_not_supported() -> None:
    """§5.15: Failed when the list would exceed LocalAuthListMaxLength; §5.10: -1 without the feature."""

    async def scenario() -> None:
        async with station("CP-LL-2", local_list_max_length=2, send_local_list_max_length=2) as (csms, cp):
            three = send(1, "Full", entry("A"), entry("B"), entry("C"))
            assert await csms.result(cp.identity, "SendLocalList", three) == {"status": "Failed"}
            assert await csms.result(cp.identity, "SendLocalList", send(1, "Full", entry("A"), entry("B"))) == {
                "status": "Accepted"
            }
            assert await csms.result(cp.identity, "SendLocalList", send(2, "Differential", entry("C"))) == {
                "status": "Failed"
            }
            assert cp.local_list.version == 1
        async with station("CP-LL-3", local_auth_list=False) as (csms, cp):
            assert await csms.result(cp.identity, "GetLocalListVersion", {}) == {"listVersion": -1}
            assert await csms.result(cp.identity, "SendLocalList", send(1, "Full", entry("A"))) == {
                "status": "NotSupported"
            }
            keys = await csms.result(cp.identity, "GetConfiguration", {"key": ["LocalAuthListEnabled"]})
            assert keys["unknownKey"] == ["LocalAuthListEnabled"]
            profiles = await csms.result(cp.identity, "GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
            assert "LocalAuthListManagement" not in profiles["configurationKey"][0]["value"]

    run(scenario)


def test_a_switched_off_list_answers_not_supported() -> None:
    """§5.15: NotSupported while LocalAuthListEnabled is false."""

    async def scenario() -> None:
        async with station("CP-LL-4") as (csms, cp):
            change = {"key": "LocalAuthListEnabled", "value": "false"}
            assert await csms.result(cp.identity, "ChangeConfiguration", change) == {"status": "Accepted"}
            assert await csms.result(cp.identity, "SendLocalList", send(1, "Full", entry("A"))) == {
                "status": "NotSupported"
            }
            assert await csms.result(cp.identity, "GetLocalListVersion", {}) == {"listVersion": -1}

    run(scenario)


def test_offline_the_charger_authorizes_from_its_list_and_sends_the_start_once_back() -> None:
    """§3.5.3: with LocalAuthorizeOffline, a listed Accepted tag starts while the server is unreachable;
    Blocked, expired and unlisted tags do not; the StartTransaction waits in the outbox until the next boot."""

    async def scenario() -> None:
        async with CentralSystem() as csms:
            cp = charger(csms, "CP-LL-5")
            async with running(cp, csms):
                listed = send(
                    1,
                    "Full",
                    entry("GOOD"),
                    entry("BAD", "Blocked"),
                    entry("OLD", "Accepted", expiryDate="2000-01-01T00:00:00Z"),
                )
                assert await csms.result(cp.identity, "SendLocalList", listed) == {"status": "Accepted"}
                csms.password = "locked-out-for-a-while"  # reconnects are refused: the server is unreachable
                await csms.drop(cp.identity)
                await csms.until(lambda: cp.connection_state != "accepted")
                assert not cp.present_card(1, "BAD")
                assert not cp.present_card(1, "OLD")
                assert not cp.present_card(1, "NOBODY")
                assert cp.present_card(1, "good")  # CiString20: compared case-insensitively
                await csms.until(lambda: 1 in cp.transactions)
                assert cp.connection_state != "accepted"
                starts_offline = len(csms.calls("StartTransaction", cp.identity))
                assert starts_offline == 0
                csms.password = None
                await csms.until(lambda: cp.transactions.get(1) is not None, timeout=15)
                starts = csms.calls("StartTransaction", cp.identity)
                assert [s["idTag"] for s in starts] == ["good"]
                assert csms.calls("Authorize", cp.identity) == []
            assert csms.violations == []

    run(scenario)
