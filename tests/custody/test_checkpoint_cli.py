"""The lims custody commands for checkpoints, proofs, dossiers and the public key, as an
operator runs them, and their output checked by the offline verifier in its own process."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from lims.db import read_session
from lims.materials.service import get_material
from tests.builders import Lab
from tests.conftest import World
from tests.custody.test_ledger import _cli_env


def _lims(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "custody", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lims.custody.verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_checkpoint_dossier_and_proofs_from_the_command_line(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    lot = Lab.start(engine, world).lot()
    env = {**_cli_env(engine), "LIMS_CHECKPOINT_KEY_FILE": str(tmp_path / "key" / "cp.pem")}
    env.pop("LIMS_CHECKPOINT_KEY", None)
    made = _lims(env, "checkpoint", "--out", str(tmp_path / "cp.json"))
    assert made.returncode == 0, made.stderr
    key_file = tmp_path / "key" / "cp.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600  # generated, owner only
    key = _lims(env, "public-key")
    assert key.returncode == 0 and key.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "lab.pem").write_text(key.stdout, encoding="ascii")
    assert "no checkpoint due" in _lims(env, "checkpoint", "--if-due").stdout

    with read_session(engine) as s:
        shown = get_material(s, lot).material_id
    dossier = tmp_path / "dossier.json"
    out = _lims(env, "dossier", "--lot", shown, "--out", str(dossier))
    assert out.returncode == 0, out.stdout + out.stderr
    ok = _verify(str(dossier), "--key", str(tmp_path / "lab.pem"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().splitlines()[-1].startswith("OK:")

    data = json.loads(dossier.read_text(encoding="utf-8"))
    victim = data["events"][0]
    victim["canonical"] = victim["canonical"].replace('"actor":"', '"actor":"x', 1)
    dossier.write_text(json.dumps(data, indent=2), encoding="utf-8")
    bad = _verify(str(dossier), "--key", str(tmp_path / "lab.pem"))
    assert bad.returncode == 1
    assert f"BROKEN at event {victim['seq']}" in bad.stdout

    export = _lims(env, "export")
    (tmp_path / "custody.jsonl").write_text(export.stdout, encoding="utf-8")
    whole = _verify(str(tmp_path / "custody.jsonl"), "--checkpoint", str(tmp_path / "cp.json"))
    assert whole.returncode == 0, whole.stdout

    proof = _lims(env, "proof", "--seq", "1")
    assert proof.returncode == 0 and json.loads(proof.stdout)["leaf_index"] == 0
    assert _lims(env, "dossier", "--lot", shown, "--dose", shown).returncode == 2
    missing = _lims(env, "dossier", "--order", "ORD-999999")
    assert missing.returncode == 1 and "no order ORD-999999" in missing.stdout
