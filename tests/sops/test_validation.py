"""Each SOP's parameters are validated against its data, with the domain's messages."""

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from lims.errors import RuleViolation
from lims.sops.catalog import SOPS
from lims.sops.models import SopVersion
from lims.sops.service import definition_of, sop_in_force, sync_catalog
from lims.sops.spec import ParameterSpec, ParamType, SopDefinition
from lims.sops.validation import check_parameters
from lims.units import KINDS, parse_quantity

WRONG_UNIT = {  # a unit of another dimension for each kind of parameter
    "volume": "3 kg",
    "mass": "3 mL",
    "duration": "3 mL",
    "temperature": "3 mL",
    "pressure": "3 mL",
    "rcf": "3 mL",
    "fraction": "3 mL",
    "length": "3 mL",
    "area": "3 mL",
    "cell_density": "3 mL",
    "cell_concentration": "3 kg",
    "cells": "3 vials",
    "vials": "3 cells",
    "mass_concentration": "3 mL",
    "endotoxin_concentration": "3 mL",
}


def _valid_value(spec: ParameterSpec) -> Any:
    if spec.type is ParamType.QUANTITY:
        assert spec.quantity_kind is not None
        low = spec.accept_min or spec.warn_min or spec.min
        high = spec.accept_max or spec.warn_max or spec.max
        kind = spec.quantity_kind
        unit = KINDS[kind].canonical_unit
        lo = parse_quantity(low, kind).canonical if low else None
        hi = parse_quantity(high, kind).canonical if high else None
        mid: Decimal | int
        if lo is not None and hi is not None:
            mid = (lo + hi) / 2
        else:
            mid = lo if lo is not None else (hi if hi is not None else 1)
        if KINDS[kind].whole:
            mid = mid.to_integral_value() if hasattr(mid, "to_integral_value") else mid
        return f"{mid} {unit}"
    if spec.type is ParamType.CHOICE:
        assert spec.choices
        return spec.choices[0]
    if spec.type is ParamType.INTEGER:
        return (int(spec.min or 1) + int(spec.max or spec.min or 1)) // 2
    if spec.type is ParamType.BOOLEAN:
        return spec.accept_equals if spec.accept_equals is not None else False
    return "REF-1"


def _valid(sop: SopDefinition) -> dict[str, Any]:
    return {p.name: _valid_value(p) for p in sop.parameters if not p.derived}


CASES = [(sop, p) for sop in SOPS for p in sop.parameters if not p.derived]


@pytest.mark.parametrize("sop", SOPS, ids=lambda s: s.code)
def test_every_sop_accepts_values_within_its_limits(sop: SopDefinition) -> None:
    result = check_parameters(sop, _valid(sop), derived={})
    assert result.problems == []
    assert result.failed_acceptance == []


@pytest.mark.parametrize(
    ("sop", "spec"), CASES, ids=lambda v: getattr(v, "code", None) or getattr(v, "name", None)
)
def test_every_parameter_is_checked(sop: SopDefinition, spec: ParameterSpec) -> None:
    values = _valid(sop)
    if spec.required:
        missing = {k: v for k, v in values.items() if k != spec.name}
        problems = check_parameters(sop, missing, {}).problems
        assert problems == [
            f"{spec.name}: {spec.label} is required (SOP {sop.code} v{sop.version})"
        ]
    bad: list[Any] = []
    if spec.type is ParamType.QUANTITY:
        assert spec.quantity_kind is not None
        bad.append(WRONG_UNIT[spec.quantity_kind.value])
        unit = KINDS[spec.quantity_kind].canonical_unit
        if spec.min is not None:
            low = parse_quantity(spec.min, spec.quantity_kind).canonical
            if low > 0:
                bad.append(
                    f"{low / 2} {unit}"
                    if not KINDS[spec.quantity_kind].whole
                    else f"{int(low) - 1} {unit}"
                )
            elif low < 0:
                bad.append(f"{low - 10} {unit}")
        if spec.max is not None:
            high = parse_quantity(spec.max, spec.quantity_kind).canonical
            bad.append(f"{high + abs(high) + 1} {unit}")
    elif spec.type is ParamType.CHOICE:
        bad.append("something else")
    elif spec.type is ParamType.INTEGER:
        bad.extend(["many", 2.5, int(spec.max or 0) + 1])
    elif spec.type is ParamType.BOOLEAN:
        bad.append("perhaps")
    else:
        bad.extend(["", "x" * 501])
    for value in bad:
        problems = check_parameters(sop, {**values, spec.name: value}, {}).problems
        assert len(problems) == 1, (value, problems)
        assert problems[0].startswith(f"{spec.name}: "), problems


