"""Custody append cost against a plain INSERT of the same row, in the same transaction.

    .venv/bin/python -m bench.custody [--transactions 1500] [--per-tx 4] [--backends ...]

For each backend a fresh database (bench.common.fresh_database). Inside each write
transaction the benchmark alternates, ``--per-tx`` times:

* ``lims.custody.ledger.append(...)`` of a typical event (a hand-over naming one material)
  followed by ``session.flush()``, so that its custody_material row is written inside the
  timing: lock the head row, build and hash the canonical form, INSERT the event, UPDATE
  the head, INSERT the material index row;
* a plain INSERT of the very same row (the event's columns, as the append stored them) into
  ``bench_plain_event``, a table with the same columns and indexes and no chain: once with
  SQLAlchemy Core ``session.execute(insert(...))`` (the baseline) and once through the ORM
  (``session.add`` + ``flush``, the way append writes), to separate ORM cost from chain cost.

Every call is timed on its own (perf_counter); the order alternates between transactions.
A second view times whole transactions (BEGIN ... COMMIT) holding one append or one plain
insert. Target: append / plain insert <= 1.5. With ``--profile`` (default: when the target
is missed) pyinstrument profiles 2000 appends and prints where the time goes.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Index, MetaData, Table, UniqueConstraint, insert
from sqlalchemy.orm import registry

from bench.common import Database, fresh_database, machine, pct
from lims.custody import ledger
from lims.custody.models import CustodyEvent
from lims.custody.verify import event_hash
from lims.db import read_session, write_session
from lims.identity.codes import make_material_id
from lims.parties.models import Role, User
from lims.parties.service import create_user

TARGET = 1.5
EVENT_TABLE: Table = CustodyEvent.__table__  # type: ignore[attr-defined]


class PlainRow:
    """The same row, mapped by a private registry (not the project's metadata)."""


def plain_table(metadata: MetaData) -> Table:
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False)
        for c in EVENT_TABLE.columns
    ]
    return Table(
        "bench_plain_event",
        metadata,
        *columns,
        UniqueConstraint("hash", name="uq_bench_plain_event_hash"),
        Index("ix_bench_plain_event_action", "action"),
        Index("ix_bench_plain_event_entity_id", "entity_id"),
        Index("ix_bench_plain_event_occurred_at", "occurred_at"),
    )


def event_kwargs(n: int, actor: User) -> dict[str, Any]:
    material = make_material_id("X0001", 26, n % 999_999)
    return {
        "actor": actor,
        "action": "custody.handed_over",
        "entity": "material",
        "entity_id": material,
        "materials": [material],
        "from_": "lab:X0001",
        "to": "courier:ColdChain 4711",
        "reason": f"order ORD-{n:06d}; logger TL-{n % 97}",
        "new": {"location": "Lab 1/ULT-80-A/R1/B1/A1", "temperature": "-80 degC"},
    }


def row_of(event: ledger.AppendedEvent) -> dict[str, Any]:
    return {c.name: getattr(event, c.name) for c in EVENT_TABLE.columns}


@dataclass
class Timings:
    append: list[float] = field(default_factory=list)
    core: list[float] = field(default_factory=list)
    orm: list[float] = field(default_factory=list)
    hash_only: list[float] = field(default_factory=list)
    tx_append: list[float] = field(default_factory=list)
    tx_core: list[float] = field(default_factory=list)


