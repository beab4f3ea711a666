"""A real browser for the pages Voltline serves: Playwright driving Debian's Chromium by path.

No browser is ever downloaded (never `playwright install`): the tests use `/usr/bin/chromium`
from the `chromium` package, which `.ci/run` installs when it is missing. Outside CI a machine
without it skips these tests with the reason; in CI (`CI=true`) a missing browser fails them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, server_settings

CHROMIUM = Path(os.environ.get("VOLTLINE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must run the browser tests (.ci/run installs Debian's chromium)")
    pytest.skip(f"{reason} (install Debian's chromium package to run the browser tests)")


@pytest.fixture(scope="session")
def web_server(fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The server the browser visits: pages do not depend on the database backend, so SQLite only."""
    live = LiveServer(server_settings(fresh_database("sqlite"), str(tmp_path_factory.mktemp("data"))), "sqlite")
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser(web_server: LiveServer) -> Iterator[Any]:
    """A headless Chromium for one test module, started after the server.

    Playwright's sync API keeps an event loop running on the main thread while it is open, so
    anything that calls `asyncio.run` there (database set-up) must happen before it starts, and
    it is closed at the end of the module so that the tests after it can.
    """
    if not CHROMIUM.is_file():
        _unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
