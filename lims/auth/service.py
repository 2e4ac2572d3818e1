"""Authenticate people (password) and clinic systems (API keys)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlmodel import Session, col, select

from lims.auth import throttle
from lims.auth.models import ApiKey
from lims.custody import ledger
from lims.db import record_even_if_refused, utcnow
from lims.errors import InvalidInput, NotFound, RuleViolation
from lims.paging import MAX_PAGE, Listing, page_by_id
from lims.parties.models import SYSTEM_USERNAME, Clinic, Role, User
from lims.signatures.passwords import AccountLocked, AuthenticationFailed, password_matches

KEY_PREFIX = "lims"
# The account the system's own writes are attributed to; it has no password and no token
# for it is ever accepted.
WRONG = "user name or password is wrong"


def usable(user: User) -> bool:
    """Active, not the system account, and not locked right now."""
    locked = user.locked_until is not None and user.locked_until > utcnow()
    return user.active and user.username != SYSTEM_USERNAME and not locked


@dataclass(frozen=True)
class DeviceProof:
    """A device cookie whose signature the caller verified: this browser or script signed
    in to ``account`` before, while its token version was ``version``."""

    account: str
    user_id: int
    version: int
    device: str


def sign_in(
    session: Session,
    *,
    username: str,
    password: str,
    client: str,
    proof: DeviceProof | None = None,
) -> User:
    """Check a user name and password from ``client`` (its address), throttled per client
    and per account (or per device, for a ``proof`` valid for this account); an unknown
    name is answered like a wrong password, as slowly."""
    name = (username or "").strip().lower()
    if "\x00" in name or len(name) > 64:
        name = ""
    user = session.exec(select(User).where(col(User.username) == name)).first() if name else None
    if user is not None and user.username == SYSTEM_USERNAME:
        user = None
    # A proof for another account, or from before a new password or a sign-out, is void.
    device = (
        proof.device
        if proof is not None
        and user is not None
        and (proof.account, proof.user_id, proof.version)
        == (user.username, user.id, user.token_version)
        else None
    )
    throttle.check(session, client=client, account=name, device=device)
    if user is not None:
        session.refresh(user)  # as it stands now that this account's tries are serialised
    if not password_matches(user.password_hash if user else None, password):

        def count(again: Session) -> None:
            failures = throttle.count_failure(again, client=client, account=name, device=device)
            ledger.append(
                again,
                actor=None,
                action="sign_in.failed",
                entity="client",
                entity_id=client[:64],
                new={"client_failures": failures},
            )

        record_even_if_refused(session, count)
        raise AuthenticationFailed(WRONG)
    assert user is not None
    throttle.forget_account(session, account=name, device=device)
    if not user.active:
        raise AuthenticationFailed("this account is not active")
    if user.locked_until is not None and user.locked_until > utcnow():
        raise AccountLocked(
            f"the account is locked until {user.locked_until:%H:%M} UTC after wrong "
            f"e-signature passwords; an administrator can set a new password"
        )
    return user


def end_sessions(session: Session, *, user: User, actor: User | None, why: str) -> None:
    """End every token and browser session of ``user`` (sign-out, deactivation)."""
    user.token_version += 1
    session.add(user)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="user.sessions_ended",
        entity="user",
        entity_id=user.username,
        reason=why,
    )


def deactivate_user(session: Session, *, user: User, actor: User | None) -> None:
    """Deactivate ``user``: no sign-in, token, session or API key of theirs works again."""
    user.active = False
    end_sessions(session, user=user, actor=actor, why="deactivated")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, *, actor: User, name: str) -> tuple[ApiKey, str]:
    """A long-lived key for a clinic's own system; the full key is shown only once."""
    if Role(actor.role) is not Role.CLINIC or actor.clinic_id is None:
        raise RuleViolation("API keys belong to a clinic account")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise InvalidInput("a key needs a name (at most 100 characters)", field="name")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    assert actor.id is not None
    key = ApiKey(
        prefix=prefix,
        secret_sha256=_digest(secret),
        name=name.strip(),
        clinic_id=actor.clinic_id,
        user_id=actor.id,
    )
    session.add(key)
    session.flush()
    clinic = session.get(Clinic, actor.clinic_id)
    ledger.append(
        session,
        actor=actor,
        action="api_key.created",
        entity="api_key",
        entity_id=prefix,
        new={"name": key.name, "clinic": clinic.code if clinic else None},
    )
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


def authenticate_api_key(session: Session, *, presented: str) -> User:
    """The clinic account a presented key acts as; revoked or unknown keys are refused."""
    parts = (presented or "").split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise AuthenticationFailed("the API key is not valid")
    key = session.exec(select(ApiKey).where(col(ApiKey.prefix) == parts[1])).first()
    if key is None or not hmac.compare_digest(key.secret_sha256, _digest(parts[2])):
        raise AuthenticationFailed("the API key is not valid")
    if key.revoked_at is not None:
        raise AuthenticationFailed("the API key was revoked")
    user = session.get(User, key.user_id)
    if user is None or user.clinic_id != key.clinic_id:
        raise AuthenticationFailed("the API key is not valid")
    if not usable(user):
        raise AuthenticationFailed("the API key's clinic account is locked or not active")
    return user


def revoke_api_key(session: Session, *, actor: User, prefix: str) -> ApiKey:
    query = select(ApiKey).where(col(ApiKey.prefix) == prefix)
    if Role(actor.role) is not Role.ADMIN:
        query = query.where(col(ApiKey.clinic_id) == actor.clinic_id)
    key = session.exec(query).first()
    if key is None:
        raise NotFound(f"no API key {prefix}")
    if key.revoked_at is not None:
        raise RuleViolation(f"API key {prefix} is already revoked")
    key.revoked_at = utcnow()
    session.add(key)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="api_key.revoked",
        entity="api_key",
        entity_id=prefix,
        old={"revoked": False},
        new={"revoked": True},
    )
    return key


def api_keys_of(
    session: Session,
    *,
    actor: User,
    limit: int = MAX_PAGE,
    offset: int = 0,
    cursor: str | None = None,
) -> Listing[ApiKey]:
    """A page of the actor's clinic's API keys, revoked ones too, oldest first."""
    query = select(ApiKey).where(col(ApiKey.clinic_id) == actor.clinic_id)
    return page_by_id(
        query, session, id_column=col(ApiKey.id), limit=limit, offset=offset, cursor=cursor
    )
