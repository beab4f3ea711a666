"""List endpoints share one page helper; query dates and limits are parsed in api/_kit.py only.

The checks read the api modules with the standard library's `ast`, so a handler that computes
its own page offset or parses a date by hand fails here.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from voltline.api import ENDPOINTS
from voltline.api._kit import PAGE_RULES
from voltline.api._routing import Endpoint

API = Path(__file__).resolve().parents[2] / "src" / "voltline" / "api"
# _kit.py holds the helpers; _rules.py is the validator (`date_format` checks by parsing).
HELPERS = {"_kit.py", "_rules.py"}
# Parsing that belongs to api/_kit.py: dates by format, days, and the page keys.
PARSERS = {"strptime", "fromisoformat"}
PAGE_KEYS = {"page", "per_page"}


def _modules() -> list[Path]:
    return sorted(path for path in API.glob("*.py") if path.name not in HELPERS)


def _hand_parsing(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PARSERS:
            found.append(f"line {node.lineno}: .{node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            keys = [arg.value for arg in node.args[:1] if isinstance(arg, ast.Constant)]
            if set(keys) & PAGE_KEYS:
                found.append(f"line {node.lineno}: .get({keys[0]!r})")
        if isinstance(node, ast.Name) and node.id in {"per_page", "PER_PAGE_DEFAULT", "LIMIT_DEFAULT"}:
            found.append(f"line {node.lineno}: {node.id}")
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda path: path.name)
def test_no_api_module_parses_pages_dates_or_limits_by_hand(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert _hand_parsing(tree) == [], f"{path.name}: use api/_kit.py's page, date and limit helpers"


@pytest.mark.parametrize(
    "endpoint", [ep for ep in ENDPOINTS if ep.shape == "page"], ids=lambda ep: f"{ep.method} {ep.path}"
)
def test_every_paginated_endpoint_answers_through_the_page_helper(endpoint: Endpoint) -> None:
    """Its handler calls `page_response` and its query documents `page` and `per_page` as PAGE_RULES has them."""
    handler = endpoint.handler
    source = Path(sys.modules[handler.__module__].__file__ or "").read_text(encoding="utf-8")
    [function] = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.AsyncFunctionDef) and node.name == handler.__name__
    ]
    called = {
        node.func.id for node in ast.walk(function) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert "page_response" in called
    assert called & {"page_window", "page_of"}
    query = endpoint.query.rules
    assert {key: query[key] for key in PAGE_RULES} == PAGE_RULES