def measure(db: Database, transactions: int, per_tx: int, warmup: int) -> Timings:
    engine = db.engine
    metadata = MetaData()
    table = plain_table(metadata)
    metadata.create_all(engine)
    mapper_registry = registry()
    mapper_registry.map_imperatively(PlainRow, table)
    try:
        with write_session(engine) as s:
            actor_id = create_user(
                s, username="bench", printed_name="Bench Mark", role=Role.TECHNICIAN
            ).id
        t = Timings()
        n = 0
        for tx in range(warmup + transactions):
            keep = tx >= warmup
            with write_session(engine) as s:
                actor = s.get(User, actor_id)
                assert actor is not None
                for k in range(per_tx):
                    n += 1
                    kwargs = event_kwargs(n, actor)
                    a0 = time.perf_counter()
                    event = ledger.append(s, **kwargs)
                    s.flush()
                    a1 = time.perf_counter()
                    row = row_of(event)
                    h0 = time.perf_counter()
                    event_hash(ledger.as_dict(event))
                    h1 = time.perf_counter()
                    first_core = (tx + k) % 2 == 0
                    for kind in ("core", "orm") if first_core else ("orm", "core"):
                        row_k = {
                            **row,
                            "seq": row["seq"] * 2 + (kind == "orm"),
                            "hash": f"{kind[0]}{row['hash'][1:]}",
                        }
                        b0 = time.perf_counter()
                        if kind == "core":
                            s.execute(insert(table), row_k)
                        else:
                            s.add(PlainRow(**row_k))  # type: ignore[call-arg]
                            s.flush()
                        b1 = time.perf_counter()
                        if keep:
                            (t.core if kind == "core" else t.orm).append((b1 - b0) * 1000)
                    if keep:
                        t.append.append((a1 - a0) * 1000)
                        t.hash_only.append((h1 - h0) * 1000)
        # Whole transactions: BEGIN, one append (or one plain insert), COMMIT. The actor is
        # read once outside, so both sides run the same statements apart from the append.
        with read_session(engine) as s:
            bench_actor = s.get(User, actor_id)
            assert bench_actor is not None
        for i in range(warmup + transactions):
            n += 1
            for kind in ("append", "core") if i % 2 == 0 else ("core", "append"):
                t0 = time.perf_counter()
                with write_session(engine) as s:
                    if kind == "append":
                        ledger.append(s, **event_kwargs(n, bench_actor))
                    else:
                        s.execute(
                            insert(table),
                            {**row_of(event), "seq": 10_000_000 + n, "hash": f"t{n:063d}"},
                        )
                t1 = time.perf_counter()
                if i >= warmup:
                    (t.tx_append if kind == "append" else t.tx_core).append((t1 - t0) * 1000)
        with write_session(engine) as s:
            verdict = ledger.verify_chain(s)
        assert verdict.ok, verdict.summary()
        return t
    finally:
        mapper_registry.dispose()
        metadata.drop_all(engine)


def profile(db: Database, appends: int) -> str:
    from pyinstrument import Profiler

    with write_session(db.engine) as s:
        actor_id = create_user(s, username="profiled", printed_name="P", role=Role.QA).id
    profiler = Profiler(interval=0.0002)
    profiler.start()
    done = 0
    while done < appends:
        with write_session(db.engine) as s:
            actor = s.get(User, actor_id)
            assert actor is not None
            for _ in range(4):
                done += 1
                ledger.append(s, **event_kwargs(500_000 + done, actor))
                s.flush()
    profiler.stop()
    return str(profiler.output_text(unicode=False, color=False, show_all=False))


def line(label: str, values: list[float], base: list[float] | None = None) -> str:
    mean = statistics.fmean(values)
    ratio = f"{mean / statistics.fmean(base):6.2f}x" if base else "       "
    return (
        f"  {label:<44} mean {mean:7.3f}  p50 {pct(values, 50):7.3f}  "
        f"p95 {pct(values, 95):7.3f} ms  {ratio}"
    )


def report(backend: str, t: Timings, per_tx: int) -> tuple[float, str]:
    ratio = statistics.fmean(t.append) / statistics.fmean(t.core)
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"\n[{backend}] per call, inside the same write transaction ({len(t.append)} each):")
    print(line("plain INSERT, Core (baseline)", t.core))
    print(line("plain INSERT, ORM add + flush", t.orm, t.core))
    print(line("ledger.append + flush", t.append, t.core))
    print(line("  of which canonical JSON + SHA-256 (alone)", t.hash_only, t.core))
    print(
        f"[{backend}] whole transactions (BEGIN ... COMMIT, {len(t.tx_append)} each): "
        f"1 append {statistics.fmean(t.tx_append):.3f} ms vs 1 plain INSERT "
        f"{statistics.fmean(t.tx_core):.3f} ms = "
        f"{statistics.fmean(t.tx_append) / statistics.fmean(t.tx_core):.2f}x"
    )
    print(f"[{backend}] RATIO append / plain INSERT = {ratio:.2f}x (target <= {TARGET}): {verdict}")
    return ratio, verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.custody", description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--transactions", type=int, default=1500)
    parser.add_argument("--per-tx", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--profile", choices=("auto", "yes", "no"), default="auto")
    args = parser.parse_args(argv)
    print(f"custody append vs plain INSERT; {machine()}")
    summary: list[str] = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        with fresh_database(backend) as db:
            gc.collect()
            started = time.perf_counter()
            timings = measure(db, args.transactions, args.per_tx, args.warmup)
            ratio, verdict = report(backend, timings, args.per_tx)
            summary.append(f"{backend}: {ratio:.2f}x ({verdict})")
            print(f"[{backend}] took {time.perf_counter() - started:.1f} s")
            if args.profile == "yes" or (args.profile == "auto" and verdict != "met"):
                print(f"\n[{backend}] pyinstrument, 2000 appends (+ flush), where the time goes:")
                print(profile(db, 2000))
    print("custody append / plain INSERT: " + "; ".join(summary) + f" (target <= {TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
