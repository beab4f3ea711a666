"""Accounts: users, teams, tokens and the demo login (CLI, tests), and who a token and a team path name (API)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voltline.clock import Clock
from voltline.domain.credentials import hash_api_token, new_api_token
from voltline.domain.ids import Ref, TeamId, UserId
from voltline.domain.tenancy import Principal
from voltline.errors import NotFoundError
from voltline.services import audit
from voltline.store import users
from voltline.store.engine import Database
from voltline.store.files import create_private_file, ensure_private_dir

DEMO_EMAIL = "demo@voltline.local"
DEMO_NAME = "Demo Operator"
DEMO_TOKEN_FILE = "demo-token"


@dataclass(frozen=True)
class Account:
    """A user, their personal team and (when just made) a plain token."""

    user_id: UserId
    team_id: TeamId
    email: str
    token: str


async def create_user(db: Database, *, email: str, name: str) -> tuple[UserId, TeamId]:
    """Make a user and their personal team."""
    async with db.write() as conn:
        user = await users.create_user(conn, name=name, email=email)
        teams = await users.list_teams_of_user(conn, UserId(user["id"]))
        await audit.record(Clock(), conn, None, "user.created", ("user", user["uuid"]))
    return UserId(user["id"]), TeamId(teams[0]["id"])


async def create_token(db: Database, *, email: str, name: str = "cli") -> str:
    """Make an API token for the user; returns the plain token (only its hash is stored)."""
    token = new_api_token()
    async with db.write() as conn:
        user = await users.get_user_by_email(conn, email)
        if user is None:
            raise NotFoundError(f"No user with email {email}.")
        token_id = await users.insert_api_token(conn, UserId(user["id"]), name, hash_api_token(token))
        detail = {"user_id": user["id"], "name": name}
        await audit.record(Clock(), conn, None, "token.created", ("token", token_id), detail=detail)
    return token


async def create_account(db: Database, *, email: str, name: str) -> Account:
    """A user with a personal team and a token, in one step (tests, demo)."""
    user_id, team_id = await create_user(db, email=email, name=name)
    token = await create_token(db, email=email, name="default")
    return Account(user_id=user_id, team_id=team_id, email=email, token=token)


async def ensure_demo(db: Database, data_dir: str) -> tuple[Account, bool]:
    """The demo login: made on the first run, its token kept in `<data dir>/demo-token` (0600)."""
    token_path = Path(data_dir) / DEMO_TOKEN_FILE
    async with db.read() as conn:
        user = await users.get_user_by_email(conn, DEMO_EMAIL)
        teams = await users.list_teams_of_user(conn, UserId(user["id"])) if user else []
    if user is not None and token_path.exists():
        token = token_path.read_text().strip()
        return Account(UserId(user["id"]), TeamId(teams[0]["id"]), DEMO_EMAIL, token), False
    if user is None:
        user_id, team_id = await create_user(db, email=DEMO_EMAIL, name=DEMO_NAME)
    else:
        user_id, team_id = UserId(user["id"]), TeamId(teams[0]["id"])
    token = await create_token(db, email=DEMO_EMAIL, name="demo")
    ensure_private_dir(token_path.parent)
    create_private_file(token_path, token + "\n", replace=True)
    return Account(user_id, team_id, DEMO_EMAIL, token), True


async def find_principal(db: Database, token_hash: str) -> Principal | None:
    """The user and token behind an active API token's hash, or None."""
    async with db.read() as conn:
        row = await users.get_active_token(conn, token_hash)
    if row is None:
        return None
    return Principal(user_id=UserId(row["user_id"]), token_id=row["id"], email=row["email"])


async def find_member_role(db: Database, user_id: UserId, team_id: TeamId) -> str | None:
    """The user's role in the team, or None when not a member."""
    async with db.read() as conn:
        return await users.get_member_role(conn, user_id, team_id)


async def find_member_team_id(db: Database, user_id: UserId, ref: Ref) -> TeamId | None:
    """The id of the team `ref` names if the user belongs to it, else None."""
    async with db.read() as conn:
        return await users.get_member_team_id(conn, user_id, ref)
