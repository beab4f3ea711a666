"""docs/deploy.md's recipe, run: HAProxy from docs/deploy/haproxy.cfg in front of `voltline serve` processes by role.

Two api and two gateway processes (DESIGN "Cluster") share one fresh PostgreSQL database and one
NATS subject prefix, trust the proxy (`VOLTLINE_TRUSTED_PROXIES`), and sit behind HAProxy, which
terminates TLS with a self-signed certificate made for this run, sends /ocpp to the gateways and
the rest to the api processes, and health-checks `/readyz`. Through the proxy: the REST API
answers over https and sees the client as https (its pagination links say so); a charger on
security profile 2 (HTTP Basic over TLS only) connects over wss://, and the same charger over
plain ws:// is refused even when it claims `X-Forwarded-Proto: https` itself; a command asked of
an api process reaches the gateway holding the socket over NATS. When that gateway and an api
process are killed, HAProxy marks them down, the charger reconnects through the proxy to the live
gateway, and a command through the proxy reaches it there. A gateway cut off from NATS (through
a TCP proxy the test cuts) stays alive but unready: HAProxy takes it out by its `/readyz` until
the bus is back. The recipe's worker process serves nothing behind the proxy and is left out
(smart charging is off).

Needs `VOLTLINE_TEST_POSTGRES_URL`, `VOLTLINE_TEST_NATS_URL` and Debian's `haproxy` (`.ci/run`
installs it when missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ocpp.v16 import call
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import NATS_URL, needs_cluster
from tests.support.cluster import ResettableCharger
from tests.support.fleet_login import basic_login
from tests.support.haproxy import HAPROXY, Haproxy, client_tls
from tests.support.killable_server import Fleet, KillableServer, seed_fleet
from tests.support.tcp_proxy import TcpProxy

METRICS_TOKEN = "deploy-recipe-metrics-token"
pytestmark = [
    pytest.mark.slow,
    needs_cluster,
    pytest.mark.skipif(not HAPROXY, reason="haproxy is not installed (`.ci/run` installs Debian's haproxy)"),
]


@dataclass
class Recipe:
    """The running recipe: the seeded fleet, the processes by documented server name, HAProxy, a client's TLS."""

    fleet: Fleet
    servers: dict[str, KillableServer]
    proxy: Haproxy
    tls: ssl.SSLContext
    gateway2_nats: TcpProxy  # gateway2 reaches NATS through it, so a test can cut that one process off

    @property
    def https_url(self) -> str:
        """The proxy's TLS address."""
        return f"https://127.0.0.1:{self.proxy.https_port}"

    @property
    def identity(self) -> str:
        """The first charger's identity."""
        return next(iter(self.fleet.chargers))

    @property
    def charger_id(self) -> int:
        """The first charger's API id."""
        return next(iter(self.fleet.chargers.values()))

    def wss_url(self, identity: str) -> str:
        """A charger's OCPP address at the proxy, over TLS."""
        return f"wss://127.0.0.1:{self.proxy.https_port}/ocpp/{identity}"

    def api(self, base_url: str) -> httpx.AsyncClient:
        """An API client of the fleet's team, on the proxy or on one process."""
        headers = {"Authorization": f"Bearer {self.fleet.account.token}", "Accept": "application/json"}
        return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=40, verify=self.tls)

    async def reset(self, base_url: str, kind: str) -> httpx.Response:
        """`POST .../commands/restart` asked at `base_url`."""
        async with self.api(base_url) as api:
            path = f"/api/v2/teams/{self.fleet.account.team_id}/chargers/{self.charger_id}/commands/restart"
            return await api.post(path, json={"type": kind})


