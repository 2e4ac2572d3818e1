"""The restore drill: back up while the lab writes, restore into a fresh database, and the
restored ledger, checkpoints and quantities hold; every write acknowledged before the
backup began is in it. On each database of the run (PostgreSQL: pg_dump/pg_restore into a
new database). LIMS_TEST_LONG=1 keeps writing for longer around a larger ledger."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, make_url, text
from sqlmodel import col, select

from lims.custody.checkpoint import make_checkpoint
from lims.custody.keys import public_pem
from lims.db import make_engine, read_session, write_session
from lims.errors import RuleViolation
from lims.materials.models import Material
from lims.operations.backup import backup, check_restored, restore
from lims.parties.models import Clinic, User
from tests.builders import Lab
from tests.conftest import PG_URL, World
from tests.custody.test_ledger import _cli_env
from tests.reliability.conftest import LONG

KEY = Ed25519PrivateKey.generate()
PEM = public_pem(KEY)
BEFORE = 200 if LONG else 20  # writes before the backup starts
CHECKPOINT_EVERY = 25 if LONG else 5


@contextmanager
def fresh_database(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of the same kind: a new file, or a new PostgreSQL database (the
    dump re-creates the test's schema in it)."""
    if engine.dialect.name == "sqlite":
        target = make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
        yield target
        target.dispose()
        return
    name = f"lims_restore_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    with engine.connect() as conn:
        schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
    url = admin.url.set(database=name)
    target = make_engine(
        url.render_as_string(hide_password=False),
        connect_args={"options": f"-csearch_path={schema}"},
    )
    try:
        yield target
    finally:
        target.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Writer(threading.Thread):
    """Registers lipoaspirates one transaction each and signs a checkpoint now and then;
    notes when each write was acknowledged (its commit returned)."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.acked: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                material = self.lab.lipoaspirate("30 mL")
                self.acked.append((time.monotonic(), material))
                if len(self.acked) % CHECKPOINT_EVERY == 0:
                    with write_session(self.lab.engine) as s:
                        make_checkpoint(s, key=KEY)
        except BaseException as exc:
            self.errors.append(exc)


def test_backup_during_writes_restores_and_verifies(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    writer = Writer(Lab.start(engine, world))
    writer.start()
    while len(writer.acked) < BEFORE and writer.is_alive():
        time.sleep(0.01)
    began = time.monotonic()
    made = backup(engine, to=tmp_path / "lims.backup")
    ended = time.monotonic()
    # The lab kept working through and after the backup.
    while len([t for t, _ in writer.acked if t > ended]) < 3 and writer.is_alive():
        time.sleep(0.01)
    writer.stop.set()
    writer.join(timeout=60)
    assert not writer.errors, writer.errors
    acked_before = {m for t, m in writer.acked if t < began}
    assert len(acked_before) >= BEFORE

    with fresh_database(engine, tmp_path) as fresh:
        restore(fresh, source=made.path)
        with read_session(fresh) as s:
            checked = check_restored(s, public_key=PEM)
            restored = set(s.exec(select(Material.material_id)).all())
            count = s.exec(select(Material).where(col(Material.kind) == "lipoaspirate")).all()
        assert checked.ok, checked.problems
        assert checked.checkpoints >= BEFORE // CHECKPOINT_EVERY - 1  # the last may be after
        assert "OK:" in checked.chain and "holds" in checked.conservation
        missing = acked_before - restored
        assert not missing, f"{len(missing)} acknowledged writes missing from the restore"
        # And nothing from after the backup's end: it is one snapshot.
        after = {m for t, m in writer.acked if t > ended}
        assert not after & restored
        assert len(count) >= len(acked_before)
        # A restore never goes over a database that holds data.
        with pytest.raises(RuleViolation, match="fresh, empty database"):
            restore(fresh, source=made.path)
    with pytest.raises(RuleViolation, match="fresh, empty database"):
        restore(engine, source=made.path)


def test_a_restore_whose_ledger_was_rewritten_is_not_trusted(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    lab = Lab.start(engine, world)
    lab.lipoaspirate()
    with write_session(engine) as s:
        make_checkpoint(s, key=KEY)
    made = backup(engine, to=tmp_path / "lims.backup")
    with fresh_database(engine, tmp_path) as fresh:
        restore(fresh, source=made.path)
        with read_session(fresh) as s:
            assert check_restored(s, public_key=PEM).ok
            other = public_pem(Ed25519PrivateKey.generate())
            checked = check_restored(s, public_key=other)
    assert not checked.ok and "checkpoints" in checked.problems[0]


def _lims(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_backup_restore_and_user_list_from_the_command_line(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    Lab.start(engine, world).lipoaspirate()
    key_file = tmp_path / "cp.pem"
    env = {**_cli_env(engine), "LIMS_CHECKPOINT_KEY_FILE": str(key_file)}
    env.pop("LIMS_CHECKPOINT_KEY", None)
    assert _lims(env, "custody", "checkpoint").returncode == 0
    out = _lims(env, "db", "backup", str(tmp_path / "cli.backup"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{engine.dialect.name} backup" in out.stdout

    users = _lims(env, "user", "list")
    assert users.returncode == 0, users.stderr
    with read_session(engine) as s:
        desk = s.get(User, world.clinic_user_id)
        clinic = s.get(Clinic, world.clinic_id)
        assert desk is not None and clinic is not None
        desk_line = f"{desk.username:<24} clinic     {clinic.code}"
    assert desk_line in users.stdout, users.stdout
    assert "password_hash" not in users.stdout and "$argon2" not in users.stdout

    refused = _lims(env, "db", "restore", str(tmp_path / "cli.backup"))
    assert refused.returncode == 1 and "fresh, empty database" in refused.stdout
    with fresh_database(engine, tmp_path) as fresh:
        into = dict(env)
        if engine.dialect.name == "sqlite":
            into["LIMS_DATABASE_URL"] = fresh.url.render_as_string(hide_password=False)
        else:  # the same schema, in the new database (it does not exist there yet)
            source_url = make_url(env["LIMS_DATABASE_URL"])
            into["LIMS_DATABASE_URL"] = source_url.set(
                database=fresh.url.database
            ).render_as_string(hide_password=False)
        done = _lims(into, "db", "restore", str(tmp_path / "cli.backup"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "restore verified" in done.stdout and "1 checkpoint(s) verified" in done.stdout
