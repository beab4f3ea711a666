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
        # The client address and scheme are the TCP peer's: forwarded headers are believed only from
        # VOLTLINE_TRUSTED_PROXIES, by domain.proxies (uvicorn would trust 127.0.0.1 by default).
        "proxy_headers": False,
    }
    if settings.ssl_certfile:
        # wss:// for OCPP security profile 2, https:// for the API.
        options["ssl_certfile"] = settings.ssl_certfile
        options["ssl_keyfile"] = settings.ssl_keyfile or None
    return options
