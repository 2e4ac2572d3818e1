"""The contract an integrator generates a client from, checked as one would: a Python
client generated with openapi-python-client runs the README's clinic journey typed under
``mypy --strict`` (``--disallow-any-expr`` on the journey: no Any in the calls it makes),
a refusal parses to the Problem model; TypeScript types from openapi-typescript compile
under ``tsc --strict`` with a file that uses them.

The generator lives in its own venv (``make client-tools``: its pins of httpx and typer
clash with ours); openapi-typescript and typescript come from package-lock.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from api.app import create_app
from lims.db import make_engine, write_session
from lims.demo import DEMO_PASSWORD
from lims.parties.queries import get_user
from lims.signatures.passwords import set_password
from tests.live_server import live_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GENERATOR = ROOT / ".venv-client" / "bin" / "openapi-python-client"
NODE_BIN = ROOT / "node_modules" / ".bin"
DESK_PASSWORD = "ginza front desk passphrase"
MYPY_INI = "[mypy]\nstrict = True\n\n[mypy-journey]\ndisallow_any_expr = True\n"


def _document(tmp_path: Path) -> Path:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(create_app().openapi()), encoding="utf-8")
    return spec


def _run(args: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_generated_python_client_runs_the_clinic_journey_typed(tmp_path: Path) -> None:
    assert GENERATOR.exists(), "make client-tools installs openapi-python-client"
    spec = _document(tmp_path)
    made = _run(
        [
            GENERATOR,
            "generate",
            "--path",
            spec,
            "--output-path",
            tmp_path / "lims_client",
            "--meta",
            "none",
            "--config",
            HERE / "client-config.yaml",
        ],
        tmp_path,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout, made.stdout  # nothing of the document was dropped
    shutil.copy(HERE / "journey.py", tmp_path / "journey.py")
    (tmp_path / "mypy.ini").write_text(MYPY_INI, encoding="utf-8")
    typed = _run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "journey.py", "lims_client"],
        tmp_path,
    )
    assert typed.returncode == 0, typed.stdout[-3000:]

    url = f"sqlite:///{tmp_path / 'journey.db'}"
    demo = _run([sys.executable, "-m", "cli.main", "demo"], ROOT, LIMS_DATABASE_URL=url)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    engine = make_engine(url)
    with write_session(engine) as s:
        desk = get_user(s, username="ginza-desk")
        set_password(s, user=desk, password=DESK_PASSWORD, actor=None)
    with live_server(engine) as base:
        run = _run(
            [sys.executable, "journey.py", base, DESK_PASSWORD, DEMO_PASSWORD],
            tmp_path,
            PYTHONPATH=str(tmp_path),
        )
    engine.dispose()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "the retry returned the same order" in out
    assert "refused as it should be: dose: 3 kg" in out
    assert "dispatched: DISPATCHED" in out and "received: ORD-" in out


@pytest.mark.slow
def test_generated_typescript_types_compile_under_strict(tmp_path: Path) -> None:
    assert (NODE_BIN / "tsc").exists(), "make web-tools installs typescript (package.json)"
    spec = _document(tmp_path)
    made = _run([NODE_BIN / "openapi-typescript", spec, "-o", tmp_path / "api.d.ts"], tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    shutil.copy(HERE / "usage.ts", tmp_path / "usage.ts")
    compiled = _run(
        [NODE_BIN / "tsc", "--noEmit", "--strict", "--target", "es2022", "usage.ts"], tmp_path
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
