"""docs/deploy/'s environment files, systemd unit and HAProxy configuration agree with the settings and each other.

Every variable the files set is a setting `load_settings` knows (a misspelt one would be ignored
silently by a running process); each instance's file with the shared one makes valid settings of
the role its name says; and each HAProxy server of docs/deploy/haproxy.cfg is the port of the
instance of the same name, so the recipe's pieces fit as shipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from voltline.settings import PREFIX, Settings, load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy"
SHARED = DEPLOY / "voltline.env"
INSTANCES = sorted(path for path in DEPLOY.glob("*.env") if path != SHARED)
PLACEHOLDER = re.compile(r"<[^>]*>")
KNOWN = {PREFIX + name.upper() for name in Settings.__struct_fields__}


def environment(path: Path) -> dict[str, str]:
    """The variables an environment file sets (systemd's `KEY=value` lines), placeholders filled in."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = PLACEHOLDER.sub("placeholder", value.strip())
    return pairs


def test_the_deploy_files_name_the_instances_haproxy_balances() -> None:
    """The recipe: two api, two gateway and one worker instance."""
    assert [path.stem for path in INSTANCES] == ["api1", "api2", "gateway1", "gateway2", "worker1"]


@pytest.mark.parametrize("path", [SHARED, *INSTANCES], ids=lambda path: path.name)
def test_every_variable_of_an_environment_file_is_a_setting(path: Path) -> None:
    """A misspelt variable would be ignored by `load_settings`: none is."""
    assert set(environment(path)) - KNOWN == set()


@pytest.mark.parametrize("path", INSTANCES, ids=lambda path: path.name)
def test_an_instance_with_the_shared_file_makes_settings_of_its_role(path: Path) -> None:
    """voltline@.service reads voltline.env, then <instance>.env: valid settings of the role the name says."""
    settings = load_settings({**environment(SHARED), **environment(path)})
    assert settings.role == path.stem.rstrip("0123456789")
    assert settings.bus_url and settings.secret_key and not settings.is_sqlite


def test_each_haproxy_server_is_the_port_of_the_instance_of_its_name() -> None:
    """docs/deploy/haproxy.cfg `server api1 127.0.0.1:8001` is api1.env's VOLTLINE_PORT, and so on."""
    servers = dict(re.findall(r"^\s*server (\S+) 127\.0\.0\.1:(\d+)$", (DEPLOY / "haproxy.cfg").read_text(), re.M))
    ports = {path.stem: environment(path)["VOLTLINE_PORT"] for path in INSTANCES if "worker" not in path.stem}
    assert servers == ports


def test_the_unit_reads_the_shared_file_then_the_instance_file_and_serves() -> None:
    """voltline@.service: the order of its EnvironmentFile lines decides which value wins."""
    unit = (DEPLOY / "voltline@.service").read_text()
    files = re.findall(r"^EnvironmentFile=(\S+)$", unit, re.M)
    assert files == ["/etc/voltline/voltline.env", "/etc/voltline/%i.env"]
    assert re.search(r"^ExecStart=\S+/voltline serve$", unit, re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_finds_nothing_to_complain_about_in_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` of an instance and the target: no unknown key, no bad value (the binary stubbed)."""
    unit = (DEPLOY / "voltline@.service").read_text()
    (tmp_path / "voltline@.service").write_text(re.sub(r"(?m)^ExecStart=\S+", "ExecStart=/bin/true", unit))
    (tmp_path / "voltline@api1.service").symlink_to(tmp_path / "voltline@.service")
    shutil.copy(DEPLOY / "voltline.target", tmp_path / "voltline.target")
    units = [str(tmp_path / "voltline@api1.service"), str(tmp_path / "voltline.target")]
    command = ["systemd-analyze", "verify", "--man=no", *units]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
