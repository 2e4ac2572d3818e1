"""Passwords: argon2 hashes, a minimum length, and the e-signature lock (a signed-in user
re-entering a wrong password too often; anonymous sign-in is throttled in lims.auth)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from types import SimpleNamespace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlmodel import Session

from lims.custody import ledger
from lims.db import record_even_if_refused, serialise_on, utcnow
from lims.errors import InvalidInput, LimsError
from lims.parties.models import User
from lims.settings import get_settings


def _hasher() -> PasswordHasher:
    settings = get_settings()
    return PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib
    )


@lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib).hash("no such account")


def password_matches(password_hash: str | None, password: object) -> bool:
    """Whether ``password`` matches the hash; with no hash (an unknown name, an account
    without a password) a dummy hash of the same cost is checked, so both take as long."""
    settings = get_settings()
    stored = password_hash or _dummy_hash(settings.argon2_time_cost, settings.argon2_memory_kib)
    candidate = password if isinstance(password, str) else ""
    try:
        return _hasher().verify(stored, candidate) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class AuthenticationFailed(LimsError):
    """Wrong password or locked account; the message never says which part was wrong."""

    http_status = 401
    code = "authentication_failed"


class AccountLocked(AuthenticationFailed):
    http_status = 423
    code = "account_locked"


def set_password(session: Session, *, user: User, password: str, actor: User | None) -> None:
    """Store an argon2 hash of ``password`` (never the password), unlock the account and
    end every token and session issued with the old one."""
    settings = get_settings()
    if not isinstance(password, str) or len(password) < settings.min_password_length:
        raise InvalidInput(
            f"a password needs at least {settings.min_password_length} characters",
            field="password",
        )
    if user.username.lower() in password.lower():
        raise InvalidInput("a password may not contain the user name", field="password")
    user.password_hash = _hasher().hash(password)
    user.failed_password_attempts = 0
    user.locked_until = None
    user.token_version += 1
    session.add(user)
    session.flush()
    ledger.append(
        session, actor=actor, action="user.password_set", entity="user", entity_id=user.username
    )


# The advisory-lock namespace for password checks (any constant unique to this use).
PASSWORD_CHECKS = 0x11A5


def check_password(session: Session, *, user: User, password: str) -> None:
    """Raise AuthenticationFailed unless ``password`` is the signed-in user's (e-signatures);
    count failures.

    A failure is recorded (and audited) even though the caller's work is rolled back, and
    the account locks (its tokens and sessions ending) after the configured number of
    consecutive failures. Checks of one
    account are serialised until the failure is counted, so parallel guesses are each
    counted and no more than the limit are ever checked against the hash.
    """
    settings = get_settings()
    assert user.id is not None
    serialise_on(session, namespace=PASSWORD_CHECKS, key=user.id)
    # Re-read after the lock (another check may just have counted a failure or locked the
    # account), into a row of our own: ``user`` may belong to another session.
    table = User.__table__  # type: ignore[attr-defined]
    fresh = session.execute(
        select(
            table.c.active,
            table.c.failed_password_attempts,
            table.c.locked_until,
            table.c.password_hash,
        ).where(table.c.id == user.id)
    ).one()
    now = utcnow()
    if not fresh.active:
        raise AuthenticationFailed("this account is not active")
    if fresh.locked_until is not None and fresh.locked_until > now:
        raise AccountLocked(
            f"the account is locked until {fresh.locked_until:%H:%M} UTC after "
            f"{settings.max_password_failures} wrong passwords"
        )
    if password_matches(fresh.password_hash, password):
        if fresh.failed_password_attempts:
            session.execute(
                update(table).where(table.c.id == user.id).values(failed_password_attempts=0)
            )
            user.failed_password_attempts = 0
        return
    user_id, actor = user.id, SimpleNamespace(username=user.username, role=user.role)

    def count_failure(again: Session) -> None:
        failed = again.execute(
            update(table)
            .where(table.c.id == user_id)
            .values(failed_password_attempts=table.c.failed_password_attempts + 1)
            .returning(table.c.failed_password_attempts)
        ).scalar_one()
        locked_until = None
        if failed >= settings.max_password_failures:
            locked_until = utcnow() + timedelta(minutes=settings.lockout_minutes)
            again.execute(
                update(table)
                .where(table.c.id == user_id)
                .values(locked_until=locked_until, token_version=table.c.token_version + 1)
            )
        ledger.append(
            again,
            actor=actor,
            action="user.locked" if locked_until else "user.password_failed",
            entity="user",
            entity_id=actor.username,
            new={"failed_attempts": failed, "locked_until": locked_until},
        )

    record_even_if_refused(session, count_failure)
    raise AuthenticationFailed("user name or password is wrong")
