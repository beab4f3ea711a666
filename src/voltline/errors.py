"""The error hierarchy: the domain and the store raise these, adapters map them."""

from __future__ import annotations


class VoltlineError(Exception):
    """Root of every error Voltline raises on purpose."""


class SettingsError(VoltlineError):
    """A setting has a value that cannot be used."""


class NotFoundError(VoltlineError):
    """The object does not exist, or not for the caller's team."""


class PermissionDeniedError(VoltlineError):
    """The caller may not act on this team."""


class AuthenticationError(VoltlineError):
    """No valid credentials were presented."""


class ValidationError(VoltlineError):
    """Input broke one or more rules; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(next(iter(errors.values()))[0] if errors else "The given data was invalid.")
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> ValidationError:
        """One message for one field."""
        return cls({field: [message]})


class ConflictError(VoltlineError):
    """The request conflicts with the current state."""


class RateLimitedError(VoltlineError):
    """Too many attempts; `retry_after` is in seconds."""

    def __init__(self, retry_after: int, limit: int = 0) -> None:
        super().__init__("Too Many Attempts.")
        self.retry_after = retry_after
        self.limit = limit


class ChargerOfflineError(VoltlineError):
    """The charger has no open connection."""


class ChargerNotBootedError(ChargerOfflineError):
    """The charger is connected, but its BootNotification was not Accepted in this connection (OCPP 1.6 §4.2)."""


class ChargerTimeoutError(VoltlineError):
    """The charger did not answer a call in time."""


class CommandFailedError(VoltlineError):
    """The charger answered a command with a CALLERROR; `code` is its OCPP error code."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"The charger answered {code}: {description}".rstrip(": "))
        self.code = code
        self.description = description


class CommandFencedError(VoltlineError):
    """A gateway refused a control command: it has seen a higher control-lease epoch (DESIGN "Cluster")."""

    def __init__(self, identity: str, epoch: int, higher: int) -> None:
        super().__init__(f"{identity}: a command of control-lease epoch {epoch} was refused (epoch {higher} seen)")
        self.epoch = epoch
        self.higher = higher


class LeaseLostError(VoltlineError):
    """A write of a control-lease term that has ended: a newer term began (DESIGN "Cluster")."""

    def __init__(self, epoch: int, current: int) -> None:
        super().__init__(f"the control-lease term of epoch {epoch} has ended (epoch {current} now)")
        self.epoch = epoch
        self.current = current


class StoreUnavailableError(VoltlineError):
    """The database cannot take writes now (DESIGN: Durability): nothing may be answered as stored."""
