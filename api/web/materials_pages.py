"""Scan-to-action and storage: a scanned id opens the material (state, storage position,
history, the next steps its state allows, a move-to-position form); storage as a
freezer -> rack -> box grid, searchable by material id or box name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.routers.lab_labels import label_response
from api.security import EngineDep
from api.web.forms import Problems
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.custody.ledger import history
from lims.db import read_session, write_session
from lims.errors import LimsError, NotFound
from lims.identity.codes import format_material_id
from lims.materials.models import Material, StorageLocation
from lims.materials.queries import box_map, find_position, storage_boxes
from lims.materials.service import get_material, move_material, remaining
from lims.orders.queries import order_of_dose
from lims.parties.models import LAB_STAFF
from lims.steps.queries import steps_for

router = APIRouter(include_in_schema=False)
STAFF = sorted(LAB_STAFF)
# The newest events shown under a scanned material (the audit view has them all).
HISTORY_ROWS = 20


def _scan_page(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    id: str,
    problems: Problems,
    form: dict[str, str],
    status_code: int = 200,
) -> Response:
    found = left = location = order = None
    steps, events, boxes = [], [], []
    with read_session(engine) as session:
        boxes = storage_boxes(session)
        if id.strip():
            try:
                found = get_material(session, id)
            except LimsError as exc:
                problems.add(exc.message, "id")
                status_code = max(status_code, exc.http_status)
        if found is not None:
            left = remaining(found)
            location = (
                session.get(StorageLocation, found.location_id) if found.location_id else None
            )
            steps = steps_for(session, material=found)
            events = history(session, material_id=found.material_id)[-HISTORY_ROWS:][::-1]
            order = order_of_dose(session, dose=found)
    return page(
        request,
        "scan.html",
        status_code=status_code,
        user=user,
        id=id,
        found=found,
        left=left,
        location=location,
        steps=steps,
        events=events,
        order=order,
        boxes=[(" / ".join(b), " / ".join(b)) for b in boxes],
        problems=problems,
        form=form,
    )


@router.get("/bench/scan", response_class=HTMLResponse)
def scan(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    id: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    require_role(user, *STAFF)
    return _scan_page(request, engine, user, id, Problems(), {})


@router.post("/bench/scan/move", response_class=HTMLResponse)
def move(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    csrf: Annotated[str, Form()],
    material: Annotated[str, Form(max_length=64)] = "",
    box: Annotated[str, Form(max_length=300)] = "",
    position: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Put the scanned material in a registered position of a box."""
    require_role(user, *STAFF)
    check_csrf(request, csrf)
    form = {"box": box, "position": position}
    problems = Problems()
    parts = [p.strip() for p in box.split(" / ")]
    if len(parts) != 4:
        problems.add("Choose the box", "box")
    if not position.strip():
        problems.add("Enter the position in the box, for example B3", "position")
    if not problems:
        try:
            with write_session(engine) as session:
                found = get_material(session, material, lock=True)
                site, freezer, rack, box_name = parts
                where = find_position(
                    session,
                    site=site,
                    freezer=freezer,
                    rack=rack,
                    box=box_name,
                    position=position.strip().upper(),
                )
                if where is None:
                    raise NotFound(f"{box} has no position {position.strip().upper()}")
                move_material(session, material=found, location=where, actor=user)
                label = where.label()
        except NotFound as exc:
            problems.add(exc.message, "position")
        except LimsError as exc:
            problems.add(exc.message)
    if problems:
        return _scan_page(request, engine, user, material, problems, form, 409)
    shown = format_material_id(material) if material else material
    return redirect_with(f"/bench/scan?id={material}", message=f"{shown} moved to {label}")


@router.get("/bench/storage", response_class=HTMLResponse)
def storage(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    site: Annotated[str, Query(max_length=64)] = "",
    freezer: Annotated[str, Query(max_length=64)] = "",
    rack: Annotated[str, Query(max_length=32)] = "",
    box: Annotated[str, Query(max_length=32)] = "",
    q: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    require_role(user, *STAFF)
    problems = Problems()
    highlight: Material | None = None
    with read_session(engine) as session:
        boxes = storage_boxes(session)
        if q.strip():
            try:
                highlight = get_material(session, q)
            except LimsError:
                highlight = None  # not a material id: a box name filter
            if highlight is not None:
                at = (
                    session.get(StorageLocation, highlight.location_id)
                    if highlight.location_id
                    else None
                )
                if at is None:
                    problems.add(
                        f"{format_material_id(highlight.material_id)} is not in storage", "q"
                    )
                else:
                    site, freezer, rack, box = at.site, at.freezer, at.rack, at.box
            else:
                needle = q.strip().lower()
                boxes = [b for b in boxes if needle in " / ".join(b).lower()]
        here = box_map(session, site=site, freezer=freezer, rack=rack, box=box)
    if site and not here.positions:
        raise NotFound(f"no box {site}/{freezer}/{rack}/{box}")
    tree: dict[str, dict[str, list[tuple[str, ...]]]] = {}
    for b in boxes:
        tree.setdefault(f"{b.site} / {b.freezer}", {}).setdefault(b.rack, []).append(tuple(b))
    return page(
        request,
        "storage.html",
        user=user,
        tree=tree,
        grid=here.grid() if here.positions else None,
        held=here.held,
        here=(site, freezer, rack, box),
        q=q,
        highlight=highlight,
        problems=problems,
    )


@router.post("/lab/materials/{material_id}/label")
def print_label_page(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    material_id: str,
    csrf: Annotated[str, Form(max_length=200)] = "",
    size: Annotated[str, Form(pattern="^(vial|bag)$")] = "vial",
) -> Response:
    """Print a label from the order or scan page (a form, so a prefetch never prints one):
    the PDF, and its printing in the custody ledger, as the API's printMaterialLabel."""
    require_role(user, *STAFF)
    check_csrf(request, csrf)
    return label_response(engine, user, material_id, size)
