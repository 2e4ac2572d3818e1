"""The FastAPI app: /api/v1 routers per audience, problem+json errors, security headers,
OpenAPI at /docs (unless LIMS_PUBLIC_API_DOCS is off, the default in production)."""

from fastapi import FastAPI
from sqlalchemy import Engine

from api import pages, problems
from api.headers import SecurityHeaders
from api.logs import keep_access_log
from api.routers import admin, audit, auth, clinic, flows, lab, qa
from api.schemas import ERROR_RESPONSES
from api.web import audit_pages, auth_pages, bench, portal, qa_pages
from lims.db import make_engine
from lims.migrate import current_revision
from lims.settings import get_settings

MAX_BODY_BYTES = 1_048_576
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


def create_app(engine: Engine | None = None) -> FastAPI:
    keep_access_log()
    docs = get_settings().api_docs
    app = FastAPI(
        title="LIMS",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.engine = engine or make_engine()
    problems.install(app)
    for router in (
        auth.router,
        clinic.router,
        lab.router,
        flows.router,
        qa.router,
        audit.router,
        admin.router,
    ):
        app.include_router(router, prefix="/api/v1", responses=ERROR_RESPONSES)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "database_revision": current_revision(app.state.engine) or "none"}

    app.include_router(pages.router)
    for web in (
        auth_pages.router,
        bench.router,
        qa_pages.router,
        portal.router,
        audit_pages.router,
    ):
        app.include_router(web)
    app.add_middleware(problems.BodyLimit, limit=MAX_BODY_BYTES)
    # Outermost: its headers are on every answer, the body limit's 413 included.
    app.add_middleware(SecurityHeaders)
    return app
