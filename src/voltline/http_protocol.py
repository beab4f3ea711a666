"""uvicorn's httptools protocol with the deadlines and header cap a server facing slow clients needs.

uvicorn (0.55) times out only an idle keep-alive connection after a response
(`timeout_keep_alive`): `HttpToolsProtocol` cancels that timer on the first byte of the next
request and arms nothing on a new connection, so a client that never finishes its request line,
headers or body (slowloris) holds a connection, and its buffers, for ever; httptools (llhttp)
also sets no limit on the size of the headers. This protocol adds, per request:

- a header deadline: the request line and headers must be complete within `header_timeout`
  seconds, counted from the connection's start for its first request and from the first byte
  of every later one;
- a body deadline: the body must be complete within `body_timeout` seconds of the headers, or
  `upload_body_timeout` for a path under `/uploads/` (a charger's diagnostics file, docs/api.md
  "Diagnostics": megabytes over a charger's uplink may take minutes);
- a header cap: a request line and headers over `max_header_bytes` get a 431 and a close.

A missed deadline answers 408 with `Connection: close` when part of a request came and no
response is under way (RFC 9110 §15.5.9), and closes the connection; a connection that sent
nothing at all is closed without an answer. While the server itself has paused reading
(a pipelined request waits, or the app has not taken the body yet) the deadline is pushed on:
only the client's slowness counts. WebSocket upgrades leave this protocol at the end of their
headers, so an OCPP connection is never timed out here. 0 turns a deadline or the cap off.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from voltline import codec

log = logging.getLogger("voltline.http")

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
HEADERS, BODY = "headers", "body"
UPLOAD_PREFIX = b"/uploads/"


class HeadersTooLargeError(Exception):
    """A complete header section over the cap; raised in the parser's callback to stop the request."""


class DeadlineHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus header and body deadlines and a header size cap.

    Per request it only notes which part it waits for and since when: one timer per
    connection checks the deadline when it fires and re-arms itself for what is left, so a
    busy keep-alive connection does not create and cancel timers for every request.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    upload_body_timeout: float = 600.0
    max_header_bytes: int = 64 * 1024

    _timer: asyncio.TimerHandle | None = None
    _waiting_for: str | None = HEADERS  # the part of a request due from the client, if any
    _since: float = 0.0
    _in_request: bool = False  # a byte of the current request has come
    _header_bytes: int = 0
    _headers_too_large: bool = False
    _upload: bool = False  # the current request's path is under UPLOAD_PREFIX

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for(HEADERS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Counted per read, not per header callback, to keep the per-request cost low: a read that
        # starts in the header section belongs to it up to the end of the headers (and may hold
        # some body, so a complete section over the count is measured exactly before a 431).
        in_headers = self._waiting_for == HEADERS
        if in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        over = self.max_header_bytes and self._header_bytes > self.max_header_bytes
        if over and self._waiting_for == HEADERS and not self.transport.is_closing():
            self._refuse(431, "Request header fields too large.", during_body=False)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_request = True
        if self._waiting_for is None:  # a later request on a kept-alive connection
            self._wait_for(HEADERS)

    def on_headers_complete(self) -> None:
        counted, self._header_bytes = self._header_bytes, 0
        if self.max_header_bytes and counted > self.max_header_bytes and self._header_size() > self.max_header_bytes:
            self._headers_too_large = True
            raise HeadersTooLargeError
        self._upload = self.url.startswith(UPLOAD_PREFIX)
        self._wait_for(BODY)  # a request without a body completes at once
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._waiting_for, self._in_request = None, False  # now the app, then uvicorn's keep-alive
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._stop_timer()
        self._waiting_for = None
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        if self._headers_too_large:  # the parser stopped on HeadersTooLargeError
            self._refuse(431, "Request header fields too large.", during_body=False)
        else:
            super().send_400_response(msg)

    def _header_size(self) -> int:
        """The request line and headers as sent, give or take the method and version."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _timeout(self, part: str) -> float:
        if part == HEADERS:
            return self.header_timeout
        return self.upload_body_timeout if self._upload else self.body_timeout

    def _wait_for(self, part: str) -> None:
        self._waiting_for, self._since = part, self.loop.time()
        timeout = self._timeout(part)
        if self._timer is None and timeout > 0:
            self._timer = self.loop.call_later(timeout, self._check)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        part = self._waiting_for
        if part is None or self.transport.is_closing() or self._timeout(part) <= 0:
            return  # nothing due: the next request's first byte arms the timer again
        timeout, now = self._timeout(part), self.loop.time()
        if self.flow is not None and self.flow.read_paused:  # the server is the slow side: count anew
            self._since = now
        left = self._since + timeout - now
        if left > 0:
            self._timer = self.loop.call_later(left, self._check)
            return
        log.debug("closing %s: request %s not complete within %s s", _peer(self.client), part, timeout)
        if self._in_request:
            self._refuse(408, "Request timeout.", during_body=part == BODY)
        else:  # not a byte of a request yet (a preconnected socket): nothing to answer
            self.transport.close()

    def _refuse(self, status: int, text: str, *, during_body: bool) -> None:
        """Answer `status` unless a response is under way, then close.

        Before its headers are complete a request has no cycle yet: `self.cycle` is the one
        before it (if any), which must have finished its answer.
        """
        previous_done = self.cycle is None or self.cycle.response_complete
        if (not self.cycle.response_started) if during_body else previous_done:
            body = codec.encode_json({"message": text})  # Laravel-shaped, as every API error
            head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n" % (status, _REASONS[status])
            self.transport.write(head + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"


def deadline_protocol(
    header_timeout: float, body_timeout: float, max_header_bytes: int, upload_body_timeout: float = 600.0
) -> type[DeadlineHttpProtocol]:
    """The protocol class for uvicorn's `http` option, with these limits."""

    class ConfiguredHttpProtocol(DeadlineHttpProtocol):
        pass

    ConfiguredHttpProtocol.header_timeout = header_timeout
    ConfiguredHttpProtocol.body_timeout = body_timeout
    ConfiguredHttpProtocol.upload_body_timeout = upload_body_timeout
    ConfiguredHttpProtocol.max_header_bytes = max_header_bytes
    return ConfiguredHttpProtocol