@pytest.fixture
def recipe(fresh_database: Callable[[str], str], tmp_path: Path) -> Iterator[Recipe]:
    """api1, api2, gateway1 and gateway2 on one database and bus, behind HAProxy on the documented configuration."""
    url = fresh_database("postgres")
    fleet = asyncio.run(seed_fleet(url, 4, 64))
    nats = urlsplit(NATS_URL)
    gateway2_nats = TcpProxy(nats.hostname or "127.0.0.1", nats.port or 4222)
    gateway2_nats.restore()
    settings = {
        "VOLTLINE_BUS_URL": NATS_URL,
        "VOLTLINE_BUS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        "VOLTLINE_SMART_CONTROL": "false",
        "VOLTLINE_TRUSTED_PROXIES": "127.0.0.1",
        "VOLTLINE_HTTP_KEEP_ALIVE": "75",
        "VOLTLINE_METRICS_TOKEN": METRICS_TOKEN,
    }
    servers: dict[str, KillableServer] = {}
    for name in ("api1", "api2", "gateway1", "gateway2"):
        (tmp_path / name).mkdir()
        own = {"VOLTLINE_ROLE": name.rstrip("12")}
        if name == "gateway2":
            own["VOLTLINE_BUS_URL"] = f"nats://127.0.0.1:{gateway2_nats.port}"
        servers[name] = KillableServer(url, tmp_path / name, {**settings, **own})
    (tmp_path / "haproxy").mkdir()
    proxy = Haproxy(tmp_path / "haproxy", {name: server.port for name, server in servers.items()})
    try:
        for server in servers.values():
            server.start()
        proxy.start()
        yield Recipe(fleet, servers, proxy, client_tls(proxy.ca_file), gateway2_nats)
    finally:
        proxy.stop()
        for server in servers.values():
            server.stop()
        gateway2_nats.close()


@asynccontextmanager
async def booted(
    url: str,
    recipe: Recipe,
    tls: ssl.SSLContext | None,
    headers: dict[str, str] | None = None,
    identity: str | None = None,
) -> AsyncIterator[tuple[ResettableCharger, Any]]:
    """A charger (the first by default) connected at `url` with its HTTP Basic login, booted; with its client socket."""
    identity = identity or recipe.identity
    sent = {**basic_login(identity, recipe.fleet.password), **(headers or {})}
    async with connect(url, subprotocols=["ocpp1.6"], additional_headers=sent, ssl=tls) as ws:  # type: ignore[list-item]
        charger = ResettableCharger(identity, ws, response_timeout=10)
        task = asyncio.create_task(charger.start())
        answer = await charger.call(call.BootNotification(charge_point_model="Recipe", charge_point_vendor="test"))
        assert answer.status == "Accepted"
        try:
            yield charger, ws
        finally:
            task.cancel()


