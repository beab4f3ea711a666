"""A site's smart-charging settings (spec/smart-charging.md §1.3 R-01..R-04): read and change them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import RowMapping

from voltline.bus.events import publish_settings_changed
from voltline.domain.ids import Ref, TeamId
from voltline.services import audit
from voltline.services.pricing import site_smart_mode_price
from voltline.services.runtime import Runtime
from voltline.smart.prices import smart_fraction
from voltline.store import sites


async def smart_mode_price(runtime: Runtime, site: RowMapping) -> float | None:
    """R-04/R-63: the site's consumer smart mode price in ct/kWh (2 decimals), or None."""
    fraction = smart_fraction(runtime.settings.smart_mode_fraction)
    taxes = runtime.settings.consumer_taxes
    price = await site_smart_mode_price(runtime.db, site, runtime.clock.now(), fraction=fraction, taxes=taxes)
    return None if price is None else float(price)


async def get_smart_settings(runtime: Runtime, team_id: TeamId, site_ref: Ref) -> tuple[RowMapping, float | None]:
    """The site (its settings are columns of it) and its smart mode price now."""
    async with runtime.db.read() as conn:
        site = await sites.get_site(conn, team_id, site_ref)
    return site, await smart_mode_price(runtime, site)


async def update_smart_settings(
    runtime: Runtime, team_id: TeamId, site_ref: Ref, check: Callable[[RowMapping], dict[str, Any]]
) -> tuple[RowMapping, float | None]:
    """R-02: store what `check` makes of the input against the stored settings; the site and its smart mode price."""
    async with runtime.db.write() as conn:
        site = await sites.get_site(conn, team_id, site_ref)
        values = check(site)
        site = await sites.update_site(conn, team_id, site["id"], values)
        detail = audit.changed_fields(values)
        await audit.record(
            runtime.clock, conn, team_id, "smart_charging.updated", ("site", site["uuid"]), detail=detail
        )
    await publish_settings_changed(runtime.bus, site["id"])
    return site, await smart_mode_price(runtime, site)
