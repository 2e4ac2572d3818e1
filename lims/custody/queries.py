"""The audit lists of one material, a page at a time: its custody events and the signatures
on it and its batch record (a lot's ledger grows with every vial, so these are paged)."""

from __future__ import annotations

from sqlmodel import Session, col, or_, select

from lims.custody.models import CustodyEvent, CustodyMaterial
from lims.paging import Listing, page_by_id
from lims.signatures.models import Signature
from lims.signatures.service import SignatureCheck, verify_signature


def custody_page(
    session: Session,
    *,
    material_id: str,
    limit: int,
    offset: int = 0,
    cursor: str | None = None,
) -> Listing[CustodyEvent]:
    """The events naming the material, oldest first (by seq)."""
    query = (
        select(CustodyEvent)
        .join(CustodyMaterial, col(CustodyMaterial.seq) == col(CustodyEvent.seq))
        .where(col(CustodyMaterial.material_id) == material_id)
    )
    return page_by_id(
        query,
        session,
        id_column=col(CustodyEvent.seq),
        limit=limit,
        offset=offset,
        cursor=cursor,
        id_of=lambda event: event.seq,
    )


def signatures_page(
    session: Session,
    *,
    material_id: str,
    limit: int,
    offset: int = 0,
    cursor: str | None = None,
) -> Listing[SignatureCheck]:
    """Signatures on the material and on its batch record, oldest first, each verified."""
    query = select(Signature).where(
        col(Signature.record_id) == material_id,
        or_(col(Signature.record_type) == "material", col(Signature.record_type) == "batch_record"),
    )
    listing = page_by_id(
        query, session, id_column=col(Signature.id), limit=limit, offset=offset, cursor=cursor
    )
    return listing.shown_as(verify_signature(session, signature=s) for s in listing)
