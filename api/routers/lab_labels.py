"""Labels printed at the bench (vial or bag); printing is a custody event, so it is a POST
(a GET has no side effects; a crawler or a prefetch must never "print" a label). The web
pages print through the same function with their CSRF check (api/web/lab_orders.py)."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import Engine

from api.downloads import content_disposition
from api.schemas import file_response
from api.security import EngineDep, LabUser
from lims.db import write_session
from lims.documents.labels import render_label
from lims.materials.service import get_material
from lims.parties.models import User

router = APIRouter()


LabelSize = Annotated[str, Query(pattern="^(vial|bag)$", description="vial (default) or bag")]


@router.post(
    "/materials/{material_id}/label.pdf",
    response_class=Response,
    responses=file_response("application/pdf", "the label (PDF, with its 2-D barcode)"),
)
def print_label(
    engine: EngineDep, user: LabUser, material_id: str, size: LabelSize = "vial"
) -> Response:
    """Print a label (vial or bag): id as text, DataMatrix and Code 128; each print is a
    custody event (a retry prints again, and is recorded as the reprint it is)."""
    return label_response(engine, user, material_id, size)


def label_response(engine: Engine, user: User, material_id: str, size: str) -> Response:
    """Render the label and record its printing in one transaction (API and web pages)."""
    with write_session(engine) as session:
        material = get_material(session, material_id)
        label = render_label(session, material=material, size=size, actor=user)
        # Built before the commit, from the canonical id: if the answer cannot be made,
        # the "label printed" event is rolled back with it.
        return Response(
            label.pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": content_disposition(f"label-{material.material_id}.pdf"),
                "X-Document-SHA256": label.sha256,
            },
        )
