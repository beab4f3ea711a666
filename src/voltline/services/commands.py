"""The commands service: how the API and smart charging ask a charger to do something.

Commands are version-neutral (`remote_start`, `set_charging_profile`, ...) and travel over
the bus to `charger.<identity>.command`; the gateway that holds the charger's socket turns
them into OCPP calls for the charger's protocol version and replies with the outcome.
"""

from __future__ import annotations

import time
from typing import Any

from voltline import codec
from voltline.bus import Bus, NoRespondersError
from voltline.errors import ChargerNotBootedError, ChargerOfflineError, ChargerTimeoutError, CommandFailedError
from voltline.metrics import Metrics

__all__ = ["COMMANDS", "CommandFailedError", "Commands"]

SUBJECT_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+|@")
COMMANDS = (
    "remote_start",
    "remote_stop",
    "reset",
    "unlock",
    "change_availability",
    "trigger",
    "get_configuration",
    "change_configuration",
    "set_charging_profile",
    "clear_charging_profile",
    "get_composite_schedule",
)


def command_subject(identity: str) -> str:
    """The bus subject a charger's gateway answers commands on (the identity as one subject token)."""
    return f"charger.{subject_token(identity)}.command"


def presence_subject(identity: str) -> str:
    """The bus subject where a gateway announces that it now holds a charger's socket (DESIGN "Cluster")."""
    return f"charger.{subject_token(identity)}.connected"


# Every charger's presence subject (a `*` token matches any identity's): one listener per gateway.
PRESENCE_SUBJECTS = "charger.*.connected"


def subject_token(text: str) -> str:
    """`text` as one NATS subject token: every character outside letters, digits and `-_=+|@` as %XX.

    Identities may hold `.` (a token separator) and `*` (a wildcard), and rows from before the
    identity rule anything at all; the escaping is one-to-one, so two identities never share a subject.
    """
    return "".join(c if c in SUBJECT_SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def encode_request(command: str, args: dict[str, Any]) -> bytes:
    """The bus payload of a command."""
    return codec.encode_json({"command": command, "args": args})


def decode_request(data: bytes) -> tuple[str, dict[str, Any]]:
    """The command name and arguments of a bus payload."""
    body = codec.decode_json(data)
    return str(body["command"]), dict(body.get("args") or {})


def encode_reply(outcome: str, result: dict[str, Any] | None = None, **extra: Any) -> bytes:
    """A reply: outcome `ok` (with the result), `offline`, `not_booted`, `timeout` or `error` (code, description)."""
    return codec.encode_json({"outcome": outcome, "result": result or {}, **extra})


class Commands:
    """Sends commands to chargers over the bus and turns outcomes into results or errors."""

    def __init__(self, bus: Bus, call_timeout: float, metrics: Metrics | None = None) -> None:
        self.bus = bus
        self.call_timeout = call_timeout
        self.metrics = metrics if metrics is not None else Metrics()

    async def send(self, identity: str, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one command on the charger; the charger's answer as a plain dict."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        started = time.perf_counter()
        outcome = "error"  # a CALLERROR, a bad answer, or the caller gave up
        try:
            result = await self._request(identity, command, args or {})
            outcome = "ok"
        except ChargerOfflineError:
            outcome = "offline"
            raise
        except ChargerTimeoutError:
            outcome = "timeout"
            raise
        finally:
            self.metrics.command(command, outcome, time.perf_counter() - started)
        return result

    async def _request(self, identity: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            # The gateway enforces the call timeout; the bus waits a little longer for its reply.
            data = await self.bus.request(
                command_subject(identity), encode_request(command, args), self.call_timeout + 5
            )
        except NoRespondersError:
            raise ChargerOfflineError(identity) from None
        except TimeoutError:
            raise ChargerTimeoutError(identity) from None
        reply = codec.decode_json(data)
        outcome = reply.get("outcome")
        if outcome == "ok":
            return dict(reply.get("result") or {})
        if outcome == "offline":
            raise ChargerOfflineError(identity)
        if outcome == "not_booted":
            raise ChargerNotBootedError(identity)
        if outcome == "timeout":
            raise ChargerTimeoutError(identity)
        raise CommandFailedError(str(reply.get("code", "GenericError")), str(reply.get("description", "")))
