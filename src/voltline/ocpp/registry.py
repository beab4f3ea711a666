"""Identity -> the open connection of that charger in this process (at most one; a newer one replaces)."""

from __future__ import annotations

from collections.abc import Iterator

from voltline.ocpp.connection import Connection


class Registry:
    """The connections this process holds, by charger identity."""

    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}

    def get(self, identity: str) -> Connection | None:
        """The charger's current connection here, or None."""
        return self._connections.get(identity)

    def replace(self, connection: Connection) -> Connection | None:
        """Make `connection` the charger's current one; returns the connection it replaces, if any."""
        previous = self._connections.get(connection.identity)
        self._connections[connection.identity] = connection
        return previous if previous is not connection else None

    def remove(self, connection: Connection) -> bool:
        """Forget `connection`; False when a newer connection already replaced it (which then stays)."""
        if self._connections.get(connection.identity) is not connection:
            return False
        del self._connections[connection.identity]
        return True

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._connections.values()))

    def __len__(self) -> int:
        return len(self._connections)
