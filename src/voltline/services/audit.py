"""The audit log (DESIGN "Services tier"): who changed what, when, and the outcome.

A front-end says who acts once, at its entry point (`acting_as`); a service records each change
with `record` inside its own transaction, so the change and its row commit together. A command
to a charger is recorded after the charger answered or failed (`record_command`), in a short
write of its own, with the charger's status word or the error as the outcome. Anything that runs
without a front-end having said otherwise — OCPP handlers, the control loop, housekeeping — acts
as `system`.

Action names are `<object>.<past participle>` for stored changes (`site.created`,
`connector.limit_changed`) and `<object>.<command>` for charger commands (`charger.reset`,
`transaction.remote_stop`); docs/api.md lists them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from voltline import codec
from voltline.clock import Clock
from voltline.domain.audit import SYSTEM, Actor
from voltline.domain.ids import TeamId
from voltline.errors import ChargerNotBootedError, ChargerOfflineError, ChargerTimeoutError, CommandFailedError
from voltline.store import audit as store

if TYPE_CHECKING:  # the CLI records without a runtime (and without loading the meter writer)
    from voltline.services.runtime import Runtime

OK = "ok"
# What a row is about: the object's type (domain/audit.py OBJECT_TYPES) and its uuid or id.
Target = tuple[str, object]
OUTCOME_MAX = 64
# Field names whose values never enter a detail, whatever a caller passes.
SECRET_FIELDS = frozenset({"password", "password_hash", "ocpp_password", "token", "token_hash", "pincode"})

_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("voltline_actor", default=SYSTEM)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Within the block (and tasks it starts), services record `actor` as who acts."""
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def current_actor() -> Actor:
    """Who acts now: the actor a front-end set, or `system`."""
    return _actor.get()


def changed_fields(values: Mapping[str, Any] | Iterable[str]) -> dict[str, Any]:
    """A detail naming the fields a change touched (names only, sorted)."""
    return {"fields": sorted(str(name) for name in values)}


async def record(
    clock: Clock,
    conn: AsyncConnection,
    team_id: TeamId | int | None,
    action: str,
    target: Target,
    *,
    outcome: str = OK,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append a row for the current actor about `target` (object type, object id), in the caller's transaction.

    `team_id` None: an account-level change (a user, a token) that no team's log shows.
    """
    actor = current_actor()
    object_type, object_id = target
    await store.insert_audit_row(
        conn,
        {
            "team_id": team_id,
            "at": clock.now(),
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor_user_id": actor.user_id,
            "actor_label": actor.label,
            "action": action,
            "object_type": object_type,
            "object_id": None if object_id is None else str(object_id),
            "outcome": outcome[:OUTCOME_MAX],
            "detail": _detail(detail),
        },
    )


def _detail(detail: Mapping[str, Any] | None) -> str | None:
    clean = {key: value for key, value in (detail or {}).items() if key not in SECRET_FIELDS}
    return codec.encode_json(clean).decode() if clean else None


def command_outcome(result: Mapping[str, Any] | None, error: BaseException | None) -> str:
    """What a command came to: the charger's status word, or `offline`/`not_booted`/`timeout`/the CALLERROR code."""
    if isinstance(error, ChargerNotBootedError):
        return "not_booted"
    if isinstance(error, ChargerOfflineError):
        return "offline"
    if isinstance(error, ChargerTimeoutError):
        return "timeout"
    if isinstance(error, CommandFailedError):
        return f"error:{error.code}"
    if error is not None:
        return "error"
    return str((result or {}).get("status", "Accepted"))


async def record_command(
    rt: Runtime,
    team_id: TeamId | int | None,
    action: str,
    target: Target,
    *,
    outcome: str,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append a command's row in a short write of its own (the command itself changed nothing stored)."""
    async with rt.db.write() as conn:
        await record(rt.clock, conn, team_id, action, target, outcome=outcome, detail=detail)


async def list_audit_log(
    rt: Runtime, team_id: TeamId, filters: Mapping[str, Any], *, offset: int, limit: int
) -> list[RowMapping]:
    """A page of the team's audit log, newest first, filtered by object and actor."""
    async with rt.db.read() as conn:
        return await store.list_audit_rows(conn, team_id, filters, offset=offset, limit=limit)
