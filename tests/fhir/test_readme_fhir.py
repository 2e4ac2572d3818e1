"""The README's FHIR curl block, run as written (bash, curl) against a loopback server."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from sqlalchemy import Engine

from lims.fhir.systems import fhir_id
from tests.builders import Lab
from tests.conftest import World
from tests.fhir.helpers import Api
from tests.live_server import live_server

ROOT = Path(__file__).resolve().parents[2]


def _block() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("### FHIR", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "the README's FHIR section has no bash block"
    return match.group(1)


def test_readme_fhir_block_works_as_written(api: Api, engine: Engine, world: World) -> None:
    Lab.start(engine, world).lot()
    with live_server(engine) as base:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _block()],
            env={
                **os.environ,
                "BASE": base,
                "CLINIC": api.tokens["clinic"],
                "TECH": api.tokens["technician"],
                "COI": world.patient_coi,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "4.3.0"
    assert re.search(r"^ServiceRequest/ORD-\d{6} placed$", run.stdout, re.M)
    assert "in-progress" in lines
    assert '"resourceType": "BiologicallyDerivedProduct"' in run.stdout
    assert f"Patient/{fhir_id(world.patient_coi)}" in run.stdout
    assert lines[-1] == "not-found"
