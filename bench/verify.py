"""``custody verify`` throughput at 1 million events against raw SHA-256 over the same
canonical bytes.

    .venv/bin/python -m bench.verify [--events 1000000] [--backends sqlite,postgresql]

For each backend a fresh database (bench.common.fresh_database), migrated. The chain is
computed here, in Python, exactly as ``lims.custody.ledger.append`` computes it (the same
``as_dict`` fields, ``canonical_bytes`` and ``event_hash``), from a rotation of event shapes
copied from a real ledger (hand-overs, state changes, bookings, steps with parameters,
materials created, QC results, orders; about 500 canonical bytes an event, as in a real run),
and bulk-loaded: SQLite with executemany, PostgreSQL with COPY. The append-only triggers
refuse UPDATE and DELETE only, so loading is plain INSERTs; the head row is then set to the
chain's end. (The custody_material index is not loaded: verify does not read it.)

Then, each timed on its own:

* ``verify_chain(session)`` over the whole ledger (what ``lims custody verify`` and
  ``GET /api/v1/audit/verify`` run): events/s;
* the baseline: ``hashlib.sha256(canonical).hexdigest()`` over the same canonical bytes,
  held in memory: events/s. Target: verify within 3x of hashing alone;
* where verify's time goes: reading the events (``iter_events``: SQL, ORM rows, ``as_dict``),
  and building the canonical JSON from those dicts, each timed alone over the whole ledger.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text, update
from sqlmodel import col, select

from bench.common import Database, fresh_database, machine
from lims.custody.ledger import as_dict, format_time, iter_events, verify_chain
from lims.custody.models import CustodyEvent, CustodyHead
from lims.custody.verify import canonical_bytes, verify_events
from lims.db import read_session
from lims.identity.codes import make_material_id
from lims.sops.parameters import catalog_sop, typical_parameters
from lims.sops.validation import check_parameters

TARGET = 3.0
# An SVF-SEP step's parameters as a step record stores them (typical values).
SVF_RECORD = check_parameters(catalog_sop("SVF-SEP"), typical_parameters("SVF-SEP"), {}).record()
EVENT = CustodyEvent.__table__  # type: ignore[attr-defined]
ACTORS = [
    ("tanaka", "technician"),
    ("mori", "technician"),
    ("sato", "qa"),
    ("ginza-desk", "clinic"),
]


def _mid(rng: random.Random) -> str:
    return make_material_id("X0001", 26, rng.randrange(1, 999_999))


def shape(n: int, rng: random.Random, when: datetime) -> dict[str, Any]:
    """One event's fields (without seq/prev_hash/hash), shaped like the services write them."""
    a, role = ACTORS[n % len(ACTORS)]
    m, m2 = _mid(rng), _mid(rng)
    t = format_time(when)
    kind = n % 10
    base: dict[str, Any] = {
        "occurred_at": t,
        "actor": a,
        "actor_role": role,
        "materials": [m],
        "from": None,
        "to": None,
        "reason": None,
        "old": None,
        "new": None,
        "corrects_seq": None,
    }
    if kind in (0, 1, 2):
        return base | {
            "action": "material.state_changed",
            "entity": "material",
            "entity_id": m,
            "old": {"state": "QUARANTINE"},
            "new": {"state": "QC_TESTING"},
        }
    if kind in (3, 4):
        return base | {
            "action": "quantity.booked",
            "entity": "material",
            "entity_id": m,
            "old": {"remaining": f"{rng.randrange(10, 900)}.000000000000"},
            "new": {
                "remaining": "20.000000000000",
                "taken": f"{rng.randrange(1, 100)}.000000000000",
                "measured": None,
                "unit": "mL",
                "step": n // 7,
                "population_doublings": None,
            },
        }
    if kind == 5:
        return base | {
            "action": "step.recorded",
            "entity": "step",
            "entity_id": str(n // 7),
            "materials": sorted([m, m2]),
            "new": {
                "sop": "SVF-SEP",
                "sop_version": 1,
                "outcome": "accepted",
                "performed_at": t,
                "parameters": SVF_RECORD,
                "warnings": [],
                "acceptance_failures": [],
                "notes": None,
                "instruments": ["centrifuge-1", "cell_counter-1"],
                "reagent_lots": ["collagenase:col-1"],
                "losses": [],
            },
        }
    if kind == 6:
        return base | {
            "action": "material.created",
            "entity": "material",
            "entity_id": m2,
            "materials": sorted([m, m2]),
            "from": m,
            "to": "lab:X0001",
            "new": {
                "kind": "cm_batch",
                "state": "CREATED",
                "quantity": {"value": "60", "unit": "mL"},
                "canonical": "60.000000000000",
                "patient_id": rng.randrange(1, 5000),
                "coi": None,
                "recipient_id": None,
                "use": "autologous",
                "collected_at": None,
                "expires_at": None,
                "container": "T-175 flask",
                "passage": 2,
                "population_doublings": "6.5",
                "created_in_step": n // 7,
            },
        }
    if kind == 7:
        return base | {
            "action": "custody.handed_over",
            "entity": "material",
            "entity_id": m,
            "from": "lab:X0001",
            "to": "courier:ColdChain 4711",
            "reason": f"order ORD-{n:06d}; logger TL-{n % 97}",
        }
    if kind == 8:
        return base | {
            "action": "qc.result_entered",
            "entity": "qc_result",
            "entity_id": str(n),
            "new": {
                "test": "endotoxin",
                "value": "0.5",
                "unit": "EU/mL",
                "passed": True,
                "specification": "AAPE-LOT-SPEC v1",
                "limit": "< 2 EU/mL",
                "method": "LAL kinetic chromogenic",
                "tested_at": t,
            },
        }
    return base | {
        "action": "order.placed",
        "entity": "order",
        "entity_id": f"ORD-{n:06d}",
        "materials": [],
        "new": {
            "patient": "COI-TUYB-8WNS-X",
            "product": "aape",
            "dose": {"value": "1", "unit": "vial"},
            "session": "1/6",
            "planned_use_at": t,
            "ship_to": "Ginza Hair Clinic, Tokyo",
            "prescriber": "Dr. H. Fukuoka",
            "consent_ref": f"CONSENT-{n}",
        },
    }


def generate(
    n_events: int, start_seq: int, prev: str, seed: int
) -> Iterator[tuple[dict[str, Any], bytes]]:
    """(event as exported, its canonical bytes), chained from (start_seq, prev)."""
    rng = random.Random(seed)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n_events):
        when += timedelta(microseconds=rng.randrange(1, 30_000_000))
        event = {"seq": start_seq + i, "prev_hash": prev, **shape(i, rng, when)}
        canonical = canonical_bytes(event)
        event["hash"] = prev = hashlib.sha256(canonical).hexdigest()
        yield event, canonical


