"""Diagnostics uploads end to end (docs/api.md "Diagnostics"; OCPP 1.6 §5.9 GetDiagnostics, §4.4).

A real charger (the simulator, or the `ocpp` package's ChargePoint) is asked over the API, gets
a one-time upload URL on the live server, uploads over real HTTP, and the file comes back through
the API. The failures leave nothing behind: a bad, spent or expired token, an oversize or a
cut-off upload, a charger that refuses or is offline. On SQLite and PostgreSQL (`server`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from sqlalchemy import select

from tests.clocked import ClockedServer, SteppedClock
from tests.conftest import LiveServer, server_settings
from tests.ocpp.gateway_support import dedicated_server, identity_only, rows, unique_identity
from tests.support.interop import SilentCharger, connected, scenario
from voltline.services.accounts import Account
from voltline.simulator import SimulatedCharger
from voltline.store.schema import diagnostics_files, diagnostics_requests

UPLOAD_PATH = "/uploads/diagnostics/"
WINDOW = {"start_time": "2026-12-01 00:00:00", "stop_time": "2026-12-02 12:30:00"}


class UploadCharger(ChargePoint):  # type: ignore[misc]
    """A charger that accepts GetDiagnostics, names a file, and remembers where it was told to upload."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[dict[str, Any]] = []

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, **payload: Any) -> Any:
        self.asked.append(payload)
        return call_result.GetDiagnostics(file_name="diag.tar.gz")


class LogCharger(ChargePoint):  # type: ignore[misc]
    """A charger with the Security Whitepaper's GetLog: accepts security logs, rejects diagnostics logs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[dict[str, Any]] = []

    @on(Action.get_log)
    def on_get_log(self, **payload: Any) -> Any:
        self.asked.append(payload)
        if payload["log_type"] != "SecurityLog":
            return call_result.GetLog(status="Rejected")
        return call_result.GetLog(status="Accepted", filename="security.zip")


class RefusingCharger(ChargePoint):  # type: ignore[misc]
    """A charger without the FirmwareManagement profile: GetDiagnostics is a CALLERROR NotSupported."""

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, **_payload: Any) -> Any:
        raise NotSupportedError("no diagnostics here")


def make_charger(server: LiveServer, account: Account) -> tuple[dict[str, Any], str]:
    """A charger of the account's team (identity only) and its API path."""
    with server.client(account) as api:
        made = api.post(f"/api/v2/teams/{account.team_id}/chargers", json={"identity": unique_identity("DG")})
        charger = identity_only(api, account, made.json()["data"])
    return charger, f"/api/v2/teams/{account.team_id}/chargers/{charger['id']}"


def request_rows(server: LiveServer, charger_id: int) -> list[dict[str, Any]]:
    query = select(diagnostics_requests).where(diagnostics_requests.c.charger_id == charger_id)
    return rows(server, query.order_by(diagnostics_requests.c.id))


def file_rows(server: LiveServer, charger_id: int) -> list[dict[str, Any]]:
    return rows(server, select(diagnostics_files).where(diagnostics_files.c.charger_id == charger_id))


def local(server: LiveServer, location: str) -> str:
    """The upload URL on the live server (a location built on VOLTLINE_PUBLIC_URL points elsewhere)."""
    return server.base_url + urlsplit(location).path


def cut_off_upload(server: LiveServer, location: str, declared: int, sent: bytes) -> None:
    """Announce `declared` bytes, send fewer, and close the connection (a dropped uplink)."""
    parts = urlsplit(local(server, location))
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=5) as raw:
        head = f"PUT {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {declared}\r\n\r\n"
        raw.sendall(head.encode() + sent)


