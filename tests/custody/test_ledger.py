"""The custody ledger: every write leaves an event, in one chain nobody can silently edit."""

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DatabaseError
from sqlmodel import col
from sqlmodel import select as sqlmodel_select

from lims.custody import ledger
from lims.custody.models import CustodyEvent
from lims.custody.verify import verify_events
from lims.db import read_session, write_session
from lims.errors import StepRefused
from lims.materials.service import get_material, hand_over
from lims.parties.models import User
from lims.steps.service import InputBooking, OutputRequest
from tests.builders import SVF_OK, Lab
from tests.conftest import World


def events(engine: Engine) -> list[CustodyEvent]:
    with read_session(engine) as s:
        return list(s.exec(sqlmodel_select(CustodyEvent).order_by(col(CustodyEvent.seq))).all())


def event_count(engine: Engine) -> int:
    with read_session(engine) as s:
        return s.execute(select(func.count()).select_from(CustodyEvent)).scalar_one()


def verify(engine: Engine) -> ledger.VerifyResult:
    with read_session(engine) as s:
        return ledger.verify_chain(s)


def test_every_write_appends_an_event_and_the_chain_verifies(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    with write_session(engine) as s:
        tech = s.get(User, world.tech_id)
        assert tech is not None
        hand_over(
            s, material=get_material(s, lot), to_custodian="courier:ColdChain 4711", actor=tech
        )
    actions = {e.action for e in events(engine)}
    assert actions >= {
        "sop.loaded",
        "clinic.created",
        "patient.registered",
        "user.created",
        "instrument.added",
        "reagent_lot.added",
        "material.registered",
        "step.recorded",
        "quantity.booked",
        "material.created",
        "material.state_changed",
        "custody.handed_over",
    }
    result = verify(engine)
    assert result.ok, result.summary()
    assert result.events == event_count(engine)
    with read_session(engine) as s:
        lot_history = ledger.history(s, material_id=lot)
    assert lot_history[0].action == "material.created"
    assert lot_history[-1].action == "custody.handed_over"
    assert (lot_history[-1].from_, lot_history[-1].to) == ("lab:X0001", "courier:ColdChain 4711")
    release = next(e for e in lot_history if e.new == {"state": "RELEASED"})
    assert (release.actor, release.actor_role, release.old) == (
        "sato",
        "qa",
        {"state": "QC_TESTING"},
    )


def test_refused_or_rolled_back_writes_leave_no_event(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate()
    before = event_count(engine)
    with pytest.raises(StepRefused):
        lab.step(
            "SVF-SEP",
            6,
            inputs=[InputBooking(lipo, "500 mL")],
            outputs=[OutputRequest("1e7 cells")],
            parameters=SVF_OK,
        )
    with pytest.raises(RuntimeError), write_session(engine) as s:
        tech = s.get(User, world.tech_id)
        assert tech is not None
        hand_over(s, material=get_material(s, lipo), to_custodian="lab:B", actor=tech)
        raise RuntimeError("crash after the change, before commit")
    assert event_count(engine) == before
    assert lab.get(lipo).custodian == "lab:X0001"
    assert verify(engine).ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE custody_event SET reason = 'edited' WHERE seq = 1",
        "DELETE FROM custody_event WHERE seq = 1",
        "DELETE FROM custody_event",
        "UPDATE custody_material SET material_id = 'X'",
    ],
)
def test_database_refuses_changes_to_the_ledger(
    engine: Engine, world: World, statement: str
) -> None:
    Lab.start(engine, world).lipoaspirate()
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert verify(engine).ok


def test_truncate_is_refused(engine: Engine, world: World) -> None:
    """PostgreSQL's TRUNCATE trigger; SQLite has no TRUNCATE, its "DELETE FROM t" (the
    truncate optimisation) meets the DELETE trigger instead."""
    Lab.start(engine, world).lipoaspirate()
    sql = (
        "TRUNCATE custody_event CASCADE"
        if engine.dialect.name == "postgresql"
        else "DELETE FROM custody_material"
    )
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text(sql))
    assert verify(engine).ok