def _column_row(event: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in event.items() if k != "from"}
    row["from_"] = event["from"]
    row["occurred_at"] = datetime.strptime(event["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=UTC
    )
    return row


def load(db: Database, n_events: int, seed: int, batch: int) -> tuple[list[bytes], str, float]:
    """Bulk-load a chained ledger; returns the canonical bytes, the last hash, seconds."""
    started = time.perf_counter()
    with read_session(db.engine) as s:
        head = s.exec(select(CustodyHead)).one()
        existing = s.exec(select(CustodyEvent).order_by(col(CustodyEvent.seq))).all()
        start_seq, prev = head.seq + 1, head.hash
    assert len(existing) == head.seq, "a fresh ledger was expected"
    canon: list[bytes] = []
    last = prev
    pending: list[dict[str, Any]] = []

    def flush(conn: Any) -> None:
        if not pending:
            return
        if db.backend == "postgresql":
            raw = conn.connection.driver_connection
            cols = [c.name for c in EVENT.columns]
            quoted = ", ".join(f'"{c}"' for c in cols)
            with raw.cursor() as cur, cur.copy(f"COPY custody_event ({quoted}) FROM STDIN") as cp:
                for row in pending:
                    cp.write_row(
                        tuple(
                            json.dumps(row[c], ensure_ascii=False)
                            if c in ("materials", "old", "new") and row[c] is not None
                            else row[c]
                            for c in cols
                        )
                    )
        else:
            conn.execute(insert(EVENT), pending)
        pending.clear()

    with db.engine.begin() as conn:
        for event, canonical in generate(n_events, start_seq, prev, seed):
            canon.append(canonical)
            last = event["hash"]
            pending.append(_column_row(event))
            if len(pending) >= batch:
                flush(conn)
        flush(conn)
        conn.execute(
            update(CustodyHead.__table__)  # type: ignore[attr-defined]
            .where(CustodyHead.__table__.c.id == 1)  # type: ignore[attr-defined]
            .values(seq=start_seq + n_events - 1, hash=last)
        )
    with db.engine.begin() as conn:
        if db.backend == "postgresql":
            conn.execute(text("ANALYZE custody_event"))
        else:
            conn.execute(text("ANALYZE"))
    return canon, last, time.perf_counter() - started


def orm_events(session: Any, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """iter_events as it was before it read plain rows: ORM CustodyEvent objects."""
    next_seq = 1
    while True:
        rows = session.exec(
            select(CustodyEvent)
            .where(col(CustodyEvent.seq) >= next_seq)
            .order_by(col(CustodyEvent.seq))
            .limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield as_dict(row)
        next_seq = rows[-1].seq + 1


def timed(label: str, fn: Any) -> tuple[Any, float]:
    gc.collect()
    started = time.perf_counter()
    value = fn()
    took = time.perf_counter() - started
    print(f"    {label:<58} {took:8.2f} s")
    return value, took


def bench(db: Database, args: argparse.Namespace) -> dict[str, float]:
    canon, last, load_s = load(db, args.events, args.seed, args.batch)
    n = len(canon)
    size = sum(len(c) for c in canon) / n
    print(
        f"[{db.backend}] loaded {n:,} chained events in {load_s:.1f} s "
        f"({size:.0f} canonical bytes each)"
    )
    gc.freeze()  # the benchmark's own million byte strings are not the verifier's garbage

    def verify() -> Any:
        with read_session(db.engine) as s:
            return verify_chain(s)

    result, verify_s = timed("verify_chain (the whole ledger)", verify)
    assert result.ok and result.events == n and result.last_hash == last, result.summary()

    def hashes() -> str:
        h = ""
        for c in canon:
            h = hashlib.sha256(c).hexdigest()
        return h

    def verify_orm() -> Any:
        with read_session(db.engine) as s:
            return verify_events(orm_events(s))

    before, orm_s = timed("  reference: verify over ORM objects (before the change)", verify_orm)
    assert before.ok and before.events == n

    final, sha_s = timed("baseline: sha256(canonical).hexdigest() (bytes in memory)", hashes)
    assert final == last

    def read_only() -> int:
        with read_session(db.engine) as s:
            return sum(1 for _ in iter_events(s))

    _, read_s = timed("  part: iter_events alone (SQL, rows, as_dict)", read_only)

    def canonical_only() -> int:
        with read_session(db.engine) as s:
            events = list(iter_events(s))
        started = time.perf_counter()
        for e in events:
            canonical_bytes(e)
        return int((time.perf_counter() - started) * 1e6)

    micros, _ = timed("  part: canonical JSON from the dicts (timed inside)", canonical_only)
    canon_s = micros / 1e6
    print(f"    {'  = canonical JSON alone':<58} {canon_s:8.2f} s")
    gc.unfreeze()
    ratio = verify_s / sha_s
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(
        f"[{db.backend}] verify {n / verify_s:,.0f} events/s; SHA-256 alone {n / sha_s:,.0f} "
        f"events/s; RATIO verify time / hashing time = {ratio:.1f}x (target <= {TARGET:.0f}x): "
        f"{verdict}"
    )
    print(
        f"[{db.backend}] verify over ORM objects (the implementation before this benchmark): "
        f"{n / orm_s:,.0f} events/s; plain rows are {orm_s / verify_s:.2f}x faster"
    )
    print(
        f"[{db.backend}] of verify's {verify_s:.1f} s: reading {read_s:.1f} s "
        f"({read_s / verify_s:.0%}), canonical JSON {canon_s:.1f} s ({canon_s / verify_s:.0%}), "
        f"SHA-256 {sha_s:.1f} s ({sha_s / verify_s:.0%}), the rest (checks, loop) "
        f"{max(0.0, verify_s - read_s - canon_s - sha_s):.1f} s"
    )
    return {
        "ratio": ratio,
        "verify_eps": n / verify_s,
        "sha_eps": n / sha_s,
        "orm_eps": n / orm_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=20_000)
    args = parser.parse_args(argv)
    print(f"custody verify vs SHA-256; {machine()}")
    summary = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        with fresh_database(backend) as db:
            r = bench(db, args)
        summary.append(
            f"{backend}: {r['verify_eps']:,.0f} events/s vs {r['sha_eps']:,.0f} = "
            f"{r['ratio']:.1f}x ({'met' if r['ratio'] <= TARGET else 'MISSED'})"
        )
    print("custody verify / SHA-256: " + "; ".join(summary) + f" (target <= {TARGET:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
