"""Sign-in throttling (NIST SP 800-63B 5.2.2) instead of an account lock anyone could hold.

Wrong passwords are counted per client (its network address) and per account name, known
or not, so that the answers never tell names apart. A client that has made
``max_password_failures`` wrong tries waits ``sign_in_backoff_seconds``, doubled at each
further wrong try up to ``lockout_minutes``; its failures older than ``lockout_minutes``
are forgotten.

An account that has drawn ``max_account_failures`` wrong tries is throttled for every
client, fresh addresses included (rotating addresses gain nothing), doubling up to
ACCOUNT_LONGEST_WAIT, and remembers them for ACCOUNT_MEMORY. A client that proves it
signed in to the account before (a device cookie, OWASP "Slow Down Online Guessing
Attacks with Device Cookies") is not held by the account's count: its failures count on
its device (same limits as the account but ``max_password_failures`` free), so the owner
still signs in while the account is under attack, even after a typo. A throttled try is
refused before the password is looked at.

The cap: with the default settings, at most 20 + 6 + 24 = 50 consecutive wrong passwords
for one account per rolling day are checked against its hash from clients without a
device cookie (20 free, then waits of 60 s doubling to 1 h: six shorter than an hour, then
at most one an hour), under NIST's bound of 100. The count starts again only after the
right password from such a client or a day without failures.
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

CLIENT, ACCOUNT, DEVICE = "client", "account", "device"
# The advisory-lock namespace for sign-in throttling (any constant unique to this use).
SIGN_IN_CHECKS = 0x51C1
# Longer than a client's: the account's count must outlast its longest wait, or every
# wait would end in a fresh set of free tries (about 120 a day instead of 50).
ACCOUNT_MEMORY = timedelta(days=1)
ACCOUNT_LONGEST_WAIT = timedelta(hours=1)


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


def _memory(scope: str) -> timedelta:
    if scope == CLIENT:
        return timedelta(minutes=get_settings().lockout_minutes)
    return ACCOUNT_MEMORY


def _current(row: SignInThrottle | None, scope: str, now: datetime) -> tuple[int, datetime | None]:
    if row is None or row.last_failure_at + _memory(scope) <= now:
        return 0, None
    return row.failures, row.blocked_until


def _held(account: str, device: str | None) -> tuple[str, str]:
    """The second count a try is held by: its device's if it proved one, else the account's."""
    return (DEVICE, device) if device else (ACCOUNT, account)


def check(session: Session, *, client: str, account: str, device: str | None = None) -> Counters:
    """Serialise tries from this client and for this account (or device), and raise
    TooManyAttempts if either says wait; return the counters as they stand. ``device`` is
    the id of a device cookie already verified for this account and its token version."""
    # Always client first, then account: two tries never wait on each other in a cycle.
    serialise_on(session, namespace=SIGN_IN_CHECKS, key=_lock_key(CLIENT, client))
    scope, key = _held(account, device)
    serialise_on(session, namespace=SIGN_IN_CHECKS, key=_lock_key(scope, key))
    now = utcnow()
    mine, mine_until = _current(_row(session, CLIENT, client), CLIENT, now)
    theirs, theirs_until = _current(_row(session, scope, key), scope, now)
    waits = [w for w in (mine_until, theirs_until) if w is not None]
    until = max((w for w in waits if w > now), default=None)
    if until is not None:
        seconds = max(1, math.ceil((until - now).total_seconds()))
        raise TooManyAttempts(
            f"too many wrong passwords: try again in {seconds} s", retry_after=seconds
        )
    return Counters(mine, mine_until, theirs, theirs_until)


def _backoff(failures: int, free: int, longest: timedelta) -> timedelta | None:
    if failures < free:
        return None
    seconds = get_settings().sign_in_backoff_seconds * 2 ** min(failures - free, 20)
    return min(timedelta(seconds=seconds), longest)


def count_failure(session: Session, *, client: str, account: str, device: str | None = None) -> int:
    """Count one wrong password against the client and the account (or the device it
    proved); return the client's count (the caller holds the locks taken by ``check``)."""
    settings = get_settings()
    now = utcnow()
    counted = 0
    client_longest = timedelta(minutes=settings.lockout_minutes)
    held_scope, held_key = _held(account, device)
    held_free = settings.max_password_failures if device else settings.max_account_failures
    for scope, key, free, longest in (
        (CLIENT, client, settings.max_password_failures, client_longest),
        (held_scope, held_key, held_free, ACCOUNT_LONGEST_WAIT),
    ):
        row = _row(session, scope, key)
        failures = _current(row, scope, now)[0] + 1
        if row is None:
            row = SignInThrottle(scope=scope, key=key[:128])
        wait = _backoff(failures, free, longest)
        row.failures, row.last_failure_at = failures, now
        row.blocked_until = now + wait if wait else None
        session.add(row)
        counted = counted or failures
    session.flush()
    return counted


def forget_account(session: Session, *, account: str, device: str | None = None) -> None:
    """The right password: the account's count (or, from a proved device, the device's)
    starts again; the client's does not, so a guesser cannot clear it by signing in to an
    account of their own. The owner signing in on a proved device leaves the account's
    count alone, so an attack in progress stays throttled."""
    row = _row(session, DEVICE, device) if device else _row(session, ACCOUNT, account)
    if row is not None:
        session.delete(row)
        session.flush()
