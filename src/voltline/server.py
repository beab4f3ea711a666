"""How uvicorn serves the app: WebSocket implementation, frame limit, pings and TLS from settings."""

from __future__ import annotations

from typing import Any

from voltline.settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (DESIGN: websockets-sansio, no deflate, 256 KiB)."""
    options: dict[str, Any] = {
        "log_level": settings.log_level,
        "ws": "websockets-sansio",
        "ws_max_size": settings.ocpp_max_frame_bytes,
        "ws_per_message_deflate": False,
        "ws_ping_interval": settings.ocpp_ping_interval,
        "ws_ping_timeout": settings.ocpp_ping_interval,
        # DESIGN: Charger security: forwarded headers are believed from VOLTLINE_TRUSTED_PROXIES only.
        # uvicorn applies that same list to the scope (so the API's links carry the proxy's scheme) and
        # domain.proxies to what the app decides; with no list, nobody (uvicorn's own default is 127.0.0.1).
        "proxy_headers": bool(settings.trusted_proxy_networks),
        "forwarded_allow_ips": [str(network) for network in settings.trusted_proxy_networks] or None,
    }
    if settings.ssl_certfile:
        # wss:// for OCPP security profile 2, https:// for the API.
        options["ssl_certfile"] = settings.ssl_certfile
        options["ssl_keyfile"] = settings.ssl_keyfile or None
    return options
