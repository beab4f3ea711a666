"""Per-token request limit per minute (Laravel's `throttle`), fixed one-minute windows."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RateLimitResult:
    """The outcome of one hit: allowed or not, what remains, and when to retry."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int


@dataclass
class RateLimiter:
    """Counts hits per key in the current minute; `limit` 0 turns it off."""

    limit: int
    _windows: dict[object, tuple[int, int]] = field(default_factory=dict)

    def hit(self, key: object, now: float) -> RateLimitResult:
        """Count one request for `key` at monotonic time `now` (seconds)."""
        window = int(now // 60)
        start, count = self._windows.get(key, (window, 0))
        if start != window:
            start, count = window, 0
        if count >= self.limit:
            return RateLimitResult(False, self.limit, 0, max(1, int((window + 1) * 60 - now)))
        self._windows[key] = (start, count + 1)
        if len(self._windows) > 100_000:
            self._forget_old(window)
        return RateLimitResult(True, self.limit, self.limit - count - 1, 0)

    def _forget_old(self, window: int) -> None:
        for key in [k for k, (start, _) in self._windows.items() if start != window]:
            del self._windows[key]
