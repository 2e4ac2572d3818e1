"""The FastAPI app: /api/v1 routers per audience, problem+json errors, security headers,
OpenAPI at /docs (unless LIMS_PUBLIC_API_DOCS is off, the default in production)."""

import ctypes
import os
import signal
import sys

from fastapi import FastAPI
from sqlalchemy import Engine

from api import openapi, ops, pages, problem_types, problems
from api.fhir import fhir_app
from api.headers import SecurityHeaders
from api.jsonlog import RequestLog, install_json_logging
from api.logs import keep_access_log
from api.media_type import JsonBodies
from api.routers import admin, audit, auth, clinic, doses, flows, lab, qa, recalls, webhooks
from api.schemas import ERROR_RESPONSES
from api.web import (
    audit_pages,
    auth_pages,
    bench,
    homes,
    lab_orders,
    materials_pages,
    portal,
    portal_doses,
    portal_form,
    portal_recalls,
    portal_webhooks,
    qa_doses,
    qa_pages,
    recall_pages,
    search_pages,
)
from lims.db import make_engine
from lims.migrate import current_revision
from lims.settings import get_settings

MAX_BODY_BYTES = 1_048_576
# Longer than a client's idle keep-alive (httpx 5 s, browsers 60-300 s, nginx upstream 60 s):
# if the server closed first, a request sent on the closing connection is reset mid-flight.
KEEP_ALIVE_SECONDS = 75
DESCRIPTION = """
LIMS for adipose-derived stem-cell hair-restoration products.

* **Sign in** with `POST /api/v1/auth/token` (OAuth2 password form) and send
  `Authorization: Bearer <access_token>`; clinic systems may send `X-API-Key` instead.
* **Errors** are `application/problem+json` (RFC 9457) with a `detail` a person can act on;
  rule refusals are 409 or 422, another clinic's ids are 404.
* **Retries**: POSTs that create or record accept an `Idempotency-Key` header; the same key
  and body returns the first response, a different body is refused (409).
* **Quantities** are a number with a unit: `"3.5 mL"` or `{"value": "3.5", "unit": "mL"}`.
"""


# Set by ``lims serve`` to its own pid for the workers it spawns.
SUPERVISOR_ENV = "LIMS_SERVE_SUPERVISOR_PID"


def create_worker_app() -> FastAPI:
    """The app in one of ``lims serve --workers N``'s processes. On Linux the process is
    ended when the supervisor that spawned it dies (PR_SET_PDEATHSIG): a supervisor killed
    with SIGKILL must not leave workers answering on its port."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        # The supervisor may have died before the call (the signal then never comes). Not
        # "parent is pid 1": in a container the supervisor itself is pid 1.
        supervisor = os.environ.get(SUPERVISOR_ENV, "")
        if supervisor.isdigit() and os.getppid() != int(supervisor):
            os.kill(os.getpid(), signal.SIGTERM)
    return create_app()


def create_app(engine: Engine | None = None) -> FastAPI:
    keep_access_log()
    install_json_logging()
    docs = get_settings().api_docs
    app = FastAPI(
        title="LIMS",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.engine = engine or make_engine()
    problems.install(app)
    openapi.install(app)
    for router in (
        auth.router,
        clinic.router,
        lab.router,
        flows.router,
        qa.router,
        audit.router,
        admin.router,
        webhooks.router,
        doses.router,
        recalls.qa_router,
        recalls.clinic_router,
    ):
        app.include_router(router, prefix="/api/v1", responses=ERROR_RESPONSES)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Alive: 200 while the process answers, with the schema revision (see /ready)."""
        return {"status": "ok", "database_revision": current_revision(app.state.engine) or "none"}

    app.mount("/fhir", fhir_app(app.state.engine))  # HL7 FHIR R4 facade (docs/fhir.md)
    app.include_router(ops.router)
    app.include_router(pages.router)
    app.include_router(problem_types.router)
    for web in (
        auth_pages.router,
        bench.router,
        qa_pages.router,
        qa_doses.router,
        portal_form.router,  # before portal: /portal/orders/new is not an order number
        portal_recalls.router,
        portal_webhooks.router,
        portal.router,
        recall_pages.router,
        portal_doses.router,
        search_pages.router,
        audit_pages.router,
        homes.router,
        lab_orders.router,
        materials_pages.router,
    ):
        app.include_router(web)
    app.add_middleware(JsonBodies)
    app.add_middleware(problems.BodyLimit, limit=MAX_BODY_BYTES)
    # Outermost: its headers are on every answer, the body limit's 413 included.
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLog)  # outermost: times and logs every answer, with its id
    return app
