"""HAProxy run from docs/deploy/haproxy.cfg, with a throw-away self-signed certificate (docs/deploy.md).

The configuration is the documented file itself; only the listening ports, the backend
addresses, the certificate and the stats socket are substituted, each by exact text, so a
change to the file that the substitutions no longer match fails the test instead of drifting.
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tests.support.killable_server import free_port

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or ""
START_TIMEOUT = 20.0
BIND_ATTEMPTS = 5


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made by the `openssl` CLI: (HAProxy's PEM with the key, the CA file)."""
    key, cert = directory / "key.pem", directory / "cert.pem"  # Haproxy.ca_file names the latter
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    command += ["-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"]
    command += ["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    bundle = directory / "haproxy.pem"
    bundle.write_text(cert.read_text() + key.read_text())
    bundle.chmod(0o600)
    return bundle, cert


def client_tls(ca_file: Path) -> ssl.SSLContext:
    """A client context that trusts the test certificate and nothing else."""
    return ssl.create_default_context(cafile=str(ca_file))


def substituted(text: str, replacements: Mapping[str, str]) -> str:
    """`text` with each key replaced by its value; a key that does not occur exactly once is an error."""
    for old, new in replacements.items():
        count = text.count(old)
        assert count == 1, f"docs/deploy/haproxy.cfg: expected {old!r} once, found it {count} times"
        text = text.replace(old, new)
    return text


@dataclass
class Haproxy:
    """HAProxy in the foreground on the documented configuration; `servers` maps a documented server to a port."""

    directory: Path
    servers: Mapping[str, int]
    https_port: int = 0  # both chosen by `start`, just before HAProxy binds them
    http_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def stats_socket(self) -> Path:
        """The admin socket the configuration declares."""
        return self.directory / "haproxy.sock"

    @property
    def ca_file(self) -> Path:
        """The certificate a client trusts to reach the proxy over TLS (made by `config`)."""
        return self.directory / "cert.pem"

    def config(self) -> str:
        """docs/deploy/haproxy.cfg with this run's ports, certificate and socket."""
        pem = self.directory / "haproxy.pem"
        if not pem.exists():
            make_certificate(self.directory)
        replacements = {
            "bind :443 ssl crt /etc/haproxy/certs/voltline.pem": f"bind 127.0.0.1:{self.https_port} ssl crt {pem}",
            "    bind :80\n": f"    bind 127.0.0.1:{self.http_port}\n",
            "stats socket /run/haproxy/voltline.sock": f"stats socket {self.stats_socket}",
            # Two file descriptors per proxied connection: 200,000 needs a raised open-files limit.
            "maxconn 200000": "maxconn 2000",
        }
        documented = {"api1": 8001, "api2": 8002, "gateway1": 8101, "gateway2": 8102}
        for name, port in documented.items():
            replacements[f"server {name} 127.0.0.1:{port}\n"] = f"server {name} 127.0.0.1:{self.servers[name]}\n"
        return substituted(CONFIG.read_text(), replacements)

    def start(self) -> None:
        """Check the configuration, start HAProxy and wait until every server passed its health check."""
        for _ in range(BIND_ATTEMPTS):
            if self._listening():
                break
        else:
            raise AssertionError(f"HAProxy could not bind free ports {BIND_ATTEMPTS} times:\n{self.log_tail()}")
        self.wait_for(lambda states: all(state == "UP" for state in states.values()), "every server UP")

    def _listening(self) -> bool:
        """One start on two freshly chosen ports: True once its stats socket answers, False if a port was taken.

        A port free when chosen may be taken by then (another process's outgoing connection), so a
        failed bind means another try, not a failed test.
        """
        self.https_port, self.http_port = free_port(), free_port()
        path = self.directory / "haproxy.cfg"
        path.write_text(self.config())
        command = [HAPROXY, "-c", "-f", str(path)]
        checked = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        with (self.directory / "haproxy.log").open("ab") as log:
            self.process = subprocess.Popen([HAPROXY, "-db", "-f", str(path)], stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                assert "cannot bind socket" in self.log_tail(), self.log_tail()
                self.process = None
                return False
            with suppress(OSError):
                self.states()
                return True
            time.sleep(0.05)
        raise AssertionError(f"HAProxy's stats socket did not answer within {START_TIMEOUT} s:\n{self.log_tail()}")

    def states(self) -> dict[str, str]:
        """Each server's state (`UP`, `DOWN`, ...) by `backend/server`, from `show stat` on the admin socket."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        rows = csv.DictReader(io.StringIO(b"".join(chunks).decode().lstrip("# ")))
        return {
            f"{row['pxname']}/{row['svname']}": row["status"]
            for row in rows
            if row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], what: str, timeout: float = START_TIMEOUT
    ) -> dict[str, str]:
        """Poll `states()` until `predicate(states)` holds; the states then."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log_tail()
            try:
                states = self.states()
            except OSError:
                states = {}
            if states and predicate(states):
                return states
            time.sleep(0.1)
        raise AssertionError(f"HAProxy: not {what} within {timeout} s: {states}\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop HAProxy (SIGTERM, SIGKILL after 10 s)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        """The end of HAProxy's log, for failure messages."""
        path = self.directory / "haproxy.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
