"""The message log's payload cap and per-charger budget, without sockets (README: VOLTLINE_OCPP_LOG_*)."""

from __future__ import annotations

import json

from voltline.clock import Clock
from voltline.ocpp.log_limits import LogBudget, capped_payload


class HandClock(Clock):
    """Monotonic time the test sets."""

    def __init__(self) -> None:
        self.at = 0.0

    def monotonic(self) -> float:
        """The time the test set."""
        return self.at


def test_a_payload_up_to_the_cap_is_kept_and_a_longer_one_becomes_json_naming_its_size() -> None:
    """The cap counts UTF-8 bytes, for text and bytes alike; the marker is JSON."""
    assert capped_payload(b'{"a":"' + b"x" * 94 + b'"}', 102) == '{"a":"' + "x" * 94 + '"}'
    assert json.loads(capped_payload(b"x" * 103, 102)) == {"truncated": True, "bytes": 103}
    assert capped_payload("é" * 51, 102) == "é" * 51  # 102 bytes
    assert json.loads(capped_payload("é" * 52, 102)) == {"truncated": True, "bytes": 104}
    assert json.loads(capped_payload("x" * 10, 0)) == {"truncated": True, "bytes": 10}


def test_the_budget_counts_rows_and_bytes_per_charger_per_minute() -> None:
    """Rows and bytes are limited separately, per charger; a new minute starts afresh."""
    clock = HandClock()
    budget = LogBudget(3, 100, clock)
    assert [budget.admit(1, "CP1", 10) for _ in range(4)] == [True, True, True, False]
    assert budget.admit(2, "CP2", 90) and not budget.admit(2, "CP2", 11) and budget.admit(2, "CP2", 10)
    assert budget.refused_in_window(1) == 1 and budget.refused == 2
    clock.at = 59.9
    assert not budget.admit(1, "CP1", 1)
    clock.at = 60.0
    assert budget.admit(1, "CP1", 100) and budget.refused_in_window(1) == 0


def test_a_budget_of_zero_rows_and_bytes_is_no_limit() -> None:
    """0 switches a limit off (as VOLTLINE_RATE_LIMIT=0)."""
    budget = LogBudget(0, 0, HandClock())
    assert all(budget.admit(1, "CP1", 10**6) for _ in range(1_000))
    rows_only = LogBudget(0, 50, HandClock())
    assert rows_only.admit(1, "CP1", 50) and not rows_only.admit(1, "CP1", 1)
