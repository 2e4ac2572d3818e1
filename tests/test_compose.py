"""docker-compose.yml is valid (docker-compose config), says what flows/topology.py says,
and its Dockerfile copies files that exist. No Docker engine runs here and no image can be
pulled, so this is as far as the file can be checked on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from flows import topology

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {
    "LIMS_SECRET_KEY": "x" * 40,
    "LIMS_CHECKPOINT_KEY": "-----BEGIN PRIVATE KEY-----",
}


def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed: `make compose` installs Debian's")
    return subprocess.run(
        [tool, "-f", str(COMPOSE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_compose_config_validates_and_refuses_a_missing_secret() -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIMS_")}
    ok = _compose("config", "-q", env={**base, **SECRETS})
    assert ok.returncode == 0, ok.stderr
    missing = _compose("config", "-q", env={**base, "LIMS_CHECKPOINT_KEY": "k"})
    assert missing.returncode != 0
    assert "set LIMS_SECRET_KEY to a real secret" in missing.stderr


def test_compose_commands_and_environment_are_the_topology() -> None:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    for name, command in topology.compose_commands().items():
        assert services[name]["command"] == command, name
    expected = topology.lims_environment(topology.COMPOSE)
    for name in topology.LIMS_SERVICES:
        assert services[name]["environment"] == expected, name
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
    assert services["prefect-server"]["environment"] == topology.COMPOSE_PREFECT_SERVER
    assert "cannot be pulled" in COMPOSE.read_text(encoding="utf-8")


def test_dockerfile_copies_files_that_exist() -> None:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies, "the Dockerfile copies nothing"
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
    # Every package the installed project needs is copied (pyproject's packages).
    copied = {s for sources in copies for s in sources}
    for package in ("lims", "api", "flows", "cli", "migrations"):
        assert package in copied, package
