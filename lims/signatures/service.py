"""Apply and verify electronic signatures."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.errors import InvalidInput, RuleViolation
from lims.parties.models import LAB_STAFF, Role, User
from lims.signatures.models import Meaning, Signature
from lims.signatures.passwords import check_password
from lims.signatures.records import record_digest

SIGNING_ROLES = LAB_STAFF


def sign(
    session: Session,
    *,
    user: User,
    password: str,
    meaning: Meaning,
    record_type: str,
    record_id: str,
    comment: str | None = None,
) -> Signature:
    """Sign the current version of a record; the password is required every time."""
    if Role(user.role) not in SIGNING_ROLES:
        raise RuleViolation(f"a {user.role} account cannot sign lab records")
    try:
        meaning = Meaning(meaning)
    except ValueError:
        options = ", ".join(m.value for m in Meaning)
        raise InvalidInput(f"a signature means one of {options}", field="meaning") from None
    check_password(session, user=user, password=password)
    digest = record_digest(session, record_type=record_type, record_id=record_id)
    signature = Signature(
        user_id=user.id,  # type: ignore[arg-type]
        username=user.username,
        printed_name=user.printed_name,
        role=user.role,
        meaning=meaning,
        record_type=record_type,
        record_id=record_id,
        record_sha256=digest,
        comment=comment.strip() if comment and comment.strip() else None,
    )
    session.add(signature)
    session.flush()
    ledger.append(
        session,
        actor=user,
        action="signature.applied",
        entity="signature",
        entity_id=signature.id or 0,
        materials=[record_id] if record_type in ("material", "batch_record") else [],
        new={
            "meaning": meaning,
            "record_type": record_type,
            "record_id": record_id,
            "record_sha256": digest,
            "printed_name": user.printed_name,
            "signed_at": signature.signed_at,
            "comment": signature.comment,
        },
    )
    return signature


@dataclass(frozen=True)
class SignatureCheck:
    signature: Signature
    valid: bool
    detail: str

    def describe(self) -> str:
        s = self.signature
        return (
            f"{s.meaning} by {s.printed_name} ({s.role}) at "
            f"{s.signed_at:%Y-%m-%d %H:%M:%S} UTC: {self.detail}"
        )


def verify_signature(session: Session, *, signature: Signature) -> SignatureCheck:
    """Is the signed record still the version that was signed?"""
    now = record_digest(session, record_type=signature.record_type, record_id=signature.record_id)
    if now == signature.record_sha256:
        return SignatureCheck(signature, True, "record unchanged since signing")
    return SignatureCheck(
        signature, False, "RECORD CHANGED SINCE SIGNING: the signature no longer binds it"
    )


def signatures_for(
    session: Session, *, record_type: str, record_id: str, meaning: Meaning | None = None
) -> list[SignatureCheck]:
    """Signatures on a record, each with its verification, oldest first."""
    query = select(Signature).where(
        col(Signature.record_type) == record_type, col(Signature.record_id) == record_id
    )
    if meaning is not None:
        query = query.where(col(Signature.meaning) == meaning)
    rows = session.exec(query.order_by(col(Signature.id))).all()
    return [verify_signature(session, signature=row) for row in rows]
