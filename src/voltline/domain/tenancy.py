"""Who is calling: the principal behind a bearer token."""

from __future__ import annotations

from dataclasses import dataclass

from voltline.domain.ids import TeamId, UserId


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user acting through one API token."""

    user_id: UserId
    token_id: int
    email: str = ""


@dataclass(frozen=True, slots=True)
class TeamScope:
    """The team a request acts on, already checked to include the principal."""

    team_id: TeamId
    principal: Principal