async def request_upload(api: httpx.AsyncClient, base: str, charger: UploadCharger, **body: Any) -> str:
    """Ask for an upload; the location the charger got."""
    response = await api.post(f"{base}/commands/diagnostics", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Accepted", "data": {"file_name": "diag.tar.gz"}}
    return str(charger.asked[-1]["location"])


# -- the simulator ------------------------------------------------------------------------------


def test_the_simulator_uploads_its_file_and_the_api_returns_the_same_bytes(
    server: LiveServer, account: Account
) -> None:
    """§5.9: the simulator PUTs its file to `<location>/<fileName>`, reports Uploading then Uploaded."""
    charger, base = make_charger(server, account)
    identity = str(charger["identity"])

    async def body(api: httpx.AsyncClient) -> None:
        cp = SimulatedCharger(server.base_url.replace("http://", "ws://") + "/ocpp", identity, auto_sessions=False)
        stop = asyncio.Event()
        task = asyncio.create_task(cp.run(stop))
        try:
            await _until(lambda: cp.connection_state == "accepted")
            response = await api.post(f"{base}/commands/diagnostics", json=WINDOW)
            assert response.status_code == 200, response.text
            assert response.json() == {"message": "Accepted", "data": {"file_name": f"{identity}-diagnostics.txt"}}
            await _until(lambda: len(cp.uploaded) == 1)
            listed = await _listed(api, base, 1)
            download = await api.get(f"{base}/diagnostics-files/{listed[0]['uuid']}")
            ocpp = await _until_status(api, base, "Uploaded")
        finally:
            stop.set()
            await task
        sent = cp.uploaded[0][1]
        assert download.status_code == 200 and download.content == sent
        assert download.headers["content-type"].startswith("text/plain")
        assert re.fullmatch(rf"{identity}-\d{{8}}T\d{{6}}Z-diagnostics\.txt", listed[0]["file_name"])
        assert f'filename="{listed[0]["file_name"]}"' in download.headers["content-disposition"]
        assert (listed[0]["size"], listed[0]["sha256"]) == (len(sent), hashlib.sha256(sent).hexdigest())
        assert listed[0]["log_type"] == "diagnostics" and ocpp["diagnostics_status"] == "Uploaded"
        text = sent.decode()
        assert f"identity: {identity}" in text and "connector 2: Available" in text
        assert "window: 2026-12-01T00:00:00Z .. 2026-12-02T12:30:00Z" in text
        # The file came before the Uploaded notification: the request stays Received.
        assert [r["status"] for r in request_rows(server, charger["id"])] == ["Received"]

    scenario(server, account, body)


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def _listed(api: httpx.AsyncClient, base: str, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        listed: list[dict[str, Any]] = (await api.get(f"{base}/diagnostics-files")).json()["data"]
        if len(listed) >= count:
            return listed
        await asyncio.sleep(0.05)
    raise AssertionError("no file listed")


async def _until_status(api: httpx.AsyncClient, base: str, status: str) -> dict[str, Any]:
    for _ in range(200):
        ocpp: dict[str, Any] = (await api.get(f"{base}/ocpp")).json()["data"]
        if ocpp["diagnostics_status"] == status:
            return ocpp
        await asyncio.sleep(0.05)
    raise AssertionError(f"diagnostics status never became {status}")


def test_the_simulator_uploads_its_security_log(server: LiveServer, account: Account) -> None:
    """Security Whitepaper GetLog (SecurityLog): the simulator answers its filename and uploads the log."""
    charger, base = make_charger(server, account)
    identity = str(charger["identity"])

    async def body(api: httpx.AsyncClient) -> None:
        cp = SimulatedCharger(server.base_url.replace("http://", "ws://") + "/ocpp", identity, auto_sessions=False)
        stop = asyncio.Event()
        task = asyncio.create_task(cp.run(stop))
        try:
            await _until(lambda: cp.connection_state == "accepted")
            response = await api.post(f"{base}/commands/diagnostics", json={"log_type": "security"})
            assert response.status_code == 200, response.text
            assert response.json() == {"message": "Accepted", "data": {"file_name": f"{identity}-security.txt"}}
            await _until(lambda: len(cp.uploaded) == 1)
            listed = await _listed(api, base, 1)
            download = await api.get(f"{base}/diagnostics-files/{listed[0]['id']}")
        finally:
            stop.set()
            await task
        assert download.content == cp.uploaded[0][1]
        assert listed[0]["log_type"] == "security" and listed[0]["file_name"].endswith("-security.txt")

    scenario(server, account, body)


def test_get_log_names_the_request_and_its_notifications_update_it(server: LiveServer, account: Account) -> None:
    """GetLog carries logType SecurityLog and our request's id; LogStatusNotification's requestId finds it."""
    charger, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, str(charger["identity"]), LogCharger) as cp:
            response = await api.post(f"{base}/commands/diagnostics", json={"log_type": "security", **WINDOW})
            assert (response.status_code, response.json()) == (
                200,
                {"message": "Accepted", "data": {"file_name": "security.zip"}},
            )
            first = request_rows(server, charger["id"])[-1]
            assert (first["log_type"], first["status"]) == ("security", "Requested")
            await api.post(f"{base}/commands/diagnostics", json={"log_type": "security"})
            await cp.call(call.LogStatusNotification(status="Uploading", request_id=first["id"]))
            statuses = [r["status"] for r in request_rows(server, charger["id"])]
            assert statuses == ["Uploading", "Requested"]
            # An id that names none of its requests: the latest one.
            await cp.call(call.LogStatusNotification(status="NotSupportedOperation", request_id=2_000_000_000))
            statuses = [r["status"] for r in request_rows(server, charger["id"])]
            assert statuses == ["Uploading", "NotSupportedOperation"]
            rejected = await api.post(f"{base}/commands/diagnostics", json={})
        assert cp.asked[0] == {
            "log_type": "SecurityLog",
            "request_id": first["id"],
            "log": {
                "remote_location": cp.asked[0]["log"]["remote_location"],
                "oldest_timestamp": "2026-12-01T00:00:00Z",
                "latest_timestamp": "2026-12-02T12:30:00Z",
            },
        }
        assert cp.asked[0]["log"]["remote_location"].startswith(server.base_url + UPLOAD_PATH)
        # A charger without GetDiagnostics refuses the diagnostics log: 409, no request left.
        assert rejected.status_code == 409
        assert len(request_rows(server, charger["id"])) == 2

    scenario(server, account, body)


# -- the upload target ----------------------------------------------------------------------------


def test_a_multipart_upload_is_stored_once_and_bad_or_spent_tokens_store_nothing(
    server: LiveServer, account: Account
) -> None:
    """A one-time token: a made-up one is a 404; once an upload spent it, the next one is a 404 too."""
    charger, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, str(charger["identity"]), UploadCharger) as cp:
            location = await request_upload(api, base, cp, **WINDOW)
            for status in ("Uploading", "UploadFailed"):
                await cp.call(call.DiagnosticsStatusNotification(status=status))
                assert request_rows(server, charger["id"])[-1]["status"] == status
        assert cp.asked == [
            {"location": location, "start_time": "2026-12-01T00:00:00Z", "stop_time": "2026-12-02T12:30:00Z"}
        ]
        assert location.startswith(server.base_url + UPLOAD_PATH)
        token = location.rsplit("/", 1)[1]
        assert len(token) >= 43 and token not in str(request_rows(server, charger["id"]))
        async with httpx.AsyncClient(timeout=30) as uploader:
            made_up = await uploader.put(server.base_url + UPLOAD_PATH + "x" * 43, content=b"forged")
            files = {"file": ("diag.tar.gz", b"\x1f\x8b payload", "application/gzip")}
            first = await uploader.post(location, files=files, data={"note": "from the charger"})
            again = await uploader.put(location, content=b"second")
            again_multipart = await uploader.post(location, files=files)
        assert (made_up.status_code, first.status_code) == (404, 201)
        assert (again.status_code, again_multipart.status_code) == (404, 404)
        listed = await _listed(api, base, 1)
        assert len(listed) == 1 and listed[0]["file_name"].endswith("-diagnostics.tar.gz")
        assert listed[0]["content_type"] == "application/gzip"
        download = await api.get(f"{base}/diagnostics-files/{listed[0]['id']}")
        assert download.content == b"\x1f\x8b payload"
        assert request_rows(server, charger["id"])[-1]["status"] == "Received"

    scenario(server, account, body)


