"""Typical values and parameter models are derived from the SOP catalogue, and the typical
values are not part of what an SOP version says (its stored definition and SHA-256)."""

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from lims.db import write_session
from lims.errors import InvalidInput
from lims.sops.catalog import SOPS
from lims.sops.parameters import parameters_model, typical_parameters
from lims.sops.service import definition_of, sop_in_force, sync_catalog
from lims.sops.spec import ParameterSpec, ParamType
from lims.sops.validation import check_parameters
from lims.units import Quantity
from lims.units import QuantityKind as Q

RECIPIENT = {
    "recipient_coi": "C-1",
    "recipient_identifier_1": "1980-04-12",
    "recipient_identifier_2": "GHC-1",
}


@pytest.mark.parametrize("sop", SOPS, ids=lambda s: s.code)
def test_typical_parameters_pass_their_sop_cleanly(sop: object) -> None:
    from lims.sops.spec import SopDefinition

    assert isinstance(sop, SopDefinition)
    entered = typical_parameters(sop.code)
    if sop.code == "DOSE-ALLOCATE":  # who receives a dose is never typical
        entered = {**entered, **RECIPIENT}
    result = check_parameters(sop, entered, {})
    assert (result.problems, result.warnings, result.failed_acceptance) == ([], [], [])
    typed = [p for p in sop.parameters if not p.derived and p.required]
    assert set(entered) >= {p.name for p in typed}
    # The derived model takes them as they are.
    parameters_model(sop.code).model_validate(entered)


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"typical": "95 min"}, "outside the limit 90 min"),
        ({"typical": "5 mL"}, "expected a duration"),
        ({"typical": "65 min", "accept_max": "60 min"}, "outside the limit 60 min"),
        ({"typical": "85 min", "warn_max": "80 min"}, "outside the limit 80 min"),
    ],
)
def test_a_typical_value_outside_the_sop_is_refused_when_built(
    extra: dict[str, str], why: str
) -> None:
    with pytest.raises(ValidationError, match=why):
        ParameterSpec(
            name="digestion_time",
            label="Digestion time",
            type=ParamType.QUANTITY,
            quantity_kind=Q.DURATION,
            min="30 min",
            max="90 min",
            **extra,
        )
    with pytest.raises(ValidationError, match="acceptance criterion"):
        ParameterSpec(
            name="ok", label="OK", type=ParamType.BOOLEAN, accept_equals=True, typical=False
        )
    with pytest.raises(ValidationError, match="not one of the choices"):
        ParameterSpec(name="c", label="C", type=ParamType.CHOICE, choices=["I"], typical="II")
    with pytest.raises(ValidationError, match="whole number"):
        ParameterSpec(name="n", label="N", type=ParamType.INTEGER, typical="3")


def test_typical_values_are_not_part_of_the_sop_version(engine: Engine) -> None:
    svf = next(s for s in SOPS if s.code == "SVF-SEP")
    # The digest every database holds since SVF-SEP v1 was first loaded.
    assert svf.digest() == "c24e428ff2c9df2870fcde86f9a77c9d4172831366201cee0ff43747051ac7d4"
    assert '"typical"' not in svf.canonical_json()
    better = svf.model_copy(
        update={
            "parameters": [
                p.model_copy(update={"typical": "60 min"}) if p.name == "digestion_time" else p
                for p in svf.parameters
            ]
        }
    )
    assert better.digest() == svf.digest()
    with write_session(engine) as s:
        assert sync_catalog(s, sops=[better]) == []  # a new example is not a new version
        row = sop_in_force(s, code="SVF-SEP")
        assert "typical" not in row.definition["parameters"][0]
        assert definition_of(row).digest() == row.sha256


def test_typical_parameters_take_overrides_of_known_names_only() -> None:
    assert typical_parameters("SVF-SEP", viability="58 %")["viability"] == "58 %"
    assert "time_since_harvest" not in typical_parameters("LIPO-INTAKE")  # computed
    with pytest.raises(InvalidInput, match="digestion_tme: not a parameter of SOP SVF-SEP"):
        typical_parameters("SVF-SEP", digestion_tme="45 min")


def test_the_parameter_model_is_typed_from_the_specs() -> None:
    model = parameters_model("LIPO-INTAKE")
    assert model.__name__ == "LipoIntakeParameters"
    assert "time_since_harvest" not in model.model_fields  # derived: never typed in
    ok = model.model_validate(typical_parameters("LIPO-INTAKE"))
    assert isinstance(dict(ok)["received_volume"], Quantity)
    with pytest.raises(ValidationError, match="expected a volume, got 3 kg"):
        model.model_validate(typical_parameters("LIPO-INTAKE", received_volume="3 kg"))
    with pytest.raises(ValidationError, match="'abdomen', 'flank' or 'thigh'"):
        model.model_validate(typical_parameters("LIPO-INTAKE", donor_site="scalp"))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({**typical_parameters("LIPO-INTAKE"), "time_since_harvest": "4 h"})
    with pytest.raises(ValidationError, match="at most 500 characters"):
        parameters_model("CM-HARVEST").model_validate(
            typical_parameters("CM-HARVEST", o2_log_ref="x" * 501)
        )
    dose = parameters_model("DOSE-ALLOCATE").model_validate(
        {**typical_parameters("DOSE-ALLOCATE"), **RECIPIENT}
    )
    assert dict(dose)["reconstitution_volume"] is None  # optional in the SOP
    schema = model.model_json_schema()["properties"]
    assert schema["received_volume"]["examples"] == ["120 mL"]
    assert schema["donor_site"]["enum"] == ["abdomen", "flank", "thigh"]
    assert schema["identity_verified"]["type"] == "boolean"
    assert (
        parameters_model("NANOFAT-PREP").model_json_schema()["properties"]["needle_gauge"]["type"]
        == "integer"
    )
