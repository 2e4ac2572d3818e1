"""For auditors (read-only): lineage, custody history, signatures, chain verification,
exports as JSON Lines (verifiable offline) and CSV."""

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, BeforeValidator

from api.downloads import content_disposition
from api.enums import MaterialKindName, MaterialStateName
from api.routers.audit_models import (
    CheckpointOut,
    ConsistencyProofOut,
    CustodyEventOut,
    InclusionProofOut,
)
from api.schemas import Page, Paging, QuantityOut, UtcTime, file_response, page, q_out
from api.security import AuditUser, EngineDep
from lims.custody.checkpoint import (
    checkpoint_document,
    checkpoint_json,
    consistency,
    get_checkpoint,
    inclusion,
    latest_checkpoint,
)
from lims.custody.keys import checkpoint_key, key_id, public_pem
from lims.custody.ledger import as_dict, export_jsonl, verify_chain
from lims.custody.queries import custody_page, signatures_page
from lims.db import read_session
from lims.documents.reports import Document, certificate_of_analysis, custody_report
from lims.errors import NotFound
from lims.materials.service import ancestors, descendants, get_material

router = APIRouter(prefix="/audit", tags=["audit"])


class LineageNode(BaseModel):
    material_id: str
    kind: MaterialKindName
    state: MaterialStateName
    depth: int
    initial: QuantityOut
    remaining: QuantityOut


class LineageOut(BaseModel):
    material_id: str
    ancestors: list[LineageNode]
    descendants: list[LineageNode]


@router.get("/materials/{material_id}/lineage", response_model=LineageOut)
def lineage(engine: EngineDep, user: AuditUser, material_id: str) -> LineageOut:
    """The material's ancestors and descendants with what each made and has left."""
    with read_session(engine) as session:
        m = get_material(session, material_id)

        def nodes(rows: list[Any]) -> list[LineageNode]:
            return [
                LineageNode(
                    material_id=r.material_id,
                    kind=r.kind,
                    state=r.state,
                    depth=r.depth,
                    initial=q_out(r.initial),
                    remaining=q_out(r.remaining),
                )
                for r in rows
            ]

        return LineageOut(
            material_id=m.material_id,
            ancestors=nodes(ancestors(session, material=m)),
            descendants=nodes(descendants(session, material=m)),
        )


@router.get("/materials/{material_id}/custody", response_model=Page[CustodyEventOut])
def custody(
    engine: EngineDep,
    user: AuditUser,
    paging: Paging,
    material_id: str,
) -> dict[str, object]:
    """The custody events naming the material, oldest first (by seq), a page at a time."""
    with read_session(engine) as session:
        m = get_material(session, material_id)
        listing = custody_page(session, material_id=m.material_id, **paging.window())
        return page(listing, lambda e: CustodyEventOut.model_validate(as_dict(e)))


class SignatureCheckOut(BaseModel):
    printed_name: str
    role: str
    meaning: str
    record_type: str
    signed_at: datetime
    record_sha256: str
    valid: bool
    detail: str


@router.get("/materials/{material_id}/signatures", response_model=Page[SignatureCheckOut])
def signatures(
    engine: EngineDep,
    user: AuditUser,
    paging: Paging,
    material_id: str,
) -> dict[str, object]:
    """Signatures on the material and its batch record, oldest first, each verified now,
    a page at a time."""
    with read_session(engine) as session:
        m = get_material(session, material_id)
        listing = signatures_page(session, material_id=m.material_id, **paging.window())
        return page(
            listing,
            lambda c: SignatureCheckOut(
                printed_name=c.signature.printed_name,
                role=c.signature.role,
                meaning=c.signature.meaning,
                record_type=c.signature.record_type,
                signed_at=c.signature.signed_at,
                record_sha256=c.signature.record_sha256,
                valid=c.valid,
                detail=c.detail,
            ),
        )


class VerifyOut(BaseModel):
    ok: bool
    events: int
    last_seq: int | None
    head: str
    broken_seq: int | None
    problem: str | None


@router.get("/verify", response_model=VerifyOut)
def verify(engine: EngineDep, user: AuditUser) -> VerifyOut:
    """Recompute the whole custody chain."""
    with read_session(engine) as session:
        r = verify_chain(session)
    return VerifyOut(
        ok=r.ok,
        events=r.events,
        last_seq=r.last_seq,
        head=r.last_hash,
        broken_seq=r.broken_seq,
        problem=r.problem,
    )


_DATE_FIRST = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _a_date_time(value: object) -> object:
    # pydantic would take "0" or "-5" as seconds since 1970; an auditor means a date.
    if isinstance(value, str) and not _DATE_FIRST.match(value):
        raise ValueError(
            f"{value[:40]!r} is not a date-time: expected ISO 8601 with its offset, "
            "such as 2026-11-01T00:00:00Z"
        )
    return value


Since = Annotated[
    Annotated[UtcTime, BeforeValidator(_a_date_time)] | None,
    Query(description="events from this time on (ISO 8601 with offset)"),
]


@router.get(
    "/exports/custody.jsonl",
    response_class=StreamingResponse,
    responses=file_response("application/x-ndjson", "one custody event per line"),
)
def export_json_lines(engine: EngineDep, user: AuditUser, since: Since = None) -> StreamingResponse:
    """The ledger as JSON Lines: check it offline with python -m lims.custody.verify."""

    def lines() -> Iterator[str]:
        with read_session(engine) as session:
            for line in export_jsonl(session, since=since):
                yield line + "\n"

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={
            "Content-Disposition": content_disposition("custody.jsonl", disposition="attachment")
        },
    )


