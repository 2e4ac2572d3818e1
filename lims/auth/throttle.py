"""Sign-in throttling (NIST SP 800-63B 5.2.2) instead of an account lock anyone could hold.

Wrong passwords are counted per client (its network address) and per account name, known
or not, so that the answers never tell names apart. A client that has made
``max_password_failures`` wrong tries waits ``sign_in_backoff_seconds``, doubled at each
further wrong try up to ``lockout_minutes``; an account that has drawn
``max_account_failures`` wrong tries (from any clients) is throttled the same way, but only
for clients that have failed themselves: the account's owner, from a clean client, still
signs in. A throttled try is refused before the password is looked at. Failures older
than ``lockout_minutes`` are forgotten.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from lims.auth.models import SignInThrottle
from lims.db import serialise_on, utcnow
from lims.errors import LimsError
from lims.settings import get_settings

CLIENT, ACCOUNT = "client", "account"
# The advisory-lock namespace for sign-in throttling (any constant unique to this use).
SIGN_IN_CHECKS = 0x51C1


class TooManyAttempts(LimsError):
    """A throttled sign-in: refused without checking the password; says when to retry."""

    http_status = 429
    code = "too_many_attempts"


@dataclass(frozen=True)
class Counters:
    client: int
    client_blocked_until: datetime | None
    account: int
    account_blocked_until: datetime | None


def _lock_key(scope: str, key: str) -> int:
    digest = hashlib.sha256(f"{scope}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _row(session: Session, scope: str, key: str) -> SignInThrottle | None:
    return session.exec(
        select(SignInThrottle).where(
            col(SignInThrottle.scope) == scope, col(SignInThrottle.key) == key[:128]
        )
    ).first()


def _current(row: SignInThrottle | None, now: datetime) -> tuple[int, datetime | None]:
    window = timedelta(minutes=get_settings().lockout_minutes)
    if row is None or row.last_failure_at + window <= now:
        return 0, None
    return row.failures, row.blocked_until


def check(session: Session, *, client: str, account: str) -> Counters:
    """Serialise tries from this client and for this account, and raise TooManyAttempts if
    either says wait; return the counters as they stand."""
    # Always client first, then account: two tries never wait on each other in a cycle.
    serialise_on(session, namespace=SIGN_IN_CHECKS, key=_lock_key(CLIENT, client))
    serialise_on(session, namespace=SIGN_IN_CHECKS, key=_lock_key(ACCOUNT, account))
    now = utcnow()
    mine, mine_until = _current(_row(session, CLIENT, client), now)
    theirs, theirs_until = _current(_row(session, ACCOUNT, account), now)
    waits = [mine_until] if mine_until else []
    if theirs_until and mine > 0:
        waits.append(theirs_until)
    until = max((w for w in waits if w > now), default=None)
    if until is not None:
        seconds = max(1, math.ceil((until - now).total_seconds()))
        raise TooManyAttempts(
            f"too many wrong passwords: try again in {seconds} s", retry_after=seconds
        )
    return Counters(mine, mine_until, theirs, theirs_until)


def _backoff(failures: int, free: int) -> timedelta | None:
    settings = get_settings()
    if failures < free:
        return None
    seconds = settings.sign_in_backoff_seconds * 2 ** min(failures - free, 20)
    return timedelta(seconds=min(seconds, settings.lockout_minutes * 60))


def count_failure(session: Session, *, client: str, account: str) -> int:
    """Count one wrong password against the client and the account; return the client's
    count (the caller holds the locks taken by ``check``)."""
    settings = get_settings()
    now = utcnow()
    counted = 0
    for scope, key, free in (
        (CLIENT, client, settings.max_password_failures),
        (ACCOUNT, account, settings.max_account_failures),
    ):
        row = _row(session, scope, key)
        failures = _current(row, now)[0] + 1
        if row is None:
            row = SignInThrottle(scope=scope, key=key[:128])
        wait = _backoff(failures, free)
        row.failures, row.last_failure_at = failures, now
        row.blocked_until = now + wait if wait else None
        session.add(row)
        counted = counted or failures
    session.flush()
    return counted


def forget_account(session: Session, *, account: str) -> None:
    """The right password: the account's count starts again (the client's does not, so a
    guesser cannot clear it by signing in to an account of their own)."""
    row = _row(session, ACCOUNT, account)
    if row is not None:
        session.delete(row)
        session.flush()
