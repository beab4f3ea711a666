"""Fixtures of the store tests: one migrated database per backend and module."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, fresh_database: Callable[[str], str]) -> Iterator[str]:
    """A migrated database per backend for this module."""
    yield fresh_database(request.param)
