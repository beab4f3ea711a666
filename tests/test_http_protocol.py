"""Slow and oversized HTTP requests are cut off (http_protocol.py; README "Running behind a proxy").

Raw sockets play the slow clients against a live server with short deadlines: the request
line and headers within 0.5 s, the body within 0.8 s, headers up to 4 KiB, keep-alive 1 s.
These tests wait on the wall clock because the deadlines are uvicorn transport timers, which
the injectable clock does not drive; each wait is bounded and under two seconds.
"""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import LiveServer
from tests.ocpp.gateway_support import Raw, dedicated_server, open_charger, team_charger
from voltline.services.accounts import Account

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.8
LIMITS = {
    "http_header_timeout": HEADER_TIMEOUT,
    "http_body_timeout": BODY_TIMEOUT,
    "http_max_header_bytes": 4096,
    "http_keep_alive": 1,
}


@pytest.fixture(scope="module")
def strict(fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with short HTTP deadlines."""
    with dedicated_server(fresh_database, tmp_path_factory, "sqlite", **LIMITS) as live:
        yield live


def connect(live: LiveServer) -> socket.socket:
    """A raw TCP connection to the server."""
    host, port = live.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started, received = time.monotonic(), b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    return received, time.monotonic() - started


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and a Content-Length body) from a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(strict: LiveServer) -> None:
    received, waited = read_until_closed(connect(strict))
    assert received == b""
    assert HEADER_TIMEOUT - 0.1 <= waited < HEADER_TIMEOUT + 1.5


def test_half_a_request_line_is_answered_408_and_closed(strict: LiveServer) -> None:
    sock = connect(strict)
    sock.sendall(b"GET /healthz HT")
    received, waited = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close\r\n" in received
    assert received.endswith(b'\r\n\r\n{"message":"Request timeout."}')
    assert HEADER_TIMEOUT - 0.1 <= waited < HEADER_TIMEOUT + 1.5


def test_headers_trickled_line_by_line_still_meet_the_deadline(strict: LiveServer) -> None:
    """Slowloris: bytes that keep coming do not move the deadline, which counts from the connection's start."""
    sock = connect(strict)
    started, lines = time.monotonic(), 0
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    while not select.select([sock], [], [], 0.05)[0] and lines < 80:  # at most 4 s
        sock.sendall(b"X-Slow: 1\r\n")
        lines += 1
    received, _ = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert HEADER_TIMEOUT - 0.1 <= time.monotonic() - started < HEADER_TIMEOUT + 1.5
    assert lines >= 5  # the client was still sending when it was cut off


def test_half_a_body_is_answered_408_and_closed_without_a_server_error(
    strict: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    account = strict.account()
    sock = connect(strict)
    head = f"POST /api/v2/teams HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {account.token}\r\n"
    sock.sendall(head.encode() + b"Content-Type: application/json\r\nContent-Length: 40\r\n\r\n" + b'{"name": "Sl')
    with caplog.at_level(logging.ERROR):
        received, waited = read_until_closed(sock)
        time.sleep(0.1)  # the handler sees the disconnect after the close
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert BODY_TIMEOUT - 0.1 <= waited < BODY_TIMEOUT + 1.5
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_a_body_after_an_early_answer_is_cut_off_too(strict: LiveServer) -> None:
    """A 401 goes out before the body is read; the rest of the body must still arrive in time."""
    sock = connect(strict)
    sock.sendall(b"POST /api/v2/teams HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{")
    received, waited = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 401 ")
    assert b"408" not in received  # one answer per request
    assert BODY_TIMEOUT - 0.1 <= waited < BODY_TIMEOUT + 1.5


@pytest.mark.parametrize("end", [b"\r\n\r\n", b""], ids=["complete", "still-coming"])
def test_headers_over_the_cap_are_answered_431(strict: LiveServer, end: bytes) -> None:
    sock = connect(strict)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + end)
    received, waited = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert received.endswith(b'{"message":"Request header fields too large."}')
    assert waited < HEADER_TIMEOUT


def test_a_client_within_the_deadlines_is_served_and_kept_alive(strict: LiveServer, account: Account) -> None:
    sock = connect(strict)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
    time.sleep(HEADER_TIMEOUT / 3)
    sock.sendall(b"st: x\r\n\r\n")
    first = read_response(sock)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection, kept alive
    received, idle = read_until_closed(sock)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert 0.9 <= idle < 2.5  # then closed after VOLTLINE_HTTP_KEEP_ALIVE (1 s) without a request


def test_an_ocpp_socket_outlives_every_http_deadline(strict: LiveServer) -> None:
    account = strict.account()
    with strict.client(account) as api:
        identity = team_charger(api, account)["identity"]

    async def scenario() -> dict[str, object]:
        async with open_charger(strict, identity) as ws:
            await asyncio.sleep(HEADER_TIMEOUT + BODY_TIMEOUT + 0.3)
            return await Raw(ws).result("Heartbeat", {})

    assert "currentTime" in asyncio.run(scenario())


def test_a_body_that_arrives_in_time_is_served(strict: LiveServer) -> None:
    account = strict.account()
    with httpx.Client(base_url=strict.base_url, headers={"Authorization": f"Bearer {account.token}"}) as api:
        response = api.post("/api/v2/teams", json={"name": "In time"})
    assert response.status_code == 201


def test_a_body_read_with_its_headers_does_not_count_as_headers(strict: LiveServer) -> None:
    """Headers of 100 bytes and a body of 8 KiB in one read are under the 4 KiB header cap."""
    account = strict.account()
    body = b'{"name": "' + b"n" * 8192 + b'"}'
    head = f"POST /api/v2/teams HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {account.token}\r\n"
    sock = connect(strict)
    sock.sendall(head.encode() + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    response = read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 422 ")
    assert b"The name field must not be greater than" in response
