"""Who changed something: the actor an audit-log row names (DESIGN "Services tier")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ActorKind = Literal["user", "token", "system"]
ACTOR_KINDS: tuple[ActorKind, ...] = ("user", "token", "system")


@dataclass(frozen=True, slots=True)
class Actor:
    """A user, a user's API token, or Voltline itself (`system`: OCPP handlers, control loop, CLI).

    For a token, `id` is the token's id, `user_id` its owner and `label` the owner's email;
    for a user, `id` and `user_id` are the user's id. Never a secret: no token, no password.
    """

    kind: ActorKind
    id: str | None = None
    label: str | None = None
    user_id: int | None = None


SYSTEM = Actor(kind="system", label="system")


def token_actor(token_id: int, user_id: int, email: str) -> Actor:
    """The actor of a request authenticated by an API token."""
    return Actor(kind="token", id=str(token_id), label=email or None, user_id=user_id)


def user_actor(user_id: int, email: str) -> Actor:
    """A user acting in person (a dashboard session, a CLI command run for them)."""
    return Actor(kind="user", id=str(user_id), label=email or None, user_id=user_id)


# The kinds of object an audit-log row names (its `object_type`).
OBJECT_TYPES = (
    "charger",
    "connector",
    "group",
    "id_tag",
    "meter",
    "site",
    "team",
    "token",
    "transaction",
    "user",
    "reservation",
)
