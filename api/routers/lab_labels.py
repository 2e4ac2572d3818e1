"""Labels printed at the bench (vial or bag); printing is a custody event."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.downloads import content_disposition
from api.security import EngineDep, LabUser
from lims.db import write_session
from lims.documents.labels import render_label
from lims.materials.service import get_material

router = APIRouter()


@router.get(
    "/materials/{material_id}/label.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def print_label(
    engine: EngineDep,
    user: LabUser,
    material_id: str,
    size: Annotated[str, Query(pattern="^(vial|bag)$")] = "vial",
) -> Response:
    """Print a label (vial or bag): id as text, DataMatrix and Code 128; printing is a
    custody event."""
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