def test_messages_name_value_limit_and_sop_version() -> None:
    sop = next(s for s in SOPS if s.code == "SVF-SEP")
    values = _valid(sop)
    result = check_parameters(sop, {**values, "digestion_time": "900 min"}, {})
    assert result.problems == [
        "digestion_time: 900 min is above the maximum 90 min (SOP SVF-SEP v1)"
    ]
    result = check_parameters(sop, {**values, "digestion_time": "45 mL"}, {})
    assert result.problems == ["digestion_time: expected a duration, got 45 mL"]
    result = check_parameters(sop, {**values, "digestion_time": "1 h"}, {})
    assert result.problems == []
    result = check_parameters(sop, {**values, "colour": "blue"}, {})
    assert result.problems == ["colour: not a parameter of SOP SVF-SEP v1"]


def test_acceptance_and_warning_limits_do_not_refuse_the_record() -> None:
    sop = next(s for s in SOPS if s.code == "SVF-SEP")
    result = check_parameters(sop, {**_valid(sop), "viability": "55 %"}, {})
    assert result.problems == []
    assert result.failed_acceptance == [
        "Viability 55 % is below the acceptance limit 70 % (SOP SVF-SEP v1)"
    ]
    intake = next(s for s in SOPS if s.code == "LIPO-INTAKE")
    derived = {"time_since_harvest": parse_quantity("30 h", KINDS_DURATION)}
    result = check_parameters(intake, _valid(intake), derived)
    assert result.warnings == ["Time since harvest 30 h is above 24 h (SOP LIPO-INTAKE v1)"]
    assert result.failed_acceptance == []
    derived = {"time_since_harvest": parse_quantity("80 h", KINDS_DURATION)}
    result = check_parameters(intake, _valid(intake), derived)
    assert "above the acceptance limit 72 h" in result.failed_acceptance[0]


def test_derived_parameters_cannot_be_typed_in() -> None:
    sop = next(s for s in SOPS if s.code == "LIPO-INTAKE")
    result = check_parameters(sop, {**_valid(sop), "time_since_harvest": "1 h"}, {})
    assert result.problems == [
        "time_since_harvest: computed by the LIMS from the record, do not enter it"
    ]


def test_catalog_covers_every_stage_of_the_design() -> None:
    stages = {s.stage for s in SOPS}
    assert stages >= {
        "intake",
        "svf",
        "culture",
        "conditioning",
        "cm_processing",
        "lyophilisation",
        "dispensing",
        "follicle",
        "nanofat",
    }
    assert len({(s.code, s.version) for s in SOPS}) == len(SOPS)


def test_stored_sop_versions_are_immutable(engine: Engine) -> None:
    from lims.db import write_session

    with write_session(engine) as s:
        row = sop_in_force(s, code="SVF-SEP")
        assert definition_of(row).digest() == row.sha256
        assert sync_catalog(s) == []  # already there: nothing added
        edited = next(x for x in SOPS if x.code == "SVF-SEP").model_copy(
            update={"title": "edited in place"}
        )
        with pytest.raises(RuleViolation, match="add version 2"):
            sync_catalog(s, sops=[edited])
        row.definition = {**row.definition, "title": "tampered"}
        with pytest.raises(RuleViolation, match="does not match its hash"):
            definition_of(row)
        row_id = row.id
        s.rollback()
    with write_session(engine) as s:
        stored = s.get(SopVersion, row_id)
        assert stored is not None
        assert stored.definition["title"] != "tampered"


from lims.units import QuantityKind  # noqa: E402

KINDS_DURATION = QuantityKind.DURATION