def test_the_message_log_keeps_the_upload_url_without_its_token(server: LiveServer, account: Account) -> None:
    """The one-time token is a credential: the logged GetDiagnostics shows `<token>` in its place."""
    charger, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> str:
        async with connected(server, str(charger["identity"]), UploadCharger) as cp:
            return await request_upload(api, base, cp)

    location = scenario(server, account, body)
    server.run(server.runtime.writer.flush)  # the message log is written by the next flush; nobody waits for it
    with server.client(account) as api:
        logged = api.get(f"{base}/logs", params={"action": "GetDiagnostics"}).json()["data"]
    [payload] = [str(row["payload"]) for row in logged if row["direction"] == "out"]
    token = location.rsplit("/", 1)[1]
    assert token not in payload
    assert location.replace(token, "<token>").split("://", 1)[1] in payload


def test_an_upload_over_the_api_body_limit_is_taken_and_a_cut_off_one_leaves_nothing(
    server: LiveServer, account: Account
) -> None:
    """VOLTLINE_MAX_BODY_BYTES (1 MiB) does not cap uploads; a dropped connection stores nothing, spends nothing."""
    charger, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, str(charger["identity"]), UploadCharger) as cp:
            location = await request_upload(api, base, cp)
        cut_off_upload(server, location, 5000, b"x" * 100)
        await asyncio.sleep(0.5)
        assert file_rows(server, charger["id"]) == []
        assert request_rows(server, charger["id"])[-1]["status"] == "Requested"
        big = bytes(range(256)) * (9 * 1024)  # 2.25 MiB
        async with httpx.AsyncClient(timeout=30) as uploader:
            response = await uploader.put(location + "/diag.zip", content=big)
        assert response.status_code == 201, response.text
        listed = await _listed(api, base, 1)
        assert listed[0]["file_name"].endswith(".zip") and listed[0]["size"] == len(big)
        assert (await api.get(f"{base}/diagnostics-files/{listed[0]['uuid']}")).content == big

    scenario(server, account, body)


