"""Load SOP versions into the database and find the version in force."""

from datetime import UTC, datetime, time

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.db import utcnow
from lims.errors import NotFound, RuleViolation
from lims.sops.catalog import SOPS
from lims.sops.models import SopVersion
from lims.sops.spec import SopDefinition


def sync_catalog(session: Session, *, sops: list[SopDefinition] = SOPS) -> list[SopVersion]:
    """Insert SOP versions the database lacks; refuse a version whose content changed."""
    added = []
    existing = {(s.code, s.version): s for s in session.exec(select(SopVersion)).all()}
    for sop in sops:
        stored = existing.get((sop.code, sop.version))
        if stored is None:
            row = SopVersion(
                code=sop.code,
                version=sop.version,
                title=sop.title,
                definition=sop.stored(),
                sha256=sop.digest(),
                effective_from=datetime.combine(sop.effective_from, time(0), tzinfo=UTC),
            )
            session.add(row)
            added.append(row)
            ledger.append(
                session,
                actor=None,
                action="sop.loaded",
                entity="sop_version",
                entity_id=f"{sop.code} v{sop.version}",
                new={
                    "title": sop.title,
                    "sha256": row.sha256,
                    "effective_from": row.effective_from,
                },
            )
        elif stored.sha256 != sop.digest():
            raise RuleViolation(
                f"SOP {sop.code} v{sop.version} differs from the version in force; "
                "an SOP in force is never edited, add version "
                f"{sop.version + 1} instead"
            )
    session.flush()
    return added


def sop_in_force(session: Session, *, code: str, at: datetime | None = None) -> SopVersion:
    """Return the latest version of ``code`` effective at ``at`` (default now)."""
    at = at or utcnow()
    row = session.exec(
        select(SopVersion)
        .where(SopVersion.code == code, SopVersion.effective_from <= at)
        .where((col(SopVersion.retired_at).is_(None)) | (col(SopVersion.retired_at) > at))
        .order_by(col(SopVersion.version).desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"no version of SOP {code!r} is in force")
    return row


def definition_of(row: SopVersion) -> SopDefinition:
    """Rebuild the definition that was stored (and check it was not altered)."""
    sop = SopDefinition.model_validate(row.definition)
    if sop.digest() != row.sha256:
        raise RuleViolation(f"stored SOP {row.code} v{row.version} does not match its hash")
    return sop
