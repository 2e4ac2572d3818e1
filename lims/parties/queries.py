"""Reads of parties: the one place a user, clinic or patient is looked up by its key."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from lims.errors import NotFound
from lims.parties.models import Clinic, Patient, User


def find_user(session: Session, *, username: str) -> User | None:
    """The user with this name (names are stored lower-case), or None."""
    return session.exec(select(User).where(col(User.username) == username.lower())).first()


def get_user(session: Session, *, username: str) -> User:
    """The user with this name; NotFound (404) when there is none."""
    found = find_user(session, username=username)
    if found is None:
        raise NotFound(f"no user {username!r}", field="username")
    return found


def find_clinic(session: Session, *, code: str) -> Clinic | None:
    """The clinic with this code, or None."""
    return session.exec(select(Clinic).where(col(Clinic.code) == code)).first()


def patient_count(session: Session) -> int:
    """How many patients and donors are registered (every clinic)."""
    return session.exec(select(func.count()).select_from(Patient)).one()
