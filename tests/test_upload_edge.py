"""Diagnostics uploads at the edge (docs/api.md "Diagnostics"): the public base URL, the size cap, the body
deadline, and the access log that never shows an upload's one-time token."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from voltline.app import create_app
from voltline.errors import SettingsError
from voltline.server import UploadTokenFilter, log_config, uvicorn_options
from voltline.settings import load_settings


def test_uploads_have_their_own_cap_and_deadline_by_default() -> None:
    settings = load_settings({})
    assert (settings.public_url, settings.upload_max_bytes, settings.upload_body_timeout) == ("", 50 * 1024 * 1024, 600)
    assert settings.max_body_bytes == 1024 * 1024  # the API's own limit is independent


def test_the_upload_settings_are_read_from_the_environment() -> None:
    settings = load_settings(
        {
            "VOLTLINE_PUBLIC_URL": "https://cpms.example.com",
            "VOLTLINE_UPLOAD_MAX_BYTES": "1000",
            "VOLTLINE_UPLOAD_BODY_TIMEOUT": "90",
        }
    )
    assert (settings.public_url, settings.upload_max_bytes, settings.upload_body_timeout) == (
        "https://cpms.example.com",
        1000,
        90,
    )
    assert uvicorn_options(settings)["http"].upload_body_timeout == 90


@pytest.mark.parametrize(
    "environ",
    [
        {"VOLTLINE_PUBLIC_URL": "ftp://cpms.example.com"},
        {"VOLTLINE_PUBLIC_URL": "cpms.example.com"},
        {"VOLTLINE_PUBLIC_URL": "https://cpms.example.com/?x=1"},
        {"VOLTLINE_UPLOAD_MAX_BYTES": "0"},
        {"VOLTLINE_UPLOAD_BODY_TIMEOUT": "-1"},
    ],
)
def test_bad_upload_settings_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        load_settings(environ)


def test_the_access_log_shows_an_upload_path_without_its_token() -> None:
    token = "Zm9vYmFyLXRva2VuLXRoYXQtaXMtb25lLXRpbWUtb25seQ"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.5:4711", "PUT", f"/uploads/diagnostics/{token}/diag.zip", "1.1", 201),
        None,
    )
    assert UploadTokenFilter().filter(record)
    assert record.getMessage() == '10.0.0.5:4711 - "PUT /uploads/diagnostics/<token>/diag.zip HTTP/1.1" 201'
    config = log_config(load_settings({}))
    assert config["handlers"]["access"]["filters"] == ["upload_tokens"]
    assert config["filters"]["upload_tokens"] == {"()": UploadTokenFilter}


@pytest.mark.parametrize(("role", "served"), [("all", True), ("api", True), ("gateway", True), ("worker", False)])
def test_the_upload_target_is_served_wherever_the_api_or_ocpp_is(tmp_path: Path, role: str, served: bool) -> None:
    """A charger uploads to the host it connects to: every process serving /ocpp (or the API) takes uploads."""
    app: Any = create_app(load_settings({}, role=role, data_dir=str(tmp_path), secret_key="k"))
    paths = {getattr(route, "path", None) for route in app.app.routes}
    expected = {"/uploads/diagnostics/{token}", "/uploads/diagnostics/{token}/{name}"}
    assert (expected & paths) == (expected if served else set())
