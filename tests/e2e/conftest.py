"""The smart-charging end-to-end tests' server: one per module, on a SteppedClock with a short debounce."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.clocked import ClockedServer, SteppedClock
from tests.conftest import LiveServer, server_settings
from tests.e2e.test_smart_e2e import SMART_SETTINGS


@pytest.fixture(scope="module")
def smart(
    server: LiveServer, fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockedServer]:
    """A server of its own on a SteppedClock with a short debounce (`SMART_SETTINGS`)."""
    settings = server_settings(fresh_database(server.backend), str(tmp_path_factory.mktemp("data")), **SMART_SETTINGS)
    live = ClockedServer(settings, server.backend, clock=SteppedClock())
    live.start()
    yield live
    live.stop()
