"""`/docs` renders the API reference in a real browser (DESIGN: OpenAPI 3.1, docs that work offline)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer
from voltline.api import ENDPOINTS


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records what the browser logs and fetches."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.console, tab.errors, tab.fetched = [], [], []
    tab.on("console", lambda message: tab.console.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.on("request", lambda request: tab.fetched.append(request.url))
    yield tab
    context.close()


def test_docs_render_every_operation_offline_and_without_errors(web_server: LiveServer, page: Any) -> None:
    base = web_server.base_url
    page.goto(f"{base}/docs")
    teams = page.locator('.opblock-get .opblock-summary-path[data-path="/api/v2/teams"]')
    teams.wait_for(timeout=30_000)
    assert page.locator(".info .title").inner_text().startswith("Voltline API")
    assert page.locator(".opblock").count() == len(ENDPOINTS)
    assert "Unable to render this definition" not in page.inner_text("body")

    teams.click()  # an operation opens with its responses, error bodies included
    responses = page.locator(".opblock.is-open .responses-table").first
    responses.wait_for(timeout=30_000)
    assert "Unauthenticated" in responses.inner_text() and "Too many attempts" in responses.inner_text()

    page.wait_for_load_state("networkidle")
    assert f"{base}/openapi.json" in page.fetched
    assert [url for url in page.fetched if not url.startswith(base)] == []
    assert page.errors == []
    assert [line for line in page.console if line.startswith(("error", "warning"))] == []
