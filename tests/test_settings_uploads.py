"""Settings of diagnostics uploads (docs/api.md "Diagnostics"): the public base URL, the size cap, the body deadline."""

from __future__ import annotations

import pytest

from voltline.errors import SettingsError
from voltline.server import uvicorn_options
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
