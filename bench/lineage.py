"""Lineage queries at scale: ``ancestors()`` / ``descendants()`` against ``get_material()``.

Run from the project root::

    .venv/bin/python -m bench.lineage [--materials N] [--backends sqlite,postgresql]

For each backend a fresh database is made (SQLite: a file in a temporary directory;
PostgreSQL: a schema ``lims_bench_<random>`` that is dropped at the end, even on error) and
migrated with ``lims.migrate.upgrade``. One clinic, patient and user are created through
the services; then N materials and their lineage edges are bulk-loaded, shaped like real
donations (lipoaspirate -> SVF -> ADSC cultures -> passages -> CM batches -> one AAPE lot
pooling several CM batches -> doses, about 50 materials per donation). After ANALYZE,
for randomly chosen donations the benchmark times, each in its own ``read_session``:

* ``get_material()`` of the lipoaspirate and of one dose (the baseline),
* ``descendants()`` of the lipoaspirate (every other material of the donation),
* ``ancestors()`` of the dose,

checks every lineage answer against the generated tree, and prints p50 / p95 / max in
milliseconds and p95(lineage) / p95(baseline). The project's target is lineage p95 < 20 ms
at 1 million materials.

PostgreSQL URL: ``LIMS_BENCH_POSTGRES_URL``, else ``LIMS_TEST_POSTGRES_URL``, else
``postgresql+psycopg://postgres@127.0.0.1:5432/test``; an unreachable server is skipped
with a note.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, insert, text
from sqlalchemy.engine import Connection

import lims.models
from lims import migrate
from lims.db import make_engine, read_session, write_session
from lims.identity.codes import make_material_id
from lims.materials.kinds import MaterialKind, Use
from lims.materials.models import IdSequence, LineageEdge, Material
from lims.materials.service import LineageRow, ancestors, descendants, get_material
from lims.parties.models import Role
from lims.parties.service import create_clinic, create_user, register_patient

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_P95_MS = 20.0

MATERIAL = Material.__table__  # type: ignore[attr-defined]
EDGE = LineageEdge.__table__  # type: ignore[attr-defined]
# Columns added by later migrations are filled when the benchmark knows them; others are
# left to their defaults (the benchmark fills every NOT NULL column it was written for).
HAS_CUSTODIAN = "custodian" in MATERIAL.c


# --------------------------------------------------------------------------- data shape


@dataclass(frozen=True)
class Shape:
    """The random choices that make one donation's tree."""

    chains: int  # ADSC cultures seeded from the SVF
    passages: int  # passages of each culture (each passage is a new culture material)
    cm_per_chain: tuple[int, ...]  # CM batches collected from each chain's last passage
    pooled: tuple[int, ...]  # indices (among all CM batches) pooled into the AAPE lot
    doses: int
    days_ago: int

    @property
    def size(self) -> int:
        return 2 + self.chains * (1 + self.passages) + sum(self.cm_per_chain) + 1 + self.doses


def plan_shape(rng: random.Random) -> Shape:
    chains = rng.choice((3, 4, 4, 4, 5))
    passages = rng.choice((1, 2, 2, 3))
    cm_per_chain = tuple(rng.choice((2, 3, 3, 4)) for _ in range(chains))
    n_cm = sum(cm_per_chain)
    # The AAPE lot pools several CM batches; the rest stay frozen in stock.
    pooled = tuple(sorted(rng.sample(range(n_cm), rng.randint(max(2, n_cm - 4), n_cm))))
    return Shape(
        chains=chains,
        passages=passages,
        cm_per_chain=cm_per_chain,
        pooled=pooled,
        doses=rng.randint(16, 24),
        days_ago=rng.randint(30, 5 * 365),
    )


@dataclass(frozen=True)
class Node:
    kind: MaterialKind
    parents: tuple[int, ...]  # indices of earlier nodes of the same donation
    state: str
    quantity_kind: str
    entered: Decimal
    unit: str
    remaining: Decimal
    age_days: float  # created this long after the lipoaspirate was collected
    passage: int | None = None
    doublings: Decimal | None = None
    container: str | None = None
    custodian: str | None = "lab:X0001"


