"""Throttling of failed charger logins, without ever locking out the real charger (DESIGN: Charger security).

Two rules, both over a sliding window of `WINDOW` seconds on the injectable clock:

* 5 failures for one identity from one address: that address waits before it may try that
  identity again;
* failures on 20 different identities from one address: that address waits for every identity.

The first wait is `FIRST_WAIT` seconds; while an address is still remembered for failing, each
further failure doubles it, up to `MAX_WAIT` (5 minutes). A waiting attempt is refused without
looking at its password. After `FORGET_AFTER` seconds without a failure, or after a correct
password, the record is dropped. Nothing is keyed on the identity alone, so the real charger,
connecting from its own address, is never refused for someone else's failures.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

FAILURES_PER_IDENTITY = 5
IDENTITIES_PER_ADDRESS = 20
WINDOW = 60.0
FIRST_WAIT = 10.0
MAX_WAIT = 300.0
FORGET_AFTER = 2 * MAX_WAIT


class Wait(NamedTuple):
    """How long an attempt must still wait; `first` is true for the first attempt refused in this wait."""

    seconds: float
    first: bool


@dataclass
class _Penalty:
    """Failures of one key inside the window, and the wait they earned."""

    failures: deque[tuple[float, str]] = field(default_factory=deque)
    waits: int = 0
    until: float = 0.0
    last_failure: float = -math.inf
    reported_until: float = 0.0

    def left(self, now: float) -> float:
        return max(0.0, self.until - now)

    def fail(self, now: float, identity: str, limit: int, distinct: bool) -> float:
        """Count a failure; start (or double) the wait when the limit is reached. Returns the wait started."""
        if now - self.last_failure > FORGET_AFTER:
            self.failures.clear()
            self.waits = 0
        self.last_failure = now
        self.failures.append((now, identity))
        while self.failures and self.failures[0][0] <= now - WINDOW:
            self.failures.popleft()
        count = len({who for _, who in self.failures}) if distinct else len(self.failures)
        if self.waits == 0 and count < limit:
            return 0.0
        self.waits += 1
        wait: float = min(FIRST_WAIT * 2.0 ** (self.waits - 1), MAX_WAIT)
        self.until = now + wait
        return wait

    def stale(self, now: float) -> bool:
        return now - self.last_failure > FORGET_AFTER and now >= self.until


class AuthThrottle:
    """Who must wait before trying a charger password again; time is passed in (the clock's monotonic seconds)."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], _Penalty] = {}
        self._addresses: dict[str, _Penalty] = {}
        self._swept = -math.inf

    def wait(self, address: str, identity: str, now: float) -> Wait:
        """How long this address must still wait before an attempt on this identity is checked (0: check it)."""
        penalties = [p for p in (self._pairs.get((address, identity)), self._addresses.get(address)) if p is not None]
        longest = max(penalties, key=lambda penalty: penalty.left(now), default=None)
        if longest is None or longest.left(now) == 0:
            return Wait(0.0, first=False)
        first = longest.reported_until != longest.until
        longest.reported_until = longest.until
        return Wait(longest.left(now), first)

    def fail(self, address: str, identity: str, now: float) -> float:
        """Record a refused attempt; returns the wait it started for this address (0 when none)."""
        self._sweep(now)
        pair = self._pairs.setdefault((address, identity), _Penalty())
        whole = self._addresses.setdefault(address, _Penalty())
        return max(
            pair.fail(now, identity, FAILURES_PER_IDENTITY, distinct=False),
            whole.fail(now, identity, IDENTITIES_PER_ADDRESS, distinct=True),
        )

    def succeed(self, address: str, identity: str) -> None:
        """A correct login: this address's failures on this identity are forgotten."""
        self._pairs.pop((address, identity), None)

    def __len__(self) -> int:
        return len(self._pairs) + len(self._addresses)

    def _sweep(self, now: float) -> None:
        if now - self._swept < WINDOW:
            return
        self._swept = now
        for pair in [key for key, penalty in self._pairs.items() if penalty.stale(now)]:
            del self._pairs[pair]
        for address in [key for key, penalty in self._addresses.items() if penalty.stale(now)]:
            del self._addresses[address]