# -- refusals ---------------------------------------------------------------------------------------


def test_a_charger_that_refuses_or_is_offline_is_a_409_and_leaves_no_request(
    server: LiveServer, account: Account
) -> None:
    """A CALLERROR NotSupported is the charger's refusal, not a failure of Voltline: 409, like offline."""
    charger, base = make_charger(server, account)

    async def body(api: httpx.AsyncClient) -> list[httpx.Response]:
        offline = await api.post(f"{base}/commands/diagnostics", json={})
        async with connected(server, str(charger["identity"]), RefusingCharger):
            refused = await api.post(f"{base}/commands/diagnostics", json={"log_type": "diagnostics"})
        return [offline, refused]

    offline, refused = scenario(server, account, body)
    assert (offline.status_code, offline.json()) == (409, {"message": "The charger is offline."})
    assert refused.status_code == 409 and "NotSupported" in refused.json()["message"]
    assert request_rows(server, charger["id"]) == []


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"start_time": "2026-12-02 00:00:00", "stop_time": "2026-12-01 00:00:00"},
            {"stop_time": ["The stop time field must be a date after start time."]},
        ),
        (
            {"start_time": "2026-12-02T00:00:00Z"},
            {"start_time": ["The start time field must match the format Y-m-d H:i:s."]},
        ),
        ({"stop_time": "yesterday"}, {"stop_time": ["The stop time field must match the format Y-m-d H:i:s."]}),
        ({"log_type": "kernel"}, {"log_type": ["The selected log type is invalid."]}),
    ],
)
def test_bad_input_is_a_laravel_422(
    server: LiveServer, account: Account, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    charger, base = make_charger(server, account)
    with server.client(account) as api:
        response = api.post(f"{base}/commands/diagnostics", json=body)
    assert (response.status_code, response.json()["errors"]) == (422, errors)
    assert request_rows(server, charger["id"]) == []


def test_a_team_sees_only_its_own_files(server: LiveServer, account: Account) -> None:
    """Tenancy: another team's file, or this team's file under its other charger, is a 404."""
    charger, base = make_charger(server, account)
    _, other_base = make_charger(server, account)
    stranger = server.account("Stranger")
    _, stranger_base = make_charger(server, stranger)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(server, str(charger["identity"]), UploadCharger) as cp:
            location = await request_upload(api, base, cp)
        async with httpx.AsyncClient(timeout=30) as uploader:
            assert (await uploader.put(location, content=b"mine")).status_code == 201

    scenario(server, account, body)
    with server.client(account) as api:
        file_uuid = api.get(f"{base}/diagnostics-files").json()["data"][0]["uuid"]
        assert api.get(f"{other_base}/diagnostics-files/{file_uuid}").status_code == 404
        assert api.get(f"{other_base}/diagnostics-files").json()["data"] == []
        assert api.get(f"{base}/diagnostics-files/{file_uuid}").content == b"mine"
    with server.client(stranger) as api:
        assert api.get(f"{stranger_base}/diagnostics-files/{file_uuid}").status_code == 404
        assert api.get(f"{base}/diagnostics-files").status_code == 403


# -- a server of its own: small cap, short deadlines, a public URL -----------------------------------


@pytest.fixture(scope="module")
def small(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Uploads capped at 1000 bytes, calls timed out after 1 s, headers and API bodies after 1 s, uploads after 10 s."""
    with dedicated_server(
        fresh_database,
        tmp_path_factory,
        server.backend,
        upload_max_bytes=1000,
        ocpp_call_timeout=1.0,
        http_header_timeout=1.0,
        http_body_timeout=1.0,
        upload_body_timeout=10.0,
        public_url="https://cpms.example.com",
    ) as live:
        yield live


def test_an_oversize_upload_is_a_413_and_stores_nothing(small: LiveServer) -> None:
    """VOLTLINE_UPLOAD_MAX_BYTES: one byte over (announced, streamed, multipart) is refused; the cap is taken."""
    account = small.account()
    charger, base = make_charger(small, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(small, str(charger["identity"]), UploadCharger) as cp:
            location = await request_upload(api, base, cp)
        assert location.startswith("https://cpms.example.com" + UPLOAD_PATH)
        target = local(small, location)

        async def streamed() -> Any:
            for _ in range(11):
                yield b"y" * 91

        async with httpx.AsyncClient(timeout=30) as uploader:
            statuses = [
                (await uploader.put(target, content=b"x" * 1001)).status_code,
                (await uploader.put(target, content=streamed())).status_code,
                (await uploader.post(target, files={"file": ("d.log", b"z" * 1001)})).status_code,
            ]
            assert file_rows(small, charger["id"]) == []
            statuses.append((await uploader.put(target, content=b"x" * 1000)).status_code)
        assert statuses == [413, 413, 413, 201]
        assert [f["size"] for f in file_rows(small, charger["id"])] == [1000]

    scenario(small, account, body)


def test_an_upload_gets_its_own_body_deadline(small: LiveServer) -> None:
    """http_protocol.py: a body slower than VOLTLINE_HTTP_BODY_TIMEOUT is still taken under /uploads/."""
    account = small.account()
    charger, base = make_charger(small, account)

    async def body(api: httpx.AsyncClient) -> None:
        async with connected(small, str(charger["identity"]), UploadCharger) as cp:
            location = await request_upload(api, base, cp)

        async def slowly() -> Any:
            yield b"a" * 100
            await asyncio.sleep(2.5)
            yield b"b" * 100

        async with httpx.AsyncClient(timeout=30) as uploader:
            response = await uploader.put(local(small, location), content=slowly())
        assert response.status_code == 201, response.text

    scenario(small, account, body)


def test_a_charger_that_does_not_answer_is_a_504(small: LiveServer) -> None:
    account = small.account()
    charger, base = make_charger(small, account)

    async def body(api: httpx.AsyncClient) -> httpx.Response:
        async with connected(small, str(charger["identity"]), SilentCharger):
            return await api.post(f"{base}/commands/diagnostics", json={})

    response = scenario(small, account, body)
    assert (response.status_code, response.json()) == (504, {"message": "The charger did not respond in time."})


def test_a_token_expires_after_a_day(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """services/diagnostics.py TOKEN_LIFETIME: 24 h on the runtime clock, then the upload is a 404."""
    data = str(tmp_path_factory.mktemp("data"))
    clock = SteppedClock()
    live = ClockedServer(server_settings(fresh_database(server.backend), data), server.backend, clock=clock)
    live.start()
    try:
        account = live.account()
        charger, base = make_charger(live, account)

        async def body(api: httpx.AsyncClient) -> list[int]:
            async with connected(live, str(charger["identity"]), UploadCharger) as cp:
                first = await request_upload(api, base, cp)
                second = await request_upload(api, base, cp)
            live.run(lambda: clock.advance(24 * 3600 - 1))
            async with httpx.AsyncClient(timeout=30) as uploader:
                in_time = await uploader.put(first, content=b"in time")
            live.run(lambda: clock.advance(2))
            async with httpx.AsyncClient(timeout=30) as uploader:
                late = await uploader.put(second, content=b"late")
            return [in_time.status_code, late.status_code]

        assert scenario(live, account, body) == [201, 404]
        assert [f["content"] for f in file_rows(live, charger["id"])] == [b"in time"]
    finally:
        live.stop()
