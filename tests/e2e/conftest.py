"""The smart-charging end-to-end tests' server: one per module, on a SteppedClock with a short debounce."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.clocked import ClockedServer, SteppedClock
from tests.conftest import LiveServer, server_settings
from tests.e2e.test_smart_e2e import SMART_SETTINGS


@contextlib.contextmanager
def clocked_server(
    server: LiveServer,
    fresh_database: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
    **settings: Any,
) -> Iterator[ClockedServer]:
    """A server of its own on a SteppedClock with `SMART_SETTINGS` (and `settings` on top), on `server`'s backend."""
    data = str(tmp_path_factory.mktemp("data"))
    live = ClockedServer(
        server_settings(fresh_database(server.backend), data, **{**SMART_SETTINGS, **settings}),
        server.backend,
        clock=SteppedClock(),
    )
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def smart(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockedServer]:
    """A server of its own on a SteppedClock with a short debounce (`SMART_SETTINGS`)."""
    with clocked_server(server, fresh_database, tmp_path_factory) as live:
        yield live
