"""Identity -> the open session of that charger in this process (at most one; a newer one replaces)."""

from __future__ import annotations

from collections.abc import Iterator

from voltline.ocpp.session import Session


class Registry:
    """The sessions this process holds, by charger identity."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def get(self, identity: str) -> Session | None:
        """The charger's current session here, or None."""
        return self._sessions.get(identity)

    def replace(self, session: Session) -> Session | None:
        """Make `session` the charger's current one; returns the session it replaces, if any."""
        previous = self._sessions.get(session.identity)
        self._sessions[session.identity] = session
        return previous if previous is not session else None

    def remove(self, session: Session) -> bool:
        """Forget `session`; False when a newer session already replaced it (which then stays)."""
        if self._sessions.get(session.identity) is not session:
            return False
        del self._sessions[session.identity]
        return True

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)
