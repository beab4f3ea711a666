"""Groups of a site through the API: its path, its root group, a new group."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.sites import sites_path
from voltline.services.accounts import Account


def groups_path(account: Account, site: dict[str, Any]) -> str:
    """The groups collection of a site."""
    return f"{sites_path(account)}/{site['id']}/groups"


def root_of(api: httpx.Client, account: Account, site: dict[str, Any]) -> dict[str, Any]:
    """The site's root group (the first in the list)."""
    root: dict[str, Any] = api.get(groups_path(account, site)).json()["data"][0]
    assert root["group_id"] is None
    return root


def make_group(api: httpx.Client, account: Account, site: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Create a group in the site and return it."""
    response = api.post(groups_path(account, site), json={"total_amps": 16, **fields})
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()["data"]
    return group
