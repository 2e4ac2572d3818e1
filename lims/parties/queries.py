"""Reads of parties: the one place a user, clinic or patient is looked up by its key."""

from __future__ import annotations

from sqlmodel import Session, col, select

from lims.errors import NotFound
from lims.parties.models import User


def find_user(session: Session, *, username: str) -> User | None:
    """The user with this name (names are stored lower-case), or None."""
    return session.exec(select(User).where(col(User.username) == username.lower())).first()


def get_user(session: Session, *, username: str) -> User:
    """The user with this name; NotFound (404) when there is none."""
    found = find_user(session, username=username)
    if found is None:
        raise NotFound(f"no user {username!r}", field="username")
    return found
