"""Search results as a FHIR searchset Bundle (paging by links), errors as OperationOutcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from lims.fhir.resources import fhir_json
from lims.paging import Listing

# OperationOutcome.issue.code for each HTTP status the facade answers with.
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "business-rule",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    423: "security",
    429: "throttled",
    503: "transient",
}


def searchset(
    *,
    url: str,
    params: Sequence[tuple[str, str]],
    listing: Listing[Any],
    resources: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """One page of results; ``url`` is the search's absolute URL without a query."""

    def link(relation: str, offset: int) -> dict[str, str]:
        kept = [(k, v) for k, v in params if k not in ("_offset", "_count")]
        query = urlencode([*kept, ("_count", str(listing.limit)), ("_offset", str(offset))])
        return {"relation": relation, "url": f"{url}?{query}"}

    links = [link("self", listing.offset)]
    if listing.next_offset is not None:
        links.append(link("next", listing.next_offset))
    if listing.offset > 0:
        links.append(link("previous", max(0, listing.offset - listing.limit)))
    base = url.rsplit("/", 1)[0]
    entries = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in resources
    ]
    data: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if listing.offset == 0 and listing.next_offset is None:
        data["total"] = len(entries)  # known without a count query only on a single page
    if entries:
        # Each resource was validated when it was made; the Bundle is checked around them.
        data["entry"] = [{k: v for k, v in e.items() if k != "resource"} for e in entries]
        fhir_json(Bundle, data)
        data["entry"] = entries
        return data
    return fhir_json(Bundle, data)


def operation_outcome(
    status: int, message: str, *, expressions: Sequence[str] = (), details: Sequence[str] = ()
) -> dict[str, Any]:
    """An error as an OperationOutcome: one issue, plus one per listed detail."""
    code = ISSUE_CODES.get(status, "exception")
    severity = "fatal" if status >= 500 else "error"
    first: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if expressions:
        first["expression"] = list(expressions)
    issues = [first] + [
        {"severity": severity, "code": code, "diagnostics": detail} for detail in details
    ]
    return fhir_json(OperationOutcome, {"resourceType": "OperationOutcome", "issue": issues})
