"""The upload target chargers send their diagnostics files to (docs/api.md "Diagnostics").

OCPP 1.6 §5.9 GetDiagnostics names a `location` (a directory) to upload to; Voltline gives
`<base>/uploads/diagnostics/<token>` and takes, at that path or with the charger's file name
appended, an HTTP PUT of the file's bytes or a multipart/form-data POST with one file part.
No API token: the one-time upload token in the path is the credential (services/diagnostics.py).

The app-wide body limit (`VOLTLINE_MAX_BODY_BYTES`) does not apply under UPLOADS_PREFIX
(app.py) and the body deadline there is `VOLTLINE_UPLOAD_BODY_TIMEOUT` (http_protocol.py);
instead the body is counted as it streams and refused past `VOLTLINE_UPLOAD_MAX_BYTES` (413).
Nothing is stored unless the whole body came: a body cut off by a disconnect raises
ClientDisconnect (answered by app.py, to nobody), an unknown, spent or expired token is a 404.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voltline.api._kit import message
from voltline.services import diagnostics
from voltline.services.runtime import Runtime

UPLOADS_PREFIX = "/uploads/"
# A multipart body carries its file part plus boundaries and part headers: this much on top of the cap.
MULTIPART_ENVELOPE = 64 * 1024
NOT_FOUND = "Not found."
TOO_LARGE = "The upload is too large."


class UploadTooLargeError(Exception):
    """The body went past the upload cap."""


class BadUploadError(Exception):
    """The body holds no file to store."""


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The body's chunks as they come; UploadTooLargeError once more than `limit` bytes came."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise UploadTooLargeError
        yield chunk


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def _read_body(request: Request, cap: int) -> tuple[bytes, str | None, str | None]:
    """A PUT (or a POST of raw bytes): the body, its media type, and the file name the path may end in."""
    body = bytearray()
    async for chunk in _capped(request, cap):
        body += chunk
    return bytes(body), request.headers.get("content-type"), request.path_params.get("name")


async def _read_multipart(request: Request, cap: int) -> tuple[bytes, str | None, str | None]:
    """A multipart/form-data POST: its one file part's bytes, media type and file name."""
    parser = MultiPartParser(request.headers, _capped(request, cap + MULTIPART_ENVELOPE), max_files=1, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise BadUploadError(str(error)) from None
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise BadUploadError("The upload has no file part.")
        upload = files[0]
        if upload.size is not None and upload.size > cap:
            raise UploadTooLargeError
        return await upload.read(), upload.content_type, upload.filename
    finally:
        await form.close()


async def receive_upload(request: Request) -> Response:
    """Store the charger's file for the request its token names: 201, or 404/413/400 and nothing stored."""
    rt: Runtime = request.app.state.runtime
    token: str = request.path_params["token"]
    cap = rt.settings.upload_max_bytes
    if not await diagnostics.is_upload_open(rt, token):
        return message(NOT_FOUND, 404)
    multipart = _is_multipart(request)
    declared = request.headers.get("content-length")
    limit = cap + MULTIPART_ENVELOPE if multipart else cap
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return message(TOO_LARGE, 413)
    try:
        content, content_type, name = await (_read_multipart if multipart else _read_body)(request, cap)
    except UploadTooLargeError:
        return message(TOO_LARGE, 413)
    except BadUploadError as error:
        return message(str(error), 400)
    if not content:
        return message("The upload is empty.", 400)
    stored = await diagnostics.store_upload(rt, token, content, content_type=content_type, name=name)
    if stored is None:  # another upload spent the token meanwhile, or it expired
        return message(NOT_FOUND, 404)
    return message("Upload received.", 201)


def upload_routes() -> list[Route]:
    """The upload target, with and without the charger's file name appended to the location."""
    path = diagnostics.UPLOAD_PATH.rstrip("/")
    return [
        Route(f"{path}/{{token}}", receive_upload, methods=["PUT", "POST"]),
        Route(f"{path}/{{token}}/{{name}}", receive_upload, methods=["PUT", "POST"]),
    ]
