"""How uvicorn serves the app: HTTP deadlines, WebSocket options, frame limit, pings, TLS and logging from settings."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from voltline.http_protocol import deadline_protocol
from voltline.services.diagnostics import redact_upload_tokens
from voltline.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# uvicorn.access records carry these arguments (uvicorn/protocols/http): shown as fields of their own in JSON.
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (DESIGN: websockets-sansio, no deflate, 256 KiB)."""
    options: dict[str, Any] = {
        "log_level": settings.log_level,
        # Slow clients (README "Running behind a proxy"): header/body deadlines, header cap, keep-alive.
        "http": deadline_protocol(
            settings.http_header_timeout,
            settings.http_body_timeout,
            settings.http_max_header_bytes,
            settings.upload_body_timeout,
        ),
        "timeout_keep_alive": settings.http_keep_alive,
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


# The one-time token of a diagnostics upload URL (docs/api.md "Diagnostics") stays out of the access log.


class UploadTokenFilter(logging.Filter):
    """Access lines show a diagnostics upload's path with `<token>` in place of its one-time token."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the path argument of a uvicorn.access record; every record passes."""
        args = record.args
        if isinstance(args, tuple) and len(args) == len(ACCESS_FIELDS) and isinstance(args[2], str):
            record.args = (*args[:2], redact_upload_tokens(args[2]), *args[3:])
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (ISO-8601 UTC), level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object (non-ASCII escaped, so every line is plain ASCII)."""
        moment = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            entry.update(zip(ACCESS_FIELDS, record.args, strict=True))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def log_config(settings: Settings) -> dict[str, Any]:
    """`logging.config.dictConfig` for `serve` and uvicorn's `log_config`: uvicorn's loggers and ours alike.

    `VOLTLINE_LOG_FORMAT=text`: uvicorn's own lines as uvicorn prints them, Voltline's as
    `time level logger: message`, on stderr. `json`: every line, uvicorn's included, a JSON object.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["voltline"] = {"format": TEXT_FORMAT}
    config["handlers"]["voltline"] = {
        "class": "logging.StreamHandler",
        "formatter": "voltline",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["voltline"], "level": settings.log_level.upper()}
    config.setdefault("filters", {})["upload_tokens"] = {"()": UploadTokenFilter}
    config["handlers"]["access"]["filters"] = ["upload_tokens"]
    if settings.log_format == "json":
        config["formatters"] = {name: {"()": JsonFormatter} for name in config["formatters"]}
    return config
