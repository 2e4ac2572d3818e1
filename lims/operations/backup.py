"""Back up and restore the LIMS database while the lab keeps working, and check a restore.

PostgreSQL: ``pg_dump --format=custom`` (one MVCC snapshot: every transaction committed
before the dump started is in it, none that committed after is half in it) and
``pg_restore`` into a fresh database. SQLite: the online backup API, copying every page in
one step under a read transaction (a WAL snapshot; writers keep writing meanwhile).

A restore is only trusted once :func:`check_restored` passes: the custody hash chain
recomputes, every signed checkpoint verifies against the lab's key and the restored events,
and conservation holds for every material and step.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlmodel import Session

from lims.custody.checkpoint import checkpoint_json
from lims.custody.ledger import iter_events, verify_chain
from lims.custody.verify import verify_against_checkpoints
from lims.errors import InvalidInput, RuleViolation
from lims.operations.queries import all_checkpoints
from lims.steps.conservation import verify_conservation

# pg_dump/pg_restore of a database this size take seconds; an hour means something hangs.
PG_TOOL_TIMEOUT_S = 3600


@dataclass
class BackupMade:
    path: Path
    backend: str
    bytes: int
    seconds: float


@dataclass
class RestoreCheck:
    chain: str
    checkpoints: int
    conservation: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "restore verified" if self.ok else "restore NOT trustworthy"
        return (
            f"{verdict}: custody {self.chain}; {self.checkpoints} checkpoint(s) verified; "
            f"conservation {self.conservation}"
        )


def _libpq(engine: Engine) -> tuple[str, dict[str, str]]:
    """The engine's database as a libpq URL without the password (that goes in PGPASSWORD,
    never on a command line another local user can read in ps)."""
    url = engine.url.set(drivername="postgresql")
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return url.set(password=None).render_as_string(hide_password=False), env


def _schema(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT current_schema()")).scalar_one())


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=PG_TOOL_TIMEOUT_S
        )
    except FileNotFoundError:
        raise RuleViolation(
            f"{command[0]} is not installed: install PostgreSQL's client tools of the "
            "server's major version (Debian: postgresql-client)"
        ) from None
    if done.returncode != 0:
        raise RuleViolation(f"{command[0]} failed: {done.stderr.strip()[-2000:]}")


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise InvalidInput("an in-memory SQLite database has nothing to back up")
    return Path(database)


def backup(engine: Engine, *, to: Path) -> BackupMade:
    """Write a consistent copy of the database to ``to`` (written beside it, then renamed,
    so a half-written backup never has the final name)."""
    started = time.perf_counter()
    to.parent.mkdir(parents=True, exist_ok=True)
    partial = to.with_name(to.name + ".partial")
    partial.unlink(missing_ok=True)
    if engine.dialect.name == "postgresql":
        url, env = _libpq(engine)
        schema = _schema(engine)
        only = [] if schema == "public" else [f"--schema={schema}"]
        _run(["pg_dump", "--format=custom", "--no-owner", *only, f"--file={partial}", url], env)
        _run(["pg_restore", "--list", str(partial)], env)  # readable, or refused now
    elif engine.dialect.name == "sqlite":
        source = sqlite3.connect(_sqlite_path(engine), timeout=30)
        target = sqlite3.connect(partial)
        try:
            source.backup(target)  # pages=-1: every page in one step, one snapshot
            ok = target.execute("PRAGMA integrity_check").fetchone()
            if ok != ("ok",):
                raise RuleViolation(f"the backup failed SQLite's integrity check: {ok}")
        finally:
            target.close()
            source.close()
    else:
        raise InvalidInput(f"no backup method for {engine.dialect.name}")
    partial.replace(to)
    return BackupMade(
        path=to,
        backend=engine.dialect.name,
        bytes=to.stat().st_size,
        seconds=time.perf_counter() - started,
    )


def _refuse_unless_empty(engine: Engine) -> None:
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
    if names:
        raise RuleViolation(
            f"the target database already has {len(names)} table(s) (e.g. {sorted(names)[0]}): "
            "restore only into a fresh, empty database, then switch LIMS_DATABASE_URL to it"
        )


def restore(engine: Engine, *, source: Path) -> None:
    """Restore a backup into the empty database of ``engine`` (never over live data)."""
    if not source.is_file():
        raise InvalidInput(f"no backup file {source}")
    if engine.dialect.name == "postgresql":
        _refuse_unless_empty(engine)
        url, env = _libpq(engine)
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={url}",
                str(source),
            ],
            env,
        )
    elif engine.dialect.name == "sqlite":
        path = _sqlite_path(engine)
        if path.exists() and path.stat().st_size > 0:
            _refuse_unless_empty(engine)
        with sqlite3.connect(source) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
    else:
        raise InvalidInput(f"no restore method for {engine.dialect.name}")
    engine.dispose()  # connections opened before the restore saw the empty database


def check_restored(session: Session, *, public_key: str) -> RestoreCheck:
    """The custody chain, every signed checkpoint and conservation, on a restored database."""
    chain = verify_chain(session)
    problems = [] if chain.ok else [f"custody chain: {chain.summary()}"]
    checkpoints = [checkpoint_json(cp, public_key=public_key) for cp in all_checkpoints(session)]
    checked = verify_against_checkpoints(
        iter_events(session, until_seq=chain.last_seq or 0), checkpoints, key=public_key
    )
    if not checked.ok:
        problems.append(f"checkpoints: {checked.summary()}")
    conservation = verify_conservation(session)
    problems += [f"conservation: {p}" for p in conservation.problems]
    return RestoreCheck(
        chain=chain.summary(),
        checkpoints=len(checkpoints) if checked.ok else 0,
        conservation=(
            f"holds for {conservation.materials_checked} materials and "
            f"{conservation.steps_checked} steps"
            if conservation.ok
            else "BROKEN"
        ),
        problems=problems,
    )