COLUMNS = [
    "seq",
    "occurred_at",
    "actor",
    "actor_role",
    "action",
    "entity",
    "entity_id",
    "materials",
    "from",
    "to",
    "reason",
    "old",
    "new",
    "corrects_seq",
    "prev_hash",
    "hash",
]


@router.get(
    "/exports/custody.csv",
    response_class=StreamingResponse,
    responses=file_response("text/csv", "the custody events, a header row first"),
)
def export_csv(engine: EngineDep, user: AuditUser, since: Since = None) -> StreamingResponse:
    """The ledger as CSV for spreadsheets (the JSON Lines export is the verifiable one)."""
    import json

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(COLUMNS)
        with read_session(engine) as session:
            for line in export_jsonl(session, since=since):
                event = json.loads(line)
                writer.writerow(
                    [
                        json.dumps(event[c], ensure_ascii=False, sort_keys=True)
                        if isinstance(event[c], dict | list)
                        else event[c]
                        for c in COLUMNS
                    ]
                )
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv",
        headers={
            "Content-Disposition": content_disposition("custody.csv", disposition="attachment")
        },
    )


def _pdf(document: Document, name: str) -> Response:
    return Response(
        document.pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": content_disposition(name),
            "X-Records-SHA256": document.records_sha256,
        },
    )


@router.get(
    "/materials/{material_id}/coa.pdf",
    response_class=Response,
    responses=file_response("application/pdf", "the document (PDF)"),
)
def coa(engine: EngineDep, user: AuditUser, material_id: str) -> Response:
    """Certificate of analysis: results, specifications, methods, release signature."""
    with read_session(engine) as session:
        m = get_material(session, material_id)
        return _pdf(certificate_of_analysis(session, material=m), f"coa-{m.material_id}.pdf")


@router.get(
    "/materials/{material_id}/custody-report.pdf",
    response_class=Response,
    responses=file_response("application/pdf", "the document (PDF)"),
)
def custody_pdf(engine: EngineDep, user: AuditUser, material_id: str) -> Response:
    """Custody report of a dose, from the donor's tissue to the clinic's receipt."""
    with read_session(engine) as session:
        m = get_material(session, material_id)
        return _pdf(custody_report(session, dose=m), f"custody-{m.material_id}.pdf")


class CheckpointKeyOut(BaseModel):
    key_id: str
    public_key: str
    algorithm: str = "Ed25519"


@router.get("/checkpoint-key", response_model=CheckpointKeyOut)
def checkpoint_key_out(user: AuditUser) -> CheckpointKeyOut:
    """The lab's public key that signs custody checkpoints (PEM, SubjectPublicKeyInfo)."""
    key = checkpoint_key()
    return CheckpointKeyOut(key_id=key_id(key), public_key=public_pem(key))


def _checkpoint_or_latest(session: Any, checkpoint_id: int | None) -> Any:
    if checkpoint_id is not None:
        return get_checkpoint(session, checkpoint_id)
    found = latest_checkpoint(session)
    if found is None:
        raise NotFound("no custody checkpoint has been made yet (lims custody checkpoint)")
    return found


@router.get("/checkpoints/latest", response_model=CheckpointOut, response_model_exclude_unset=True)
def latest_checkpoint_out(engine: EngineDep, user: AuditUser) -> CheckpointOut:
    """The newest signed checkpoint, as saved for python -m lims.custody.verify."""
    with read_session(engine) as session:
        found = _checkpoint_or_latest(session, None)
        return CheckpointOut.model_validate(
            checkpoint_document(session, found, public_key=public_pem(checkpoint_key()))
        )


@router.get(
    "/proofs/inclusion/{seq}",
    response_model=InclusionProofOut,
    response_model_exclude_unset=True,
)
def inclusion_proof(
    engine: EngineDep,
    user: AuditUser,
    seq: Annotated[int, Path(ge=1, le=2**63 - 1, description="the event's sequence number")],
    checkpoint: Annotated[
        int | None,
        Query(ge=1, le=2_147_483_647, description="checkpoint id; the latest if unset"),
    ] = None,
) -> InclusionProofOut:
    """Event ``seq``'s canonical bytes and its RFC 9162 inclusion proof against a checkpoint."""
    with read_session(engine) as session:
        found = _checkpoint_or_latest(session, checkpoint)
        proof = inclusion(session, seq=seq, checkpoint=found)
        return InclusionProofOut.model_validate(
            {
                **proof,
                "checkpoint": checkpoint_json(found, public_key=public_pem(checkpoint_key())),
            }
        )


@router.get("/proofs/consistency", response_model=ConsistencyProofOut)
def consistency_proof(
    engine: EngineDep,
    user: AuditUser,
    first: Annotated[int, Query(ge=1, le=2_147_483_647, description="the older checkpoint's id")],
    second: Annotated[
        int | None,
        Query(ge=1, le=2_147_483_647, description="the newer one's; the latest if unset"),
    ] = None,
) -> ConsistencyProofOut:
    """The RFC 9162 consistency proof that one checkpoint's ledger is a prefix of another's."""
    with read_session(engine) as session:
        older = get_checkpoint(session, first)
        return ConsistencyProofOut.model_validate(
            consistency(session, first=older, second=_checkpoint_or_latest(session, second))
        )