async def connected_chargers(recipe: Recipe, server: KillableServer) -> float:
    """`voltline_ocpp_connected_chargers` of one process, over every OCPP version."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        page = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert page.status_code == 200, page.text
    lines = [line for line in page.text.splitlines() if line.startswith("voltline_ocpp_connected_chargers{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


async def holder(recipe: Recipe) -> tuple[str, str]:
    """(the gateway holding the charger's socket, the other one), by their own metrics."""
    held = {name: await connected_chargers(recipe, recipe.servers[name]) for name in ("gateway1", "gateway2")}
    assert sorted(held.values()) == [0, 1], f"the charger should be on exactly one gateway: {held}"
    holding = max(held, key=lambda name: held[name])
    return holding, min(held, key=lambda name: held[name])


def test_https_through_the_proxy_reaches_the_api_which_sees_the_client_as_https(recipe: Recipe) -> None:
    """X-Forwarded-Proto from a trusted proxy (DESIGN "Charger security"): the absolute links say https."""

    async def scenario() -> None:
        sites = f"/api/v2/teams/{recipe.fleet.account.team_id}/sites"
        async with recipe.api(recipe.https_url) as api:
            through_proxy = await api.get(sites)
        assert through_proxy.status_code == 200, through_proxy.text
        assert [site["id"] for site in through_proxy.json()["data"]] == [recipe.fleet.site_id]
        assert through_proxy.json()["links"]["first"] == f"{recipe.https_url}{sites}?page=1"
        direct_url = recipe.servers["api1"].base_url
        async with recipe.api(direct_url) as api:
            direct = await api.get(sites)
        assert direct.json()["links"]["first"] == f"{direct_url}{sites}?page=1"

    asyncio.run(scenario())


def test_a_charger_over_wss_through_the_proxy_survives_the_loss_of_its_process(recipe: Recipe) -> None:
    """docs/deploy.md: TLS at the proxy, commands across processes, /readyz checks, reconnect to the live process."""

    async def scenario() -> None:
        async with recipe.api(recipe.https_url) as api:
            path = f"/api/v2/teams/{recipe.fleet.account.team_id}/chargers/{recipe.charger_id}/ocpp"
            profile = await api.put(path, json={"security_profile": 2})
        assert profile.status_code == 200 and profile.json()["data"]["security_profile"] == 2, profile.text

        plain = f"ws://127.0.0.1:{recipe.proxy.http_port}/ocpp/{recipe.identity}"
        with pytest.raises(InvalidStatus) as refused:
            async with booted(plain, recipe, None, {"X-Forwarded-Proto": "https"}):
                pass
        assert refused.value.response.status_code == 401, "profile 2 over ws://: the proxy sets the scheme itself"

        secure = recipe.wss_url(recipe.identity)
        async with booted(secure, recipe, recipe.tls) as (charger, ws):
            holding, other = await holder(recipe)
            answer = await recipe.reset(recipe.servers["api1"].base_url, "Hard")
            assert answer.status_code == 200 and answer.json()["message"] == "Accepted", answer.text
            assert charger.resets == ["Hard"], "asked of an api process, delivered by the gateway over NATS"

            recipe.servers[holding].kill()
            recipe.servers["api1"].kill()
            await asyncio.wait_for(ws.wait_closed(), 10)
        await asyncio.to_thread(
            recipe.proxy.wait_for,
            lambda states: states[f"gateways/{holding}"] == "DOWN" and states["api/api1"] == "DOWN",
            f"{holding} and api1 marked DOWN by their health checks",
        )

        async with booted(secure, recipe, recipe.tls) as (charger, _):
            assert await connected_chargers(recipe, recipe.servers[other]) == 1, "the reconnect lands on the live one"
            answer = await recipe.reset(recipe.https_url, "Soft")
            assert answer.status_code == 200 and answer.json()["message"] == "Accepted", answer.text
            assert charger.resets == ["Soft"], "through the proxy to api2, over NATS to the live gateway"

    asyncio.run(scenario())


def test_a_gateway_cut_off_from_nats_is_taken_out_by_readyz_and_put_back_when_it_returns(recipe: Recipe) -> None:
    """README "Health and readiness": a live process whose bus is down is unready; HAProxy sends chargers elsewhere.

    gateway2 keeps running (`/healthz` 200) while its NATS connection is cut; its `/readyz` turns
    503, HAProxy marks it DOWN, and every charger connecting meanwhile lands on gateway1 (by
    `leastconn` alone two of the four would have gone to gateway2). Once NATS is reachable again
    the gateway reconnects, its `/readyz` is 200 again and HAProxy marks it UP.
    """
    gateway2 = recipe.servers["gateway2"]
    recipe.gateway2_nats.cut()
    recipe.proxy.wait_for(lambda states: states["gateways/gateway2"] == "DOWN", "gateway2 DOWN")
    with httpx.Client(base_url=gateway2.base_url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        unready = client.get("/readyz")
    assert unready.status_code == 503 and unready.json()["bus"] == "disconnected", unready.text

    async def four_chargers() -> list[float]:
        async with contextlib.AsyncExitStack() as stack:
            for identity in recipe.fleet.chargers:
                await stack.enter_async_context(booted(recipe.wss_url(identity), recipe, recipe.tls, identity=identity))
            return [await connected_chargers(recipe, recipe.servers[name]) for name in ("gateway1", "gateway2")]

    assert asyncio.run(four_chargers()) == [4, 0]
    recipe.gateway2_nats.restore()
    recipe.proxy.wait_for(lambda states: states["gateways/gateway2"] == "UP", "gateway2 UP again")
