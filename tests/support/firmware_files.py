"""A small HTTP file server for firmware downloads (the simulator fetches firmware with an HTTP GET)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FirmwareFiles:
    """The files a test serves (path -> bytes; any other path is a 404), and every path asked for."""

    def __init__(self, base_url: str, files: dict[str, bytes]) -> None:
        self.base_url, self.files = base_url, files
        self.requests: list[str] = []

    def url(self, path: str) -> str:
        """The absolute URL of a path on this server."""
        return f"{self.base_url}{path}"


@contextmanager
def firmware_files(files: dict[str, bytes]) -> Iterator[FirmwareFiles]:
    """Serve `files` on 127.0.0.1 (a free port) while the block runs."""
    served: list[FirmwareFiles] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served[0].requests.append(self.path)
            body = served[0].files.get(self.path)
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.append(FirmwareFiles(f"http://127.0.0.1:{httpd.server_address[1]}", files))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