def _behind_the_back(engine: Engine, *statements: str) -> None:
    """Change the ledger as a superuser would: triggers off, edit, triggers on."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE custody_event DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE custody_material DISABLE TRIGGER USER"))
            for sql in statements:
                conn.execute(text(sql))
            conn.execute(text("ALTER TABLE custody_event ENABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE custody_material ENABLE TRIGGER USER"))
            return
        for name in (
            "custody_event_no_update",
            "custody_event_no_delete",
            "custody_material_no_delete",
        ):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        conn.execute(text("PRAGMA foreign_keys=OFF"))
        for sql in statements:
            conn.execute(text(sql))


@pytest.mark.parametrize(
    ("tamper", "where", "problem"),
    [
        (
            ["UPDATE custody_event SET reason = 'looks innocent' WHERE seq = {k}"],
            "k",
            "hash mismatch",
        ),
        (
            [
                "UPDATE custody_event SET occurred_at = occurred_at WHERE seq = {k}",
                "UPDATE custody_event SET actor = 'someone-else' WHERE seq = {k}",
            ],
            "k",
            "hash mismatch",
        ),
        (
            [
                "DELETE FROM custody_material WHERE seq = {k}",
                "DELETE FROM custody_event WHERE seq = {k}",
            ],
            "k+1",
            "sequence gap",
        ),
        (
            [
                "UPDATE custody_event SET seq = -1 WHERE seq = {k}",
                "UPDATE custody_event SET seq = {k} WHERE seq = {k}+1",
                "UPDATE custody_event SET seq = {k}+1 WHERE seq = -1",
            ],
            "k",
            "prev_hash",
        ),
    ],
)
def test_tampering_behind_the_database_is_found_at_the_right_event(
    engine: Engine, world: World, tamper: list[str], where: str, problem: str
) -> None:
    lab = Lab.start(engine, world)
    lab.svf()
    total = event_count(engine)
    k = total // 2
    _behind_the_back(engine, *(sql.format(k=k) for sql in tamper))
    result = verify(engine)
    assert not result.ok
    assert result.broken_seq == (k if where == "k" else k + 1)
    assert problem in (result.problem or "")


def test_removing_the_newest_events_is_found(engine: Engine, world: World) -> None:
    Lab.start(engine, world).lipoaspirate()
    last = event_count(engine)
    _behind_the_back(
        engine,
        f"DELETE FROM custody_material WHERE seq = {last}",
        f"DELETE FROM custody_event WHERE seq = {last}",
    )
    result = verify(engine)
    assert not result.ok and "removed from the end" in (result.problem or "")


def test_an_event_slipped_in_after_the_head_is_found(engine: Engine, world: World) -> None:
    """A row added past the end without moving the head (as a forger would) is reported."""
    Lab.start(engine, world).lipoaspirate()
    last = event_count(engine)
    columns = (
        "occurred_at, actor, actor_role, action, entity, entity_id, materials, "
        'from_, "to", reason, old, new, corrects_seq'
    )
    _behind_the_back(
        engine,
        f"INSERT INTO custody_event (seq, prev_hash, hash, {columns}) "
        f"SELECT seq + 1, hash, '{'f' * 64}', {columns} FROM custody_event WHERE seq = {last}",
    )
    result = verify(engine)
    assert not result.ok and result.broken_seq == last + 1, result.summary()
    assert "past the end" in (result.problem or "")


def test_an_altered_head_is_found(engine: Engine, world: World) -> None:
    Lab.start(engine, world).lipoaspirate()
    last = event_count(engine)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE custody_head SET hash = '{'0' * 64}'"))
    result = verify(engine)
    assert not result.ok and result.broken_seq == last, result.summary()
    assert "head was altered" in (result.problem or "")


def test_concurrent_appends_form_one_chain(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipos = [lab.lipoaspirate() for _ in range(6)]
    before = event_count(engine)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def worker(material_id: str) -> None:
        try:
            start.wait(timeout=10)
            for n in range(8):
                with write_session(engine) as s:
                    tech = s.get(User, world.tech_id)
                    assert tech is not None
                    hand_over(
                        s,
                        material=get_material(s, material_id),
                        to_custodian=f"lab:bench-{n}",
                        actor=tech,
                    )
        except BaseException as exc:  # reported below; a thread cannot fail the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(m,)) for m in lipos]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert event_count(engine) == before + 48
    result = verify(engine)
    assert result.ok, result.summary()
    assert result.last_seq == before + 48


def _cli_env(engine: Engine) -> dict[str, str]:
    """Point the CLI at the test's database (on PostgreSQL, at the test schema)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        url = f"{url}?options=-csearch_path%3D{schema}"
    return {**os.environ, "LIMS_DATABASE_URL": url}


