"""How uvicorn serves the app: HTTP deadlines, WebSocket implementation, frame limit, pings and TLS from settings."""

from __future__ import annotations

from typing import Any

from voltline.http_protocol import deadline_protocol
from voltline.settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (DESIGN: websockets-sansio, no deflate, 256 KiB)."""
    options: dict[str, Any] = {
        "log_level": settings.log_level,
        # Slow clients (README "Running behind a proxy"): header/body deadlines, header cap, keep-alive.
        "http": deadline_protocol(
            settings.http_header_timeout, settings.http_body_timeout, settings.http_max_header_bytes
        ),
        "timeout_keep_alive": settings.http_keep_alive,
        "ws": "websockets-sansio",
        "ws_max_size": settings.ocpp_max_frame_bytes,
        "ws_per_message_deflate": False,
        "ws_ping_interval": settings.ocpp_ping_interval,
        "ws_ping_timeout": settings.ocpp_ping_interval,
        "proxy_headers": True,
    }
    if settings.ssl_certfile:
        # wss:// for OCPP security profile 2, https:// for the API.
        options["ssl_certfile"] = settings.ssl_certfile
        options["ssl_keyfile"] = settings.ssl_keyfile or None
    return options
