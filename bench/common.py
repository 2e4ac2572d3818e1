"""Shared pieces of the benchmarks: fresh databases that are always removed, percentiles,
and the machine description printed with every result."""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

from lims import migrate
from lims.db import make_engine

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_url() -> str:
    for var in ("LIMS_BENCH_POSTGRES_URL", "LIMS_TEST_POSTGRES_URL"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return DEFAULT_PG_URL


@dataclass
class Database:
    backend: str
    engine: Engine
    url: str  # for another process (PostgreSQL: with the schema as search path)
    sqlite_path: Path | None = None
    schema: str | None = None


@contextmanager
def fresh_database(backend: str, *, migrated: bool = True) -> Iterator[Database]:
    """A new SQLite file in a temporary directory, or a new PostgreSQL schema
    ``lims_bench_<random>``; migrated unless told not to; removed at the end, even on error."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="lims_bench_") as tmp:
            path = Path(tmp) / "lims.db"
            url = f"sqlite:///{path}"
            engine = make_engine(url)
            try:
                if migrated:
                    migrate.upgrade(engine)
                yield Database("sqlite", engine, url, sqlite_path=path)
            finally:
                engine.dispose()
        return
    base = pg_url()
    admin = make_engine(base, connect_args={"connect_timeout": 5})
    schema = f"lims_bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(base, connect_args={"options": f"-csearch_path={schema}"})
    try:
        if migrated:
            migrate.upgrade(engine)
        yield Database(
            "postgresql",
            engine,
            f"{base}?options=-csearch_path%3D{schema}",
            schema=schema,
        )
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def pct(values: list[float], p: float) -> float:
    """The p-th percentile, nearest rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def machine() -> str:
    """One paragraph: CPU, memory, load, versions. Timings on a shared 2-core VM are noisy."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    pg = ""
    try:
        engine = make_engine(pg_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            pg = str(conn.execute(text("SHOW server_version")).scalar_one())
        engine.dispose()
    except Exception:
        pg = "unreachable"
    import fastapi
    import sqlalchemy
    import uvicorn

    others = ""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, timeout=5
        ).stdout.splitlines()[1:6]
        busy = [line.strip() for line in out if float(line.split()[0]) >= 20]
        others = "; busy processes now: " + (" | ".join(b[:90] for b in busy) or "none")
    except Exception:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem}, load average {load}; Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL {pg}, "
        f"SQLAlchemy {sqlalchemy.__version__}, FastAPI {fastapi.__version__}, "
        f"uvicorn {uvicorn.__version__}{others}"
    )


def tmp_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix)