def _export(tmp_path: Path, engine: Engine, *extra: str) -> tuple[Path, dict[str, str]]:
    env = _cli_env(engine)
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "custody", "export", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    path = tmp_path / "custody.jsonl"
    path.write_text(out.stdout, encoding="utf-8")
    return path, env


def _offline(path: Path) -> subprocess.CompletedProcess[str]:
    # -I: isolated mode, no site-packages, no project on the path beyond the module itself.
    return subprocess.run(
        [sys.executable, "-I", str(Path("lims/custody/verify.py").resolve()), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_export_verifies_offline_and_one_byte_changed_fails(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    Lab.start(engine, world).svf()
    path, env = _export(tmp_path, engine)
    ok = _offline(path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"OK: {event_count(engine)} events verified" in ok.stdout
    raw = path.read_bytes()
    tampered = raw.replace(b"step.recorded", b"Step.recorded", 1)  # one byte changed
    assert len(tampered) == len(raw) and tampered != raw
    bad_path = tmp_path / "tampered.jsonl"
    bad_path.write_bytes(tampered)
    bad = _offline(bad_path)
    assert bad.returncode == 1
    assert "BROKEN at event" in bad.stdout and "hash mismatch" in bad.stdout
    cli = subprocess.run(
        [sys.executable, "-m", "cli.main", "custody", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0 and "events verified" in cli.stdout


def test_partial_export_since_a_time(engine: Engine, world: World, tmp_path: Path) -> None:
    lab = Lab.start(engine, world)
    lab.lipoaspirate()
    middle = events(engine)[5]
    path, _ = _export(tmp_path, engine, "--since", middle.occurred_at.isoformat())
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["seq"] <= middle.seq
    result = _offline(path)
    assert result.returncode == 0 and "partial export" in result.stdout


def test_canonical_form_is_as_documented(engine: Engine, world: World) -> None:
    """Recompute one exported event's hash from the documented rules alone."""
    Lab.start(engine, world).lipoaspirate()
    with read_session(engine) as s:
        line = next(iter(ledger.export_jsonl(s)))
    event = json.loads(line)
    body = {k: v for k, v in event.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert hashlib.sha256(canonical).hexdigest() == event["hash"]
    assert event["prev_hash"] == "0" * 64 and event["seq"] == 1
    assert event["occurred_at"].endswith("Z")
    assert verify_events([event]).ok


def test_appends_around_savepoints_form_one_chain(engine: Engine, world: World) -> None:
    """A transaction knows its head after its first append; a rollback to a savepoint
    undoes the events appended in it, and the next append must link to what remains."""
    Lab.start(engine, world).lipoaspirate()
    before = event_count(engine)

    def note(s: Any, what: str) -> None:
        ledger.append(s, actor=None, action=f"test.{what}", entity="test", entity_id=what)

    with write_session(engine) as s:
        note(s, "a")
        undone = s.begin_nested()
        note(s, "b")
        note(s, "b2")
        undone.rollback()
        note(s, "c")
        with s.begin_nested():
            note(s, "d")
        note(s, "e")
        with s.begin_nested():
            pass
        note(s, "f")
    with read_session(engine) as s:
        actions = (
            s.execute(
                select(col(CustodyEvent.action))
                .where(col(CustodyEvent.seq) > before)
                .order_by(col(CustodyEvent.seq))
            )
            .scalars()
            .all()
        )
        assert ledger.verify_chain(s).ok
    assert actions == ["test.a", "test.c", "test.d", "test.e", "test.f"]
