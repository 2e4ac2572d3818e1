"""FHIR interactions: capabilities, read, search, and create for ServiceRequest (a dose
order, placed through lims.orders.service.place with /api/v1's Idempotency-Key rules)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api import idempotency
from api.security import ClinicUser, CurrentUser, EngineDep
from lims.db import read_session, utcnow
from lims.errors import LimsError, NotFound
from lims.fhir import queries, resources
from lims.fhir.bundles import searchset
from lims.fhir.capability import capability_statement
from lims.fhir.orders import order_request, read_service_request
from lims.fhir.search import SEARCH_PARAMS, Criteria, parse_search
from lims.fhir.systems import CONTENT_TYPE, lims_id
from lims.orders.service import patient_for, place
from lims.paging import Listing
from lims.parties.models import User

router = APIRouter()
SOFTWARE_VERSION = "1.0.0"
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", description="retry-safe key for this POST")
]
Found = tuple[Listing[Any], list[dict[str, Any]]]


class MalformedBody(LimsError):
    http_status = 400
    code = "malformed_body"


class UnsupportedMediaType(LimsError):
    http_status = 415
    code = "unsupported_media_type"


def _patients(session: Session, actor: User, criteria: Criteria) -> Found:
    listing = queries.patients(session, actor=actor, criteria=criteria)
    return listing, [resources.patient_resource(p) for p in listing]


def _service_requests(session: Session, actor: User, criteria: Criteria) -> Found:
    listing = queries.orders(session, actor=actor, criteria=criteria)
    return listing, [resources.service_request(r.order, coi_id=r.coi_id) for r in listing]


def _tasks(session: Session, actor: User, criteria: Criteria) -> Found:
    listing = queries.orders(session, actor=actor, criteria=criteria, as_task=True)
    return listing, [resources.task(r.order, coi_id=r.coi_id, dose_id=r.dose_id) for r in listing]


def _products(session: Session, actor: User, criteria: Criteria) -> Found:
    listing = queries.doses(session, actor=actor, criteria=criteria)
    return listing, [
        resources.biologically_derived_product(
            r.dose,
            order=r.order,
            coi_id=r.coi_id,
            lot_id=r.lot_id,
            storage_c=r.storage_c,
            recalled=r.recalled,
        )
        for r in listing
    ]


def _specimens(session: Session, actor: User, criteria: Criteria) -> Found:
    listing = queries.specimens(session, actor=actor, criteria=criteria)
    return listing, [resources.specimen(r.material, coi_id=r.coi_id) for r in listing]


FINDERS: dict[str, Callable[[Session, User, Criteria], Found]] = {
    "Patient": _patients,
    "ServiceRequest": _service_requests,
    "Task": _tasks,
    "BiologicallyDerivedProduct": _products,
    "Specimen": _specimens,
}
assert set(FINDERS) == set(SEARCH_PARAMS)


def _finder(resource_type: str) -> Callable[[Session, User, Criteria], Found]:
    if resource_type not in FINDERS:
        raise NotFound(
            f"this server does not serve {resource_type!r} resources; "
            f"it serves {', '.join(FINDERS)} (see /fhir/metadata)",
            field="resourceType",
        )
    return FINDERS[resource_type]


def _fhir(body: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status, media_type=CONTENT_TYPE, headers=headers or None)


@router.get("/metadata")
def metadata(request: Request) -> JSONResponse:
    """The CapabilityStatement (no sign-in needed: it holds no data)."""
    base = str(request.url).split("?")[0].removesuffix("/metadata")
    return _fhir(
        capability_statement(base_url=base, software_version=SOFTWARE_VERSION, at=utcnow())
    )


@router.get("/{resource_type}")
def search(
    request: Request, engine: EngineDep, user: CurrentUser, resource_type: str
) -> JSONResponse:
    """search-type: a searchset Bundle of what the caller may see."""
    finder = _finder(resource_type)
    params = list(request.query_params.multi_items())
    criteria = parse_search(resource_type, params)
    with read_session(engine) as session:
        listing, found = finder(session, user, criteria)
    url = str(request.url).split("?")[0]
    return _fhir(searchset(url=url, params=params, listing=listing, resources=found))


@router.get("/{resource_type}/{resource_id}")
def read(
    engine: EngineDep, user: CurrentUser, resource_type: str, resource_id: str
) -> JSONResponse:
    """read: one resource; another clinic's is 'not found', like an unknown id."""
    finder = _finder(resource_type)
    with read_session(engine) as session:
        _, found = finder(session, user, Criteria(ids=(lims_id(resource_id),), count=1))
    if not found:
        raise NotFound(f"no {resource_type}/{resource_id}", field="id")
    return _fhir(found[0])


@router.post("/ServiceRequest", status_code=201)
async def create_service_request(
    request: Request, engine: EngineDep, user: ClinicUser, key: IdempotencyKey = None
) -> Response:
    """create: a dose order, placed as POST /api/v1/clinic/orders places it."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (CONTENT_TYPE, "application/json"):
        raise UnsupportedMediaType(f"send the resource as {CONTENT_TYPE}, not {media or 'nothing'}")
    try:
        data = json.loads(await request.body())
    except ValueError:
        raise MalformedBody("the body is not valid JSON") from None
    coi_id, details = order_request(read_service_request(data))

    def handle(session: Session, actor: User) -> object:
        patient = patient_for(session, actor=actor, coi_id=coi_id)
        order = place(session, actor=actor, patient=patient, details=details)
        return resources.service_request(order, coi_id=patient.coi_id)

    response = await run_in_threadpool(
        idempotency.run,
        engine,
        user=user,
        key=key,
        method="POST",
        path=request.url.path,
        body=data,
        status_code=201,
        handler=handle,
    )
    number = json.loads(bytes(response.body))["id"]
    base = str(request.url).split("?")[0]
    response.headers["content-type"] = CONTENT_TYPE
    response.headers["location"] = f"{base}/{number}"
    return response


@router.post("/{resource_type}")
def create_other(user: CurrentUser, resource_type: str) -> Response:
    """Only ServiceRequest can be created."""
    _finder(resource_type)
    raise RefusedInteraction(f"{resource_type} cannot be created here; only ServiceRequest")


class RefusedInteraction(LimsError):
    http_status = 405
    code = "not_supported"
