"""Engine and sessions for SQLite (embedded default) and PostgreSQL (production).

Writes run in a *write transaction*: on SQLite it starts with BEGIN IMMEDIATE, so the
writer holds the database's write lock from its first read and two writers can never both
read "10 mL remain" and both take 8 mL; on PostgreSQL, services lock the rows they deplete
with SELECT ... FOR UPDATE (see :func:`lock_rows`). Services never commit: the caller owns
the transaction (``with write_session(engine) as session: ...``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Dialect,
    Engine,
    Numeric,
    String,
    TypeDecorator,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from lims.settings import get_settings
from lims.units import CANONICAL_PLACES

_WRITE = "lims_write"


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored exactly: NUMERIC(38, 12) on PostgreSQL, decimal text on SQLite.

    SQLite has no decimal type and SQLAlchemy would round-trip its NUMERIC through a
    binary float; conservation arithmetic must not lose a femtolitre to that.
    """

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(38, CANONICAL_PLACES, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"ExactDecimal needs a Decimal, got {type(value).__name__}")
        if dialect.name == "sqlite":
            return format(value, "f")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value) if not isinstance(value, Decimal) else value


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine with the pragmas and transaction behaviour the LIMS relies on."""
    settings = get_settings()
    url = url or settings.database_url
    if url.startswith("sqlite"):
        engine = create_engine(url, poolclass=NullPool, **kwargs)
        busy_ms = settings.sqlite_busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkin", _release_advisory_locks)
    return engine


@contextmanager
def write_session(engine: Engine, *, retries: int = 5) -> Iterator[Session]:
    """Open a session in a write transaction and commit it if the block succeeds.

    On SQLite the write lock is taken at BEGIN; if another writer holds it past the busy
    timeout, starting is retried with back-off rather than failing the user.
    """
    attempt = 0
    while True:
        session = Session(engine, expire_on_commit=False)
        try:
            session.connection(execution_options={_WRITE: True})
            break
        except OperationalError as exc:
            session.close()
            attempt += 1
            if "locked" not in str(exc).lower() or attempt > retries:
                raise
            time.sleep(0.05 * 2**attempt)
    # Some refusals must still leave a trace (a wrong password is counted and audited).
    # The refused work is undone back to this savepoint and the trace written in the same
    # transaction, so the locks it holds are never let go in between: a second wrong
    # password cannot be checked before the first one is counted.
    refusable = session.begin_nested()
    try:
        yield session
        session.commit()
    except BaseException:
        follow_ups = session.info.pop(AFTER_ROLLBACK, [])
        if not follow_ups:
            session.rollback()
            raise
        try:
            refusable.rollback()
            for follow_up in follow_ups:
                follow_up(session)
            session.commit()
        except Exception:
            # The transaction itself is broken (a dropped connection, say): write the
            # trace in a transaction of its own rather than lose it.
            session.rollback()
            session.close()
            for follow_up in follow_ups:
                with write_session(engine) as again:
                    follow_up(again)
        raise
    finally:
        session.close()


AFTER_ROLLBACK = "lims_after_rollback"


def record_even_if_refused(session: Session, write: Any) -> None:
    """If the write transaction is refused, undo its work but still run ``write(session)``."""
    session.info.setdefault(AFTER_ROLLBACK, []).append(write)


_ADVISORY = "lims_advisory_locks"


def serialise_on(session: Session, *, namespace: int, key: int) -> None:
    """Hold a lock on (namespace, key) until this session's connection is given back.

    PostgreSQL: a session-level advisory lock, so it outlives a rollback to a savepoint
    (row locks taken after the savepoint would not) and is released when the connection
    returns to the pool. SQLite: nothing to do, a write transaction already holds the
    database's write lock until it ends.
    """
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return
    conn.info[_ADVISORY] = True
    conn.execute(
        text("SELECT pg_advisory_lock(:namespace, :key)"), {"namespace": namespace, "key": key}
    )


def _release_advisory_locks(dbapi_conn: Any, record: Any) -> None:
    if dbapi_conn is None or not record.info.pop(_ADVISORY, False):
        return
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("SELECT pg_advisory_unlock_all()")
    finally:
        cursor.close()
        dbapi_conn.rollback()


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """Open a session for reading; nothing it does is committed.

    Closing (not rolling back) keeps what was loaded readable after the block.
    """
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


def is_write_session(session: Session) -> bool:
    """True when ``session`` runs in a write transaction (required for depleting stock)."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return True
    return bool(conn.get_execution_options().get(_WRITE))


class UTCDateTime(TypeDecorator[Any]):
    """A timezone-aware UTC timestamp on both databases (SQLite drops the zone)."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        from sqlalchemy import DateTime

        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        from datetime import UTC, datetime

        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError("timestamps must be timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        from datetime import UTC

        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> Any:
    """The server's clock in UTC: every recorded time comes from here, not the client."""
    from datetime import UTC, datetime

    return datetime.now(UTC)