def build_nodes(shape: Shape, rng: random.Random) -> list[Node]:
    """The donation's materials in creation order (every parent before its children)."""
    zero = Decimal(0)
    nodes = [
        Node(
            MaterialKind.LIPOASPIRATE,
            (),
            "CONSUMED",
            "volume",
            Decimal(rng.randrange(120, 320, 5)),
            "mL",
            zero,
            0,
            container="250 mL collection canister",
        ),
        Node(
            MaterialKind.SVF,
            (0,),
            "CONSUMED",
            "cells",
            Decimal(rng.randrange(10, 60)) * 1_000_000,
            "cells",
            zero,
            0.2,
            container="50 mL conical tube",
        ),
    ]
    cm_index = 0
    pooled = set(shape.pooled)
    for _chain in range(shape.chains):
        parent = 1
        doublings = Decimal(0)
        for p in range(shape.passages + 1):
            last = p == shape.passages
            cells = Decimal(rng.randrange(5, 40)) * 100_000
            gained = Decimal(rng.randrange(15, 35)) / 10
            nodes.append(
                Node(
                    MaterialKind.ADSC_CULTURE,
                    (parent,),
                    "HARVESTED" if last else "PASSAGED",
                    "cells",
                    cells,
                    "cells",
                    zero,
                    1 + 5 * p,
                    passage=p,
                    doublings=doublings,
                    container="T175 flask",
                )
            )
            doublings += gained
            parent = len(nodes) - 1
        for _ in range(shape.cm_per_chain[_chain]):
            volume = Decimal(rng.randrange(200, 500, 10))
            used = cm_index in pooled
            nodes.append(
                Node(
                    MaterialKind.CM_BATCH,
                    (parent,),
                    "POOLED_INTO_LOT" if used else "HELD_FROZEN",
                    "volume",
                    volume,
                    "mL",
                    zero if used else volume,
                    2 + 5 * shape.passages + rng.random() * 3,
                    container="500 mL bottle",
                )
            )
            cm_index += 1
    cm_nodes = [i for i, n in enumerate(nodes) if n.kind is MaterialKind.CM_BATCH]
    vials = shape.doses + rng.randint(2, 10)
    nodes.append(
        Node(
            MaterialKind.AAPE_LOT,
            tuple(cm_nodes[i] for i in shape.pooled),
            "RELEASED",
            "vials",
            Decimal(vials),
            "vials",
            Decimal(vials - shape.doses),
            10 + 5 * shape.passages,
            container="2R lyophilisation vial",
        )
    )
    lot = len(nodes) - 1
    for _ in range(shape.doses):
        state = rng.choice(("ADMINISTERED", "ADMINISTERED", "ADMINISTERED", "ALLOCATED"))
        nodes.append(
            Node(
                MaterialKind.DOSE,
                (lot,),
                state,
                "vials",
                Decimal(1),
                "vials",
                zero if state == "ADMINISTERED" else Decimal(1),
                14 + 5 * shape.passages + rng.random() * 30,
                container="2R lyophilisation vial",
                custodian="clinic:BENCH" if state == "ADMINISTERED" else "lab:X0001",
            )
        )
    return nodes


def reachable(nodes: list[Node], start: int, *, up: bool) -> set[int]:
    """Indices reachable from ``start`` (excluding it) going to parents or to children."""
    children: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(nodes):
        for p in n.parents:
            children[p].append(i)
    found: set[int] = set()
    todo = [start]
    while todo:
        i = todo.pop()
        for j in nodes[i].parents if up else children[i]:
            if j not in found:
                found.add(j)
                todo.append(j)
    return found


@dataclass
class Sample:
    """One donation picked for timing, with the answers its lineage queries must give."""

    lipo_id: str
    dose_id: str
    descendant_ids: frozenset[str] = frozenset()
    ancestor_ids: frozenset[str] = frozenset()


@dataclass
class Loaded:
    materials: int
    edges: int
    donations: int
    seconds: float
    samples: list[Sample]


class IdAllocator:
    """Material ids as the LIMS issues them: a sequence per facility and year.

    A facility+year holds at most 999,999 ids, so later ids move to X0002, X0003, ...
    """

    def __init__(self) -> None:
        self.next: dict[tuple[str, int], int] = {}
        self.facility_of_year: dict[int, int] = defaultdict(lambda: 1)

    def issue(self, year: int) -> str:
        facility = f"X{self.facility_of_year[year]:04d}"
        seq = self.next.get((facility, year), 1)
        if seq > 999_999:
            self.facility_of_year[year] += 1
            return self.issue(year)
        self.next[(facility, year)] = seq + 1
        return make_material_id(facility, year, seq)


