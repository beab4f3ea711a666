"""Sites through the API: create one, its path, and the errors of a 422."""

from __future__ import annotations

import re
from typing import Any

import httpx

from voltline.services.accounts import Account

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SITE_BODY: dict[str, Any] = {
    "name": "Home",
    "street": "Main Street",
    "house_number": 12,
    "postal_code": "1234 AB",
    "city": "Utrecht",
    "country": "NL",
}


def sites_path(account: Account) -> str:
    """The sites collection of the account's personal team."""
    return f"/api/v2/teams/{account.team_id}/sites"


def make_site(api: httpx.Client, account: Account, **fields: Any) -> dict[str, Any]:
    """Create a site in the account's team and return it."""
    response = api.post(sites_path(account), json={**SITE_BODY, **fields})
    assert response.status_code == 201, response.text
    site: dict[str, Any] = response.json()["data"]
    return site


def errors_of(response: httpx.Response) -> dict[str, list[str]]:
    """The `errors` of a 422 response."""
    assert response.status_code == 422, response.text
    errors: dict[str, list[str]] = response.json()["errors"]
    return errors
