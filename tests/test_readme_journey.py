"""The README's curl journey, run exactly as written against a server over demo data."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lims.db import make_engine
from tests.live_server import live_server

ROOT = Path(__file__).resolve().parent.parent


def _journey() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## A clinic's journey with curl", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the README has no bash block in its curl journey"
    return match.group(1)


@pytest.mark.slow
def test_readme_curl_journey_works_as_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'readme.db'}"
    env = {**os.environ, "LIMS_DATABASE_URL": url}
    demo = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    engine = make_engine(url)
    with live_server(engine) as base:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _journey()],
            env={**env, "BASE": base},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"COI-\w{4}-\w{4}-\w", out)
    assert re.search(r"order ORD-\d{6} placed", out)
    assert "DISPATCHED" in out and "RECEIVED" in out
    assert '"statement": "FOR AUTOLOGOUS USE ONLY"' in out
    assert '"state": "RECEIVED_AT_CLINIC"' in out
    engine.dispose()
