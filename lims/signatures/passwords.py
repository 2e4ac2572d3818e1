"""Passwords: argon2 hashes, a minimum length, and a lock after repeated failures."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session

from lims.custody import ledger
from lims.db import record_even_if_refused, utcnow
from lims.errors import InvalidInput, LimsError
from lims.parties.models import User
from lims.settings import get_settings


def _hasher() -> PasswordHasher:
    settings = get_settings()
    return PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib
    )


class AuthenticationFailed(LimsError):
    """Wrong password or locked account; the message never says which part was wrong."""

    http_status = 401
    code = "authentication_failed"


class AccountLocked(AuthenticationFailed):
    http_status = 423
    code = "account_locked"


def set_password(session: Session, *, user: User, password: str, actor: User | None) -> None:
    """Store an argon2 hash of ``password`` (never the password) and unlock the account."""
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
    session.add(user)
    session.flush()
    ledger.append(
        session, actor=actor, action="user.password_set", entity="user", entity_id=user.username
    )


def check_password(session: Session, *, user: User, password: str) -> None:
    """Raise AuthenticationFailed unless ``password`` is the user's; count failures.

    A failure is recorded (and audited) even though the caller's transaction is rolled
    back, and the account locks after the configured number of consecutive failures.
    """
    settings = get_settings()
    now = utcnow()
    if not user.active:
        raise AuthenticationFailed("this account is not active")
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(
            f"the account is locked until {user.locked_until:%H:%M} UTC after "
            f"{settings.max_password_failures} wrong passwords"
        )
    ok = False
    if user.password_hash and isinstance(password, str):
        try:
            ok = _hasher().verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    if ok:
        if user.failed_password_attempts:
            user.failed_password_attempts = 0
            session.add(user)
        return
    user_id = user.id

    def count_failure(again: Session) -> None:
        row = again.get(User, user_id)
        if row is None:
            return
        row.failed_password_attempts += 1
        locked = row.failed_password_attempts >= settings.max_password_failures
        if locked:
            row.locked_until = utcnow() + timedelta(minutes=settings.lockout_minutes)
        again.add(row)
        again.flush()
        ledger.append(
            again,
            actor=row,
            action="user.locked" if locked else "user.password_failed",
            entity="user",
            entity_id=row.username,
            new={"failed_attempts": row.failed_password_attempts, "locked_until": row.locked_until},
        )

    record_even_if_refused(session, count_failure)
    raise AuthenticationFailed("user name or password is wrong")
