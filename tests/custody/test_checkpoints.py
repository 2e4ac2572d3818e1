"""Signed checkpoints, dossiers and whole exports checked offline against checkpoints:
every tampering named at its place."""

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError

from lims.custody import ledger
from lims.custody.checkpoint import (
    checkpoint_due,
    checkpoint_json,
    consistency,
    get_checkpoint,
    ledger_tree,
    make_checkpoint,
)
from lims.custody.dossier import build_dossier
from lims.custody.keys import public_pem
from lims.custody.merkle import ProofError, verify_consistency
from lims.custody.verify import (
    check_checkpoint,
    event_hash,
    main,
    verify_against_checkpoints,
    verify_dossier,
)
from lims.db import read_session, write_session
from lims.errors import LimsError
from tests.builders import Lab
from tests.conftest import World

KEY = Ed25519PrivateKey.generate()
PEM = public_pem(KEY)


def _checkpoint(engine: Engine) -> dict[str, Any]:
    with write_session(engine) as s:
        return checkpoint_json(make_checkpoint(s, key=KEY), public_key=PEM)


def _export(engine: Engine) -> list[dict[str, Any]]:
    with read_session(engine) as s:
        return [json.loads(line) for line in ledger.export_jsonl(s)]


def _note(engine: Engine, n: int = 1) -> None:
    with write_session(engine) as s:
        for i in range(n):
            ledger.append(s, actor=None, action="test.note", entity="note", entity_id=i)


def test_a_checkpoint_is_signed_and_tampering_is_refused(engine: Engine, world: World) -> None:
    cp = _checkpoint(engine)
    check_checkpoint(cp, PEM)
    assert cp["tree_size"] == len(_export(engine))
    for field, value in [
        ("signature", "00" * 64),
        ("root_hash", "ab" * 32),
        ("tree_size", cp["tree_size"] - 1),
        ("last_hash", "cd" * 32),
        ("made_at", "2020-01-01T00:00:00.000000Z"),
    ]:
        with pytest.raises(ProofError, match="signature does not verify"):
            check_checkpoint({**cp, field: value}, PEM)
    other = public_pem(Ed25519PrivateKey.generate())
    with pytest.raises(ProofError, match="key_id"):
        check_checkpoint(cp, other)
    with write_session(engine) as s:  # nothing appended: the same checkpoint stands
        assert make_checkpoint(s, key=KEY).id == cp["id"]


def test_checkpoints_are_append_only(engine: Engine, world: World) -> None:
    cp = _checkpoint(engine)
    for statement in (
        "UPDATE custody_checkpoint SET root_hash = 'x'",
        "DELETE FROM custody_checkpoint",
    ):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with read_session(engine) as s:
        assert (
            checkpoint_json(
                make_checkpoint.__globals__["get_checkpoint"](s, cp["id"]), public_key=PEM
            )
            == cp
        )


def test_due_after_every_events_and_consistency_between_checkpoints(
    engine: Engine, world: World
) -> None:
    first = _checkpoint(engine)
    with read_session(engine) as s:
        assert not checkpoint_due(s, every=3)
    _note(engine, 3)
    with read_session(engine) as s:
        assert checkpoint_due(s, every=3)
    second = _checkpoint(engine)
    assert second["tree_size"] == first["tree_size"] + 3
    with read_session(engine) as s:
        proof = consistency(
            s, first=get_checkpoint(s, first["id"]), second=get_checkpoint(s, second["id"])
        )
    hashes = [bytes.fromhex(h) for h in proof["proof"]]
    verify_consistency(
        first["tree_size"],
        second["tree_size"],
        bytes.fromhex(first["root_hash"]),
        bytes.fromhex(second["root_hash"]),
        hashes,
    )
    with pytest.raises(ProofError):
        verify_consistency(
            first["tree_size"],
            second["tree_size"],
            bytes.fromhex("00" * 32),
            bytes.fromhex(second["root_hash"]),
            hashes,
        )


def _dossier(engine: Engine, world: World) -> dict[str, Any]:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    _note(engine, 2)  # events after the lot, outside its dossier
    with write_session(engine) as s:
        return build_dossier(s, kind="lot", item=lot, key=KEY)


