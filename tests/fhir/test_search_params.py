"""Search parameters parsed into criteria, and resource ids for lims ids (no database)."""

from __future__ import annotations

import pytest

from lims.fhir.search import BadSearch, Criteria, Identifier, parse_search
from lims.fhir.systems import COI, fhir_id, lims_id


def test_ids_with_a_star_check_character_round_trip() -> None:
    assert fhir_id("COI-ABCD-EFGH-*") == "COI-ABCD-EFGH-."
    assert lims_id("coi-abcd-efgh-.") == "COI-ABCD-EFGH-*"
    assert lims_id(fhir_id("X000126000047*")) == "X000126000047*"


def test_parameters_become_criteria() -> None:
    criteria = parse_search(
        "ServiceRequest",
        [
            ("_id", "ord-000001, ORD-000002"),
            ("identifier", f"{COI}|coi-x,plain"),
            ("subject", "https://lab/fhir/Patient/COI-ABCD-EFGH-."),
            ("status", "active,revoked"),
            ("_count", "10"),
            ("_offset", "20"),
            ("_format", "json"),
        ],
    )
    assert criteria == Criteria(
        ids=("ORD-000001", "ORD-000002"),
        identifiers=(Identifier(COI, "COI-X"), Identifier(None, "PLAIN")),
        patients=("COI-ABCD-EFGH-*",),
        statuses=("active", "revoked"),
        count=10,
        offset=20,
    )
    assert parse_search("Specimen", [("type", "urn:lims:material-kind|lipoaspirate")]).types == (
        "lipoaspirate",
    )


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("Patient", [("status", "active")]),
        ("Patient", [("_id", " , ")]),
        ("Task", [("patient", "1"), ("patient", "2")]),
        ("ServiceRequest", [("patient", "a"), ("subject", "b")]),
        ("Task", [("_count", "100000")]),
        ("Specimen", [("status", "active")]),
    ],
)
def test_unsupported_parameters_are_refused(kind: str, params: list[tuple[str, str]]) -> None:
    with pytest.raises(BadSearch):
        parse_search(kind, params)
