"""wss:// through uvicorn's TLS options: OCPP security profile 2, HTTP Basic over TLS (DESIGN: Charger security)."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from tests.conftest import LiveServer, server_settings
from tests.ocpp.gateway_support import basic_auth, unique_identity

PASSWORD = "a-password-for-tls-only"


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_a_profile_2_charger_boots_over_wss(fresh_database: Callable[[str], str], tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = server_settings(
        fresh_database("sqlite"), str(tmp_path / "data"), ssl_certfile=str(cert), ssl_keyfile=str(key)
    )
    live = LiveServer(settings, "sqlite")
    live.start()
    try:
        account = live.account()
        identity = unique_identity("TLS")
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(
            base_url=live.base_url, verify=context, headers={"Authorization": f"Bearer {account.token}"}
        ) as api:
            response = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": identity})
            assert response.status_code == 201
            security = {"security_profile": 2, "password": PASSWORD}
            path = f"/api/v2/teams/{account.team_id}/chargers/{response.json()['data']['id']}/ocpp"
            assert api.put(path, json=security).json()["data"]["security_profile"] == 2

        async def boot() -> list[object]:
            url = live.base_url.replace("https://", "wss://") + f"/ocpp/{identity}"
            login = basic_auth(identity, PASSWORD)
            async with connect(
                url, subprotocols=["ocpp1.6"], ssl=context, compression=None, additional_headers=login
            ) as ws:  # type: ignore[list-item]
                await ws.send(
                    json.dumps([2, "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}])
                )
                answer: list[object] = json.loads(await ws.recv())
                return answer

        answer = asyncio.run(boot())
        assert answer[0] == 3 and answer[1] == "1"
        assert answer[2]["status"] == "Accepted"  # type: ignore[index]
    finally:
        live.stop()


def test_plain_ws_is_not_served_on_a_tls_port(fresh_database: Callable[[str], str], tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = server_settings(
        fresh_database("sqlite"), str(tmp_path / "data"), ssl_certfile=str(cert), ssl_keyfile=str(key)
    )
    live = LiveServer(settings, "sqlite")
    live.start()
    try:
        url = live.base_url.replace("https://", "ws://") + "/ocpp/anything"

        async def plain() -> None:
            async with connect(url, subprotocols=["ocpp1.6"], open_timeout=3):  # type: ignore[list-item]
                pass

        with pytest.raises(InvalidMessage):  # the TLS port does not speak plain HTTP
            asyncio.run(plain())
    finally:
        live.stop()