def generate(
    n_materials: int,
    *,
    patient_id: int,
    user_id: int,
    seed: int,
    n_samples: int,
    batch_rows: int,
    ids: IdAllocator,
    samples_out: list[Sample],
    counts: dict[str, int],
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Yield (material rows, edge rows) batches totalling exactly ``n_materials`` materials.

    The last donation may be cut short to hit N exactly; it is never sampled.
    """
    rng = random.Random(seed)
    shapes: list[Shape] = []
    total = 0
    while total < n_materials:
        shape = plan_shape(rng)
        shapes.append(shape)
        total += shape.size
    complete = len(shapes) - (1 if total > n_materials else 0)
    picked = set(rng.sample(range(complete), min(n_samples, complete)))
    counts["donations"] = len(shapes)

    now = datetime.now(UTC).replace(microsecond=0)
    material_pk = 0
    edge_pk = 0
    mats: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for d, shape in enumerate(shapes):
        nodes = build_nodes(shape, rng)
        if material_pk + len(nodes) > n_materials:
            nodes = nodes[: n_materials - material_pk]
        collected = now - timedelta(days=shape.days_ago, hours=rng.randint(0, 23))
        year = collected.year % 100
        first = material_pk + 1
        mids: list[str] = []
        for node in nodes:
            material_pk += 1
            mid = ids.issue(year)
            mids.append(mid)
            created = collected + timedelta(days=node.age_days)
            expires = None
            if node.kind in (MaterialKind.AAPE_LOT, MaterialKind.DOSE):
                expires = collected + timedelta(days=730)
            mats.append(
                {
                    "id": material_pk,
                    "material_id": mid,
                    "kind": node.kind.value,
                    "state": node.state,
                    "held_from_state": None,
                    "patient_id": patient_id,
                    "recipient_id": None,
                    "use": Use.AUTOLOGOUS.value,
                    "quantity_kind": node.quantity_kind,
                    "entered_value": node.entered,
                    "entered_unit": node.unit,
                    "initial_canonical": node.entered,
                    "remaining_canonical": node.remaining,
                    "collected_at": collected if node.kind is MaterialKind.LIPOASPIRATE else None,
                    "expires_at": expires,
                    "container": node.container,
                    **({"custodian": node.custodian} if HAS_CUSTODIAN else {}),
                    "location_id": None,
                    "passage": node.passage,
                    "doublings_at_seeding": node.doublings,
                    "population_doublings": (
                        None if node.doublings is None else node.doublings + Decimal("2.5")
                    ),
                    "created_in_step_id": None,
                    "created_by_id": user_id,
                    "created_at": created,
                    "updated_at": created + timedelta(hours=1),
                }
            )
            for parent in node.parents:
                edge_pk += 1
                edges.append(
                    {
                        "id": edge_pk,
                        "parent_id": first + parent,
                        "child_id": material_pk,
                        "step_id": None,
                    }
                )
        if d in picked:
            dose = rng.choice([i for i, n in enumerate(nodes) if n.kind is MaterialKind.DOSE])
            samples_out.append(
                Sample(
                    lipo_id=mids[0],
                    dose_id=mids[dose],
                    descendant_ids=frozenset(mids[i] for i in reachable(nodes, 0, up=False)),
                    ancestor_ids=frozenset(mids[i] for i in reachable(nodes, dose, up=True)),
                )
            )
        if len(mats) >= batch_rows:
            yield mats, edges
            mats, edges = [], []
    if mats:
        yield mats, edges
    counts["materials"] = material_pk
    counts["edges"] = edge_pk


# --------------------------------------------------------------------------- loading


def _copy(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL COPY ... FROM STDIN through the psycopg connection under ``conn``."""
    if not rows:
        return
    columns = list(rows[0])
    raw = conn.connection.driver_connection
    cols = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(tuple(row[c] for c in columns))


def load(
    engine: Engine,
    n_materials: int,
    *,
    seed: int,
    n_samples: int,
    use_copy: bool,
    batch_rows: int,
) -> Loaded:
    """Parties through the services, then materials and edges in bulk; returns what was made."""
    with write_session(engine) as s:
        clinic = create_clinic(s, code="BENCH", name="Benchmark Clinic")
        patient = register_patient(
            s, clinic=clinic, identifier_1="1980-01-01", identifier_2="BENCH-000001"
        )
        user = create_user(s, username="bench", printed_name="Bench Mark", role=Role.TECHNICIAN)
        s.flush()
        patient_id, user_id = int(patient.id), int(user.id)  # type: ignore[arg-type]

    ids = IdAllocator()
    samples: list[Sample] = []
    counts: dict[str, int] = {}
    started = time.perf_counter()
    batches = generate(
        n_materials,
        patient_id=patient_id,
        user_id=user_id,
        seed=seed,
        n_samples=n_samples,
        batch_rows=batch_rows,
        ids=ids,
        samples_out=samples,
        counts=counts,
    )
    with engine.begin() as conn:
        for mats, edges in batches:
            if use_copy:
                _copy(conn, "material", mats)
                _copy(conn, "lineage_edge", edges)
            else:
                conn.execute(insert(MATERIAL), mats)
                if edges:
                    conn.execute(insert(EDGE), edges)
            done = mats[-1]["id"]
            print(f"\r  loaded {done:,} materials", end="", flush=True)
        conn.execute(
            insert(IdSequence.__table__),  # type: ignore[attr-defined]
            [{"facility": f, "year": y, "next_value": n} for (f, y), n in ids.next.items()],
        )
        if conn.dialect.name == "postgresql":
            # Explicit ids bypassed the serial sequences; move them past what was loaded.
            for table in ("material", "lineage_edge"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    seconds = time.perf_counter() - started
    print()
    return Loaded(
        materials=counts["materials"],
        edges=counts["edges"],
        donations=counts["donations"],
        seconds=seconds,
        samples=samples,
    )


def analyze(engine: Engine) -> float:
    """ANALYZE; on PostgreSQL VACUUM (ANALYZE) the two big tables (see docs/performance.md)."""
    started = time.perf_counter()
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # VACUUM sets the visibility map (index-only scans) and keeps the insert-triggered
            # autovacuum from starting in the middle of the timings on a 2-core machine.
            for table in ("material", "lineage_edge"):
                conn.exec_driver_sql(f'VACUUM (ANALYZE) "{table}"')
            for small in lims.models.metadata.sorted_tables:
                if small.name not in ("material", "lineage_edge"):
                    conn.exec_driver_sql(f'ANALYZE "{small.name}"')
    return time.perf_counter() - started


def database_size(engine: Engine, sqlite_path: Path | None) -> str:
    if sqlite_path is not None:
        size = sum(p.stat().st_size for p in sqlite_path.parent.glob(sqlite_path.name + "*"))
        return f"{size / 2**20:,.0f} MiB (file + WAL)"
    with engine.connect() as conn:
        size = conn.execute(
            text(
                "SELECT pg_total_relation_size('material') + pg_total_relation_size('lineage_edge')"
            )
        ).scalar_one()
    return f"{size / 2**20:,.0f} MiB (material + lineage_edge, with indexes)"


# --------------------------------------------------------------------------- timing


@dataclass
class Series:
    label: str
    ms: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def pct(self, q: float) -> float:
        """Percentile ``q`` (0-100), linear between closest ranks."""
        values = sorted(self.ms)
        k = (len(values) - 1) * q / 100
        lo, hi = math.floor(k), math.ceil(k)
        return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _check(rows: list[LineageRow], expected: frozenset[str], what: str) -> None:
    got = [r.material_id for r in rows]
    assert len(got) == len(expected), f"{what}: {len(got)} rows, expected {len(expected)}"
    assert set(got) == expected, f"{what}: wrong materials returned"


def _timed_lineage(
    engine: Engine,
    material_id: str,
    query: Callable[..., list[LineageRow]],
) -> tuple[float, float, float, list[LineageRow]]:
    """(open ms, get_material ms, lineage ms, rows), all in one read_session."""
    t0 = time.perf_counter()
    with read_session(engine) as s:
        s.connection()  # connect (SQLite: new connection + pragmas) and begin
        t1 = time.perf_counter()
        material = get_material(s, material_id)
        t2 = time.perf_counter()
        rows = query(s, material=material)
        t3 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, rows


def run_queries(engine: Engine, samples: list[Sample], warmup: int) -> dict[str, Series]:
    series = {
        "open": Series("read_session open + connect"),
        "baseline": Series("get_material (baseline)"),
        "descendants": Series("descendants(lipoaspirate)"),
        "ancestors": Series("ancestors(dose)"),
    }
    for s in samples[:warmup]:  # warm the statement caches; not recorded
        _timed_lineage(engine, s.lipo_id, descendants)
        _timed_lineage(engine, s.dose_id, ancestors)
    for s in samples:
        for mid, query, key, expected in (
            (s.lipo_id, descendants, "descendants", s.descendant_ids),
            (s.dose_id, ancestors, "ancestors", s.ancestor_ids),
        ):
            opened, base, lineage, rows = _timed_lineage(engine, mid, query)
            _check(rows, expected, f"{key} of {mid}")
            series["open"].ms.append(opened)
            series["open"].rows.append(0)
            series["baseline"].ms.append(base)
            series["baseline"].rows.append(1)
            series[key].ms.append(lineage)
            series[key].rows.append(len(rows))
    return series


def explain(engine: Engine, sample: Sample) -> dict[str, str]:
    """The plan of the SQL that descendants() / ancestors() actually send."""
    plans: dict[str, str] = {}
    for key, mid, query in (
        ("descendants", sample.lipo_id, descendants),
        ("ancestors", sample.dose_id, ancestors),
    ):
        captured: list[tuple[str, Any]] = []

        def grab(_conn: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            captured.append((statement, params))  # noqa: B023  (read before the next loop)

        with read_session(engine) as s:
            material = get_material(s, mid)
            event.listen(engine, "before_cursor_execute", grab)
            try:
                query(s, material=material)
            finally:
                event.remove(engine, "before_cursor_execute", grab)
            statement, params = captured[-1]
            if engine.dialect.name == "sqlite":
                result = s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
                lines = [f"{row[0]:>3} {row[1]:>3}  {row[3]}" for row in result]
            else:
                result = s.connection().exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, params
                )
                lines = [row[0] for row in result]
        plans[key] = statement.strip() + "\n\n" + "\n".join(lines)
    return plans


# --------------------------------------------------------------------------- backends


@dataclass
class Result:
    backend: str
    version: str
    revision: str
    loaded: Loaded
    analyze_s: float
    size: str
    series: dict[str, Series]
    plans: dict[str, str]


def bench_backend(
    backend: str, engine: Engine, args: argparse.Namespace, sqlite_path: Path | None
) -> Result:
    with engine.connect() as conn:
        if backend == "sqlite":
            version = "SQLite " + conn.exec_driver_sql("SELECT sqlite_version()").scalar_one()
        else:
            version = conn.exec_driver_sql("SHOW server_version").scalar_one()
            version = "PostgreSQL " + str(version).split()[0]
    print(f"[{backend}] {version}: migrating")
    migrate.upgrade(engine)
    revision = migrate.current_revision(engine) or "?"
    print(f"[{backend}] schema at Alembic revision {revision}")
    use_copy = backend == "postgresql" and args.pg_load == "copy"
    how = "COPY" if use_copy else "Core insert() executemany"
    print(f"[{backend}] loading {args.materials:,} materials ({how})")
    loaded = load(
        engine,
        args.materials,
        seed=args.seed,
        n_samples=args.samples,
        use_copy=use_copy,
        batch_rows=args.batch,
    )
    print(
        f"[{backend}] load: {loaded.materials:,} materials, {loaded.edges:,} edges, "
        f"{loaded.donations:,} donations in {loaded.seconds:.1f} s "
        f"({loaded.materials / loaded.seconds:,.0f} materials/s)"
    )
    analyze_s = analyze(engine)
    size = database_size(engine, sqlite_path)
    print(f"[{backend}] ANALYZE: {analyze_s:.1f} s; size {size}")
    print(f"[{backend}] timing {len(loaded.samples)} donations")
    # Collect the load's garbage and freeze what is left, so that a full (generation 2)
    # collection of the benchmark's own heap does not land inside a timed call (one such
    # pause took ~67 ms in an earlier run).
    gc.collect()
    gc.freeze()
    try:
        series = run_queries(engine, loaded.samples, args.warmup)
    finally:
        gc.unfreeze()
    plans = explain(engine, loaded.samples[0]) if args.explain else {}
    return Result(backend, version, revision, loaded, analyze_s, size, series, plans)


def run_sqlite(args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory(prefix="lims_bench_") as tmp:
        path = Path(tmp) / "lims.db"
        engine = make_engine(f"sqlite:///{path}")
        try:
            return bench_backend("sqlite", engine, args, path)
        finally:
            engine.dispose()


def pg_url() -> str:
    for var in ("LIMS_BENCH_POSTGRES_URL", "LIMS_TEST_POSTGRES_URL"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return DEFAULT_PG_URL


def run_postgresql(args: argparse.Namespace) -> Result | None:
    url = pg_url()
    admin = make_engine(url, connect_args={"connect_timeout": 5})
    schema = f"lims_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        print(f"[postgresql] skipped: cannot reach {url} ({type(exc).__name__}: {exc})")
        admin.dispose()
        return None
    engine = make_engine(
        url, connect_args={"options": f"-csearch_path={schema}", "connect_timeout": 5}
    )
    try:
        return bench_backend("postgresql", engine, args, None)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        print(f"[postgresql] dropped schema {schema}")


# --------------------------------------------------------------------------- report


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(
        f"Lineage queries: {args.materials:,} materials, {args.samples} donations sampled; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    for r in results:
        print(
            f"  {r.backend}: {r.version}, schema {r.revision}; load {r.loaded.seconds:.1f} s "
            f"({r.loaded.materials:,} materials, {r.loaded.edges:,} edges); "
            f"ANALYZE {r.analyze_s:.1f} s; {r.size}"
        )
    print()
    header = (
        f"{'backend':<11} {'query':<28} {'n':>4} {'rows/query':>11} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p95/base':>9}  target"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        base = r.series["baseline"].pct(95)
        for key in ("open", "baseline", "descendants", "ancestors"):
            s = r.series[key]
            lo, hi = min(s.rows), max(s.rows)
            rows = "-" if key == "open" else (f"{lo}" if lo == hi else f"{lo}-{hi}")
            ratio, target = "", ""
            if key in ("descendants", "ancestors"):
                ratio = f"{s.pct(95) / base:.1f}x"
                target = "met" if s.pct(95) < TARGET_P95_MS else "MISSED"
            print(
                f"{r.backend:<11} {s.label:<28} {len(s.ms):>4} {rows:>11} "
                f"{s.pct(50):>8.2f} {s.pct(95):>8.2f} {max(s.ms):>8.2f} {ratio:>9}  {target}"
            )
    print(
        f"\nTarget: lineage p95 < {TARGET_P95_MS:.0f} ms. Timings are per call inside an open "
        "read_session; 'read_session open + connect' is the cost before the first query."
    )
    for r in results:
        for key, plan in r.plans.items():
            print(f"\n--- {r.backend} plan for {key}() ---\n{plan}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lineage", description=__doc__)
    parser.add_argument("--materials", type=int, default=1_000_000, help="materials to load")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument("--samples", type=int, default=200, help="donations to time")
    parser.add_argument("--warmup", type=int, default=10, help="untimed warm-up donations")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--batch", type=int, default=20_000, help="rows per insert batch")
    parser.add_argument(
        "--pg-load", choices=("copy", "insert"), default="copy", help="PostgreSQL bulk load"
    )
    parser.add_argument(
        "--no-explain", dest="explain", action="store_false", help="skip the query plans"
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if args.materials < 100:
        parser.error("--materials must be at least 100")

    print(f"Python {sys.version.split()[0]}, sqlite3 library {sqlite3.sqlite_version}")
    results: list[Result] = []
    for backend in backends:
        started = time.perf_counter()
        result = run_sqlite(args) if backend == "sqlite" else run_postgresql(args)
        if result is not None:
            results.append(result)
            print(f"[{backend}] total {time.perf_counter() - started:.1f} s")
    if results:
        report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
