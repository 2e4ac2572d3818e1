"""FHIR search parameters, parsed once into Criteria the queries read.

Supported on every resource: _id, identifier ([system|]value), _count and _offset (paging:
the Bundle's next/previous links carry them). Per resource: patient (or subject), status,
type (Specimen). Values separated by commas are alternatives (OR), as in FHIR. An unknown
parameter or modifier is refused (400), not silently ignored: a clinic's system that
believes it filtered must not receive everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lims.errors import LimsError
from lims.fhir.systems import lims_id
from lims.paging import MAX_PAGE

DEFAULT_COUNT = 50
MAX_COUNT = min(MAX_PAGE, 200)
MAX_OFFSET = 10_000_000
PAGING = frozenset({"_count", "_offset", "_format"})
SEARCH_PARAMS: dict[str, frozenset[str]] = {
    "Patient": frozenset({"_id", "identifier"}),
    "ServiceRequest": frozenset({"_id", "identifier", "patient", "subject", "status"}),
    "Task": frozenset({"_id", "identifier", "patient", "status"}),
    "BiologicallyDerivedProduct": frozenset({"_id", "identifier", "patient", "status"}),
    "Specimen": frozenset({"_id", "identifier", "patient", "subject", "status", "type"}),
}
# Status codes each resource's search accepts (those the resources are given).
STATUS_CODES: dict[str, frozenset[str]] = {
    "ServiceRequest": frozenset({"active", "completed", "revoked"}),
    "Task": frozenset({"requested", "in-progress", "completed", "cancelled"}),
    "BiologicallyDerivedProduct": frozenset({"available", "unavailable"}),
    "Specimen": frozenset({"available", "unavailable", "unsatisfactory"}),
}


class BadSearch(LimsError):
    """A search the server does not support or cannot read (FHIR answers 400)."""

    http_status = 400
    code = "bad_search"


@dataclass(frozen=True)
class Identifier:
    system: str | None
    value: str


@dataclass(frozen=True)
class Criteria:
    """One search: each field None when not given; a tuple of alternatives when given."""

    ids: tuple[str, ...] | None = None
    identifiers: tuple[Identifier, ...] | None = None
    patients: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    count: int = DEFAULT_COUNT
    offset: int = 0


def _values(name: str, raw: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    if not values:
        raise BadSearch(f"search parameter {name} has no value", field=name)
    return values


def _whole(name: str, raw: str, low: int, high: int) -> int:
    try:
        number = int(raw)
    except ValueError:
        raise BadSearch(f"{name} must be a whole number, not {raw!r}", field=name) from None
    if not low <= number <= high:
        raise BadSearch(f"{name} must be between {low} and {high}", field=name)
    return number


def _patient(value: str) -> str:
    """A patient reference: Patient/<coi>, a full URL ending so, or the bare id."""
    reference = value.rsplit("/", 2)
    if len(reference) >= 2 and reference[-2] != "Patient":
        raise BadSearch(f"patient must reference a Patient, not {value!r}", field="patient")
    return lims_id(reference[-1])


def _identifier(value: str) -> Identifier:
    system, bar, code = value.partition("|")
    if not bar:
        return Identifier(None, value.upper())
    return Identifier(system or None, code.upper())


def parse_search(resource_type: str, params: Iterable[tuple[str, str]]) -> Criteria:
    """Criteria for a search of ``resource_type`` from its query string's (name, value) pairs."""
    allowed = SEARCH_PARAMS[resource_type] | PAGING
    seen: dict[str, str] = {}
    for name, value in params:
        if name not in allowed:
            known = ", ".join(sorted(allowed - {"_format"}))
            raise BadSearch(
                f"{resource_type} cannot be searched by {name!r}; supported: {known}", field=name
            )
        if name in seen:
            raise BadSearch(f"give {name} once, with alternatives separated by commas", field=name)
        seen[name] = value
    fields: dict[str, object] = {}
    if "_id" in seen:
        fields["ids"] = tuple(lims_id(v) for v in _values("_id", seen["_id"]))
    if "identifier" in seen:
        fields["identifiers"] = tuple(
            _identifier(v) for v in _values("identifier", seen["identifier"])
        )
    patients = [seen[n] for n in ("patient", "subject") if n in seen]
    if len(patients) > 1:
        raise BadSearch("give patient or subject, not both", field="patient")
    if patients:
        fields["patients"] = tuple(_patient(v) for v in _values("patient", patients[0]))
    if "status" in seen:
        statuses = _values("status", seen["status"])
        unknown = set(statuses) - STATUS_CODES[resource_type]
        if unknown:
            codes = ", ".join(sorted(STATUS_CODES[resource_type]))
            raise BadSearch(
                f"{resource_type} status is one of {codes}; got {', '.join(sorted(unknown))}",
                field="status",
            )
        fields["statuses"] = statuses
    if "type" in seen:
        fields["types"] = tuple(v.partition("|")[2] or v for v in _values("type", seen["type"]))
    if "_format" in seen and seen["_format"] not in ("json", "application/fhir+json"):
        raise BadSearch("only JSON is served (_format=json)", field="_format")
    if "_count" in seen:
        fields["count"] = _whole("_count", seen["_count"], 1, MAX_COUNT)
    if "_offset" in seen:
        fields["offset"] = _whole("_offset", seen["_offset"], 0, MAX_OFFSET)
    return Criteria(**fields)  # type: ignore[arg-type]
