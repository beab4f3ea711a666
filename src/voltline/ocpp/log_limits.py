"""The message log's limits: a cap on each stored payload, and a rate budget per charger.

A charger decides what it sends, so the log must not grow with it (DESIGN: Charger security;
README: VOLTLINE_OCPP_LOG_*):

* A payload longer than `VOLTLINE_OCPP_LOG_MAX_PAYLOAD` bytes is stored as the JSON marker
  `{"truncated":true,"bytes":N}`, N being the payload's size, so every stored payload stays JSON.
* Each charger's log takes at most `VOLTLINE_OCPP_LOG_BUDGET_ROWS` rows and
  `VOLTLINE_OCPP_LOG_BUDGET_BYTES` bytes of stored payload per minute (0: no limit). Frames over
  the budget are counted, not stored, and the first one of a window logs one warning.

Windows are fixed minutes on the injectable clock's monotonic time, kept per charger (not per
socket: reconnecting does not renew the budget).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from voltline.clock import Clock

log = logging.getLogger("voltline.ocpp")

WINDOW_SECONDS = 60.0
TRUNCATED_MARKER = '{"truncated":true,"bytes":%d}'


def capped_payload(payload: str | bytes, max_bytes: int) -> str:
    """The payload as text to store, or the truncation marker naming its size when it is too long."""
    if isinstance(payload, bytes):
        if len(payload) <= max_bytes:
            return payload.decode(errors="replace")
        return TRUNCATED_MARKER % len(payload)
    if 4 * len(payload) <= max_bytes:  # UTF-8 takes at most 4 bytes a character
        return payload
    size = len(payload.encode(errors="replace"))
    return payload if size <= max_bytes else TRUNCATED_MARKER % size


@dataclass(slots=True)
class _Window:
    """One charger's use of the log in the current minute."""

    started: float
    rows: int = 0
    size: int = 0
    refused: int = 0


class LogBudget:
    """How much each charger may still log this minute; what it may not is counted."""

    def __init__(self, rows: int, max_bytes: int, clock: Clock) -> None:
        self.rows = rows
        self.max_bytes = max_bytes
        self.clock = clock
        self.refused = 0  # frames not logged for the budget, every charger, since start
        self._windows: dict[int, _Window] = {}
        self._swept: float | None = None  # when forgotten windows were last swept

    def admit(self, charger_id: int, identity: str, size: int) -> bool:
        """True when the charger may log one more row of `size` bytes now (and it is counted)."""
        if self.rows <= 0 and self.max_bytes <= 0:
            return True
        window = self._window(charger_id)
        over_rows = 0 < self.rows <= window.rows
        over_bytes = 0 < self.max_bytes < window.size + size
        if over_rows or over_bytes:
            window.refused += 1
            self.refused += 1
            if window.refused == 1:
                log.warning(
                    "%s: message log budget spent (%d rows or %d bytes a minute); frames are counted, not logged, "
                    "until the minute is over",
                    identity,
                    self.rows,
                    self.max_bytes,
                )
            return False
        window.rows += 1
        window.size += size
        return True

    def refused_in_window(self, charger_id: int) -> int:
        """Frames of the charger not logged in its current window."""
        window = self._windows.get(charger_id)
        return 0 if window is None else window.refused

    def _window(self, charger_id: int) -> _Window:
        now = self.clock.monotonic()
        window = self._windows.get(charger_id)
        if window is None or now - window.started >= WINDOW_SECONDS:
            window = self._windows[charger_id] = _Window(now)
            self._sweep(now)
        return window

    def _sweep(self, now: float) -> None:
        # Windows of chargers that went quiet are forgotten, at most once a window.
        if self._swept is not None and now - self._swept < WINDOW_SECONDS:
            return
        self._swept = now
        stale = [key for key, window in self._windows.items() if now - window.started >= WINDOW_SECONDS]
        for key in stale:
            del self._windows[key]
