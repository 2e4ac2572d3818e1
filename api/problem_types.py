"""Pages behind the problem ``type`` URIs (RFC 9457 section 3.1.1): each says what the
problem means and what the caller can do, so an integrator who follows a type finds an
answer instead of a 404."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.problems import TITLES
from lims.errors import NotFound


@dataclass(frozen=True, slots=True)
class ProblemType:
    status: int
    meaning: str
    action: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    "not_found": ProblemType(
        404,
        "The id names nothing you may see: it does not exist, or belongs to another clinic.",
        "Check the id (material ids have a check character); list what you can see first.",
    ),
    "invalid_input": ProblemType(
        422,
        "A field is missing, of the wrong type or unit, or outside its plausible range.",
        "Read `errors`: every invalid field with a message; correct them and send again.",
    ),
    "malformed_json": ProblemType(
        400, "The body is not valid JSON.", "Send a JSON object with Content-Type application/json."
    ),
    "rule_violation": ProblemType(
        409,
        "The lab's rules refuse the change in the record's present state.",
        "Read `detail`; it names the rule. The record was not changed.",
    ),
    "illegal_transition": ProblemType(
        409,
        "The material's state machine does not allow this move from its present state.",
        "Read the material's state; only the moves its state allows can be made.",
    ),
    "insufficient_quantity": ProblemType(
        409,
        "More was asked than remains (vials, volume or cells).",
        "Ask for what remains, or choose another lot.",
    ),
    "identity_mismatch": ProblemType(
        409,
        "The chain of identity does not match: the dose is not for this patient.",
        "Stop. Check the label and the patient's chain-of-identity id; never override.",
    ),
    "step_refused": ProblemType(
        409,
        "The process step fails its SOP checks.",
        "Read `problems`: every failed check; record a deviation if the step really happened.",
    ),
    "dispatch_refused": ProblemType(
        409,
        "The dispatch gate refused the shipment.",
        "Read `failures`: every failed check (release, identity, signatures, label scan).",
    ),
    "recall_lot_not_released": ProblemType(
        409,
        "Only a released (or depleted) lot can be recalled; this material is not one.",
        "Recall the released lot it came from, or hold or reject it through QC instead.",
    ),
    "recall_already_open": ProblemType(
        409,
        "The lot is already under an open recall.",
        "Open the existing recall (its number is in the detail) and act on it there.",
    ),
    "recall_not_acknowledged": ProblemType(
        409,
        "A recall closes only when every clinic it reached has acknowledged it.",
        "Wait for the clinics named in `clinics`, or close with a signed `override_reason`.",
    ),
    "recall_closed": ProblemType(
        409,
        "The recall is already closed.",
        "Nothing more to do; its report still lists every item and acknowledgement.",
    ),
    "idempotency_conflict": ProblemType(
        409,
        "The Idempotency-Key was used before with a different request.",
        "Use a new key for a new request; reuse a key only to retry the same request.",
    ),
    "duplicate": ProblemType(
        409, "The record already exists.", "Read the existing record instead of creating it."
    ),
    "unstorable_value": ProblemType(
        422, "A value does not fit what can be stored.", "Send a shorter or smaller value."
    ),
    "authentication_failed": ProblemType(
        401,
        "Not signed in, a token expired, or a password is wrong.",
        "Sign in again (POST /api/v1/auth/token) or refresh the token.",
    ),
    "account_locked": ProblemType(
        423,
        "Too many wrong passwords: the account is locked.",
        "Wait for the lock to end or ask an administrator.",
    ),
    "too_many_attempts": ProblemType(
        429, "Too many sign-in attempts.", "Wait for the seconds in Retry-After, then try again."
    ),
    "forbidden": ProblemType(403, "Your role may not do this.", "Ask someone with the right role."),
    "too_large": ProblemType(
        413, "The request body is over 1 MiB.", "Send less; upload files in parts."
    ),
    "unavailable": ProblemType(
        503,
        "The database is busy or unreachable for a moment.",
        "Retry after Retry-After seconds with the same Idempotency-Key.",
    ),
    "custody_chain_broken": ProblemType(
        500,
        "The nightly verification found that the custody chain does not re-add: an event was"
        " changed, removed or inserted after it was written.",
        "Treat it as an incident: QA stops releases and dispatch, and compares the chain with"
        " the last signed checkpoint an auditor holds (`lims custody verify`).",
    ),
    # HL7 FHIR (/fhir) answers these as an OperationOutcome; the codes are the same.
    "bad_search": ProblemType(
        400,
        "A FHIR search parameter is not supported or cannot be read.",
        "See /fhir/metadata for the search parameters each resource supports.",
    ),
    "invalid_resource": ProblemType(
        422,
        "The body is not a valid FHIR resource of the expected type.",
        "Read the OperationOutcome's issues: each names the element at fault.",
    ),
    "malformed_body": ProblemType(
        400, "The body is not valid JSON.", "Send a FHIR resource as application/fhir+json."
    ),
    "not_supported": ProblemType(
        405,
        "The FHIR interaction is not supported on this resource.",
        "See /fhir/metadata for the interactions each resource supports.",
    ),
    "unsupported_media_type": ProblemType(
        415,
        "The body's Content-Type is not one the server reads.",
        "Send application/fhir+json (FHIR) or application/json (/api/v1).",
    ),
}
# Problems without a code of their own are typed by status (``/problems/405``).
for _status, _title in TITLES.items():
    PROBLEM_TYPES.setdefault(
        str(_status),
        ProblemType(_status, f"{_title}.", "Read `detail` for what was refused and why."),
    )

router = APIRouter(include_in_schema=False)


@router.get("/problems/{code}", response_class=HTMLResponse)
def problem_type(request: Request, code: str) -> HTMLResponse:
    """What a problem type means and what to do about it."""
    from api.web.render import page

    found = PROBLEM_TYPES.get(code)
    if found is None:
        raise NotFound(f"there is no problem type {code!r}")
    return page(
        request,
        "problem_type.html",
        code=code,
        problem=found,
        title=TITLES.get(found.status, "Error"),
    )
