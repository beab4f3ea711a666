"""The commands service: how the API and smart charging ask a charger to do something.

Commands are version-neutral (`remote_start`, `set_charging_profile`, ...) and travel over
the bus to `charger.<identity>.command`; the gateway that holds the charger's socket turns
them into OCPP calls for the charger's protocol version and replies with the outcome.

DESIGN "Cluster" (fencing): the commands of the control lease's holder (`Commands.fenced`)
carry the lease's epoch; a gateway that has seen a higher epoch answers `fenced` and does not
call the charger, and the holder learns it lost the lease (services/lease.py). Commands from
users (the API) carry no epoch and are never fenced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from voltline import codec
from voltline.bus import Bus, NoRespondersError
from voltline.errors import (
    ChargerNotBootedError,
    ChargerOfflineError,
    ChargerTimeoutError,
    CommandFailedError,
    CommandFencedError,
)
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
    "clear_cache",
    "data_transfer",
    "update_firmware",
    "get_diagnostics",
    "get_log",
    "reserve_now",
    "cancel_reservation",
    "send_local_list",
    "get_local_list_version",
)


def command_subject(identity: str) -> str:
    """The bus subject a charger's gateway answers commands on (the identity as one subject token)."""
    return f"charger.{subject_token(identity)}.command"


def presence_subject(identity: str) -> str:
    """The bus subject where a gateway announces that it now holds a charger's socket (DESIGN "Cluster")."""
    return f"charger.{subject_token(identity)}.connected"


def subject_token(text: str) -> str:
    """`text` as one NATS subject token: every character outside letters, digits and `-_=+|@` as %XX.

    Identities may hold `.` (a token separator) and `*` (a wildcard), and rows from before the
    identity rule anything at all; the escaping is one-to-one, so two identities never share a subject.
    """
    return "".join(c if c in SUBJECT_SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


class CommandRequest(NamedTuple):
    """A command as it travels on the bus: name, arguments, and the control lease's epoch (None: a user's)."""

    command: str
    args: dict[str, Any]
    epoch: int | None = None


def encode_request(command: str, args: dict[str, Any], epoch: int | None = None) -> bytes:
    """The bus payload of a command (with `epoch` when the control lease's holder sends it)."""
    body: dict[str, Any] = {"command": command, "args": args}
    if epoch is not None:
        body["epoch"] = epoch
    return codec.encode_json(body)


def decode_request(data: bytes) -> CommandRequest:
    """The command name, arguments and epoch of a bus payload (ValueError, KeyError or TypeError when malformed)."""
    body = codec.decode_json(data)
    epoch = body.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int)):
        raise TypeError(f"epoch must be an integer, got {epoch!r}")
    return CommandRequest(str(body["command"]), dict(body.get("args") or {}), epoch)


def encode_reply(outcome: str, result: dict[str, Any] | None = None, **extra: Any) -> bytes:
    """A reply: outcome `ok` (with the result), `offline`, `not_booted`, `timeout`, `fenced` (the highest
    epoch seen) or `error` (code, description)."""
    return codec.encode_json({"outcome": outcome, "result": result or {}, **extra})


class Commands:
    """Sends commands to chargers over the bus and turns outcomes into results or errors."""

    def __init__(
        self,
        bus: Bus,
        call_timeout: float,
        metrics: Metrics | None = None,
        *,
        epoch: int | None = None,
        on_fenced: Callable[[int], None] | None = None,
    ) -> None:
        self.bus = bus
        self.call_timeout = call_timeout
        self.metrics = metrics if metrics is not None else Metrics()
        self.epoch = epoch
        self._on_fenced = on_fenced
        self.fenced_by: int | None = None  # the higher epoch a gateway named, once one refused us

    def fenced(self, epoch: int, on_fenced: Callable[[int], None]) -> Commands:
        """The commands of the control lease's holder at `epoch`; `on_fenced(higher)` when a gateway refuses one."""
        return Commands(self.bus, self.call_timeout, self.metrics, epoch=epoch, on_fenced=on_fenced)

    async def send(self, identity: str, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one command on the charger; the charger's answer as a plain dict."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        if self.fenced_by is not None:  # this term is over: send nothing more
            raise CommandFencedError(identity, self.epoch or 0, self.fenced_by)
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
        except CommandFencedError:
            outcome = "fenced"
            raise
        finally:
            self.metrics.command(command, outcome, time.perf_counter() - started)
        return result

    async def _request(self, identity: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            # The gateway enforces the call timeout; the bus waits a little longer for its reply.
            data = await self.bus.request(
                command_subject(identity), encode_request(command, args, self.epoch), self.call_timeout + 5
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
        if outcome == "fenced":
            higher = int(reply.get("epoch") or 0)
            self.end_term(higher)
            raise CommandFencedError(identity, self.epoch or 0, higher)
        raise CommandFailedError(str(reply.get("code", "GenericError")), str(reply.get("description", "")))

    def end_term(self, higher: int) -> None:
        """A higher epoch was seen (a gateway refused us, or the store has it): send no more; tell the lease once."""
        first = self.fenced_by is None
        self.fenced_by = max(higher, self.fenced_by or 0)
        if first and self._on_fenced is not None:
            self._on_fenced(higher)