def test_a_dossier_verifies_and_every_tampering_is_named(engine: Engine, world: World) -> None:
    dossier = _dossier(engine, world)
    assert dossier["events"] and dossier["materials"]
    result = verify_dossier(dossier, key=PEM)
    assert result.ok, result.summary()
    assert result.events == len(dossier["event_seqs"])
    victim = dossier["events"][len(dossier["events"]) // 2]
    seq = victim["seq"]

    changed = copy.deepcopy(dossier)
    entry = next(e for e in changed["events"] if e["seq"] == seq)
    entry["canonical"] = entry["canonical"].replace('"seq":', '"seq": ', 1)
    assert verify_dossier(changed, key=PEM).broken_seq == seq

    changed = copy.deepcopy(dossier)  # a changed byte, chain hash recomputed to match
    entry = next(e for e in changed["events"] if e["seq"] == seq)
    body = json.loads(entry["canonical"])
    body["actor"] = body["actor"] + "x"
    entry["canonical"] = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    entry["hash"] = event_hash(body)
    refused = verify_dossier(changed, key=PEM)
    assert refused.broken_seq == seq and "inclusion proof refused" in (refused.problem or "")

    changed = copy.deepcopy(dossier)
    changed["events"] = [e for e in changed["events"] if e["seq"] != seq]
    refused = verify_dossier(changed, key=PEM)
    assert refused.broken_seq == seq and "missing" in (refused.problem or "")

    changed = copy.deepcopy(dossier)
    entry = next(e for e in changed["events"] if e["seq"] == seq)
    entry["proof"][0] = ("0" if entry["proof"][0][0] != "0" else "1") + entry["proof"][0][1:]
    refused = verify_dossier(changed, key=PEM)
    assert refused.broken_seq == seq and "inclusion proof refused" in (refused.problem or "")

    changed = copy.deepcopy(dossier)
    changed["checkpoint"]["root_hash"] = "ab" * 32
    refused = verify_dossier(changed, key=PEM)
    assert refused.broken_seq is None and (refused.problem or "").startswith("checkpoint:")


def test_a_truncated_or_forked_export_is_refused_against_a_checkpoint(
    engine: Engine, world: World
) -> None:
    Lab.start(engine, world).lipoaspirate("10 mL")
    early = _checkpoint(engine)
    _note(engine, 5)
    cp = _checkpoint(engine)
    events = _export(engine)
    assert verify_against_checkpoints(events, [early, cp], key=PEM).ok

    truncated = verify_against_checkpoints(events[:-1], [early, cp], key=PEM)
    assert not truncated.ok and truncated.broken_seq == cp["tree_size"]
    assert "truncated" in (truncated.problem or "")

    forked = copy.deepcopy(events)
    at = early["tree_size"] + 2  # an event rewritten after the early checkpoint
    forked[at - 1]["reason"] = "rewritten afterwards"
    prev = forked[at - 2]["hash"]
    for event in forked[at - 1 :]:
        event["prev_hash"] = prev
        event["hash"] = prev = event_hash(event)
    refused = verify_against_checkpoints(forked, [early, cp], key=PEM)
    assert not refused.ok and "rewritten" in (refused.problem or "")
    assert refused.broken_seq == early["tree_size"] + 1
    assert f"events {early['tree_size'] + 1}-{cp['tree_size']}" in (refused.problem or "")
    # The export alone still verifies: only the checkpoint catches the fork.
    assert verify_against_checkpoints(forked, [], key=PEM).ok


def test_the_command_line_verifier(engine: Engine, world: World, tmp_path: Path) -> None:
    dossier = _dossier(engine, world)
    (tmp_path / "dossier.json").write_text(json.dumps(dossier, indent=2), encoding="utf-8")
    (tmp_path / "key.pem").write_text(PEM, encoding="ascii")
    assert main([str(tmp_path / "dossier.json"), "--key", str(tmp_path / "key.pem")]) == 0
    cp = _checkpoint(engine)
    (tmp_path / "cp.json").write_text(json.dumps(cp), encoding="utf-8")
    lines = [json.dumps(e) for e in _export(engine)]
    (tmp_path / "custody.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main([str(tmp_path / "custody.jsonl"), "--checkpoint", str(tmp_path / "cp.json")]) == 0
    assert main([str(tmp_path / "custody.jsonl")]) == 0
    (tmp_path / "short.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    assert main([str(tmp_path / "short.jsonl"), "--checkpoint", str(tmp_path / "cp.json")]) == 1
    shown = subprocess.run(
        [sys.executable, "-m", "lims.custody.verify", "--help"], capture_output=True, text=True
    )
    assert shown.returncode == 0 and "--checkpoint" in shown.stdout


def test_tree_over_the_ledger_matches_the_checkpoint(engine: Engine, world: World) -> None:
    cp = _checkpoint(engine)
    with read_session(engine) as s:
        assert ledger_tree(s).root().hex() == cp["root_hash"]


def test_the_key_from_settings(tmp_path: Path) -> None:
    from lims.custody.keys import checkpoint_key, key_id, private_pem
    from lims.settings import CheckpointSettings

    with pytest.raises(ValueError, match="LIMS_CHECKPOINT_KEY must be set in production"):
        CheckpointSettings(environment="production")
    given = CheckpointSettings(environment="production", checkpoint_key=private_pem(KEY).decode())
    assert key_id(checkpoint_key(given)) == key_id(KEY)
    (tmp_path / "lab.pem").write_bytes(private_pem(KEY))
    from_file = CheckpointSettings(checkpoint_key=str(tmp_path / "lab.pem"))
    assert key_id(checkpoint_key(from_file)) == key_id(KEY)
    generated = CheckpointSettings(checkpoint_key_file=tmp_path / "var" / "checkpoint_key")
    first = key_id(checkpoint_key(generated))
    assert key_id(checkpoint_key(generated)) == first  # generated once, then kept
    assert (tmp_path / "var" / "checkpoint_key").stat().st_mode & 0o777 == 0o600


def test_dossiers_of_a_dose_and_of_a_patient_hold_their_lineage(
    engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    (dose,) = [o.material_id for o in lab.allocate(lot, world.patient_coi).outputs]
    with write_session(engine) as s:
        by_dose = build_dossier(s, kind="dose", item=dose, key=KEY)
        by_patient = build_dossier(s, kind="patient", item=world.patient_coi, key=KEY)
        with pytest.raises(LimsError, match="no order ORD-999999"):
            build_dossier(s, kind="order", item="ORD-999999", key=KEY)
    assert {dose, lot} <= set(by_dose["materials"])
    assert set(by_dose["event_seqs"]) <= set(by_patient["event_seqs"])
    registered = [
        e for e in by_patient["events"] if '"action":"patient.registered"' in e["canonical"]
    ]
    assert len(registered) == 1 and world.patient_coi in registered[0]["canonical"]
    for dossier in (by_dose, by_patient):
        assert verify_dossier(dossier, key=PEM).ok


def test_no_checkpoint_is_signed_over_a_ledger_edited_behind_the_triggers(
    engine: Engine, world: World
) -> None:
    """The lab's signature vouches for the ledger: a broken chain, or a chain rewritten
    and re-hashed so that it verifies again, is refused before anything is signed."""
    from lims.errors import RuleViolation
    from tests.custody.test_ledger import _behind_the_back

    Lab.start(engine, world).lipoaspirate("10 mL")
    first = _checkpoint(engine)
    size = first["tree_size"]
    with read_session(engine) as s:
        last = next(ledger.iter_events(s, since_seq=size, until_seq=size))
    last["reason"] = "rewritten afterwards"
    rehashed = event_hash(last)
    # Only the event: the chain no longer links (what a careless editor leaves).
    _behind_the_back(
        engine, f"UPDATE custody_event SET reason = 'rewritten afterwards' WHERE seq = {size}"
    )
    _note(engine)
    with pytest.raises(RuleViolation, match="chain broken"), write_session(engine) as s:
        make_checkpoint(s, key=KEY)
    # The event re-hashed and the head moved with it: the chain verifies again, but its
    # first events no longer give the root the lab signed before.
    with read_session(engine) as s:
        following = next(ledger.iter_events(s, since_seq=size + 1, until_seq=size + 1))
    following["prev_hash"] = rehashed
    _behind_the_back(
        engine,
        f"UPDATE custody_event SET hash = '{rehashed}' WHERE seq = {size}",
        f"UPDATE custody_event SET prev_hash = '{rehashed}', hash = '{event_hash(following)}' "
        f"WHERE seq = {size + 1}",
        f"UPDATE custody_head SET hash = '{event_hash(following)}'",
    )
    with read_session(engine) as s:
        assert ledger.verify_chain(s).ok  # the rewrite is invisible to the chain alone
    with pytest.raises(RuleViolation, match="rewritten"), write_session(engine) as s:
        make_checkpoint(s, key=KEY)
    with read_session(engine) as s:
        assert get_checkpoint(s, first["id"]).tree_size == size  # nothing new was signed
