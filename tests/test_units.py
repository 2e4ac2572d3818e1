from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from lims.errors import InvalidInput
from lims.quantity_fields import CellCount, Temperature, Volume
from lims.units import (
    KINDS,
    Quantity,
    QuantityKind,
    WrongKind,
    dimension_of,
    parse_quantity,
    quantity_kind,
)


@pytest.mark.parametrize(
    ("raw", "kind", "canonical"),
    [
        ("3.5 mL", QuantityKind.VOLUME, Decimal("3.5")),
        ({"value": "3.5", "unit": "mL"}, QuantityKind.VOLUME, Decimal("3.5")),
        ({"value": 3.5, "unit": "mL"}, QuantityKind.VOLUME, Decimal("3.5")),
        ("250 µL", QuantityKind.VOLUME, Decimal("0.25")),
        ("250 uL", QuantityKind.VOLUME, Decimal("0.25")),
        ("0.1 L", QuantityKind.VOLUME, Decimal("100")),
        ("2 g", QuantityKind.MASS, Decimal("2000")),
        ("1.9e7 cells", QuantityKind.CELLS, Decimal("19000000")),
        ("28 vials", QuantityKind.VIALS, Decimal("28")),
        ("1 vial", QuantityKind.VIALS, Decimal("1")),
        ("1200 x g", QuantityKind.RCF, Decimal("1200")),
        ("1200 ×g", QuantityKind.RCF, Decimal("1200")),
        ("2 %", QuantityKind.FRACTION, Decimal("2")),
        ("37 °C", QuantityKind.TEMPERATURE, Decimal("37")),
        ("-80 degC", QuantityKind.TEMPERATURE, Decimal("-80")),
        ("98.6 degF", QuantityKind.TEMPERATURE, Decimal("37")),
        ("1.5 h", QuantityKind.DURATION, Decimal("90")),
        ("100 mTorr", QuantityKind.PRESSURE, Decimal("100")),
        ("0.5 EU/mL", QuantityKind.ENDOTOXIN_CONCENTRATION, Decimal("0.5")),
        ("2000 cells/cm^2", QuantityKind.CELL_DENSITY, Decimal("2000")),
        ("0.22 um", QuantityKind.LENGTH, Decimal("0.22")),
    ],
)
def test_parses_lab_quantities_to_canonical(
    raw: object, kind: QuantityKind, canonical: Decimal
) -> None:
    q = parse_quantity(raw, kind)
    assert q.canonical == canonical
    assert q.kind is kind


def test_keeps_value_and_unit_as_entered() -> None:
    q = parse_quantity("250 µL", QuantityKind.VOLUME)
    assert (q.value, q.unit, q.canonical_str()) == (Decimal("250"), "µL", "0.25 mL")
    assert str(q) == "250 µL"
    assert q.as_json() == {"value": "250", "unit": "µL"}


@pytest.mark.parametrize(
    ("raw", "kind", "message"),
    [
        ("3 kg", QuantityKind.VOLUME, "expected a volume, got 3 kg"),
        ("3 vials", QuantityKind.CELLS, "expected a cell count, got 3 vials"),
        ("3 cells", QuantityKind.VIALS, "expected a number of vials, got 3 cells"),
        ("45 mL", QuantityKind.DURATION, "expected a duration, got 45 mL"),
        ("3", QuantityKind.VOLUME, "a unit is required"),
        (3, QuantityKind.VOLUME, "a unit is required"),
        ("three mL", QuantityKind.VOLUME, "expected a number and a unit"),
        ({"value": "abc", "unit": "mL"}, QuantityKind.VOLUME, "expected a number"),
        ({"value": "NaN", "unit": "mL"}, QuantityKind.VOLUME, "finite number"),
        ({"value": "Infinity", "unit": "mL"}, QuantityKind.VOLUME, "finite number"),
        ({"value": float("nan"), "unit": "mL"}, QuantityKind.VOLUME, "finite number"),
        ({"value": True, "unit": "mL"}, QuantityKind.VOLUME, "expected a number"),
        ({"value": "1"}, QuantityKind.VOLUME, "a unit is required"),
        ({"unit": "mL"}, QuantityKind.VOLUME, "expected {"),
        ({"value": "1", "unit": "mL", "x": 1}, QuantityKind.VOLUME, "expected {"),
        ("-1 mL", QuantityKind.VOLUME, "must not be negative, got -1 mL"),
        ("3 mLs", QuantityKind.VOLUME, "unknown unit 'mLs'"),
        ("3 mL)(", QuantityKind.VOLUME, "unit"),
        ("1.5 vials", QuantityKind.VIALS, "whole"),
        ("0.5 cells", QuantityKind.CELLS, "whole"),
        ("1e30 mL", QuantityKind.VOLUME, "too large"),
        ("1e-20 mL", QuantityKind.VOLUME, "smallest recordable"),
        (None, QuantityKind.VOLUME, "with a unit"),
        ([1, "mL"], QuantityKind.VOLUME, "with a unit"),
    ],
)
def test_refuses_bad_quantities_with_a_clear_message(
    raw: object, kind: QuantityKind, message: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_quantity(raw, kind, field="volume")
    assert message in err.value.message
    assert err.value.field == "volume"


def test_negative_temperature_is_allowed_but_not_negative_volume() -> None:
    assert parse_quantity("-196 degC", QuantityKind.TEMPERATURE).canonical == Decimal("-196")
    with pytest.raises(InvalidInput):
        parse_quantity("-0.001 mL", QuantityKind.VOLUME)


def test_ten_aliquots_of_a_tenth_leave_exactly_zero() -> None:
    whole = parse_quantity("1 mL", QuantityKind.VOLUME).canonical
    tenth = parse_quantity("0.1 mL", QuantityKind.VOLUME).canonical
    left = whole
    for _ in range(10):
        left -= tenth
    assert left == 0
    # The same with floats does not hold, which is why quantities are never floats.
    assert sum([0.1] * 10) != 1.0


def test_conversion_is_exact_for_awkward_units() -> None:
    q = parse_quantity("1 fluid_ounce", QuantityKind.VOLUME)
    assert q.canonical == Decimal("29.573529562500")
    assert q.to("L") == Decimal("0.0295735295625")


def test_comparison_is_by_canonical_value_and_kind_checked() -> None:
    assert parse_quantity("1 L", QuantityKind.VOLUME) > parse_quantity(
        "999 mL", QuantityKind.VOLUME
    )
    with pytest.raises(InvalidInput):
        _ = parse_quantity("1 L", QuantityKind.VOLUME) < parse_quantity("1 g", QuantityKind.MASS)


def test_dimension_of_units() -> None:
    assert dimension_of("µL") is QuantityKind.VOLUME
    assert dimension_of("vials") is QuantityKind.VIALS
    with pytest.raises(InvalidInput):
        dimension_of("furlongs/fortnight")


class Form(BaseModel):
    volume: Volume
    cells: CellCount
    temperature: Temperature


def test_pydantic_field_accepts_both_forms_and_serialises_as_entered() -> None:
    form = Form.model_validate(
        {"volume": {"value": "3.5", "unit": "mL"}, "cells": "2e6 cells", "temperature": "4 degC"}
    )
    assert isinstance(form.volume, Quantity)
    assert form.volume.canonical == Decimal("3.5")
    assert form.model_dump(mode="json")["volume"] == {"value": "3.5", "unit": "mL"}
    assert form.model_dump(mode="json")["cells"] == {"value": "2000000", "unit": "cells"}


def test_pydantic_field_reports_the_domain_message_on_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        Form.model_validate({"volume": "3 kg", "cells": "2e6 cells", "temperature": "4 degC"})
    (error,) = err.value.errors()
    assert error["loc"] == ("volume",)
    assert error["msg"] == "expected a volume, got 3 kg"


def test_pydantic_json_schema_documents_both_forms() -> None:
    schema = Form.model_json_schema()["properties"]["volume"]
    assert "anyOf" in schema
    assert "a volume" in schema["description"].lower()


# Drawn up to the largest plausible volume (10 L; lims.plausible): beyond it is refused.
MAX_ML = KINDS[QuantityKind.VOLUME].bounds.high


@given(st.decimals(min_value=0, max_value=MAX_ML, places=6, allow_nan=False))
def test_round_trip_through_text_is_exact(value: Decimal) -> None:
    q = parse_quantity(f"{value} mL", QuantityKind.VOLUME)
    assert q.canonical == value
    again = parse_quantity(q.as_json(), QuantityKind.VOLUME)
    assert again.canonical == q.canonical


@given(st.decimals(min_value=0, max_value=MAX_ML / 1000, places=3, allow_nan=False))
def test_litres_and_millilitres_agree(value: Decimal) -> None:
    litres = parse_quantity(f"{value} L", QuantityKind.VOLUME)
    assert litres.canonical == value * 1000


# --- plausible bounds per kind (lims.plausible), checked before any rounding --------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("1e16 mL", QuantityKind.VOLUME),
        ("99999999999999999 mL", QuantityKind.VOLUME),
        ("1e20 L", QuantityKind.VOLUME),
        ({"value": "1e20", "unit": "L"}, QuantityKind.VOLUME),
        ("4 parsec**3", QuantityKind.VOLUME),
        ("1e17 K", QuantityKind.TEMPERATURE),
        ("9.99e23 mg", QuantityKind.MASS),
        ("1e18 cells", QuantityKind.CELLS),
        ("1e18 vials", QuantityKind.VIALS),
        ("1e18 min", QuantityKind.DURATION),
        ("1e18 mTorr", QuantityKind.PRESSURE),
        ("1e18 xg", QuantityKind.RCF),
        ("1e18 %", QuantityKind.FRACTION),
        ("1e18 um", QuantityKind.LENGTH),
        ("1e18 cm**2", QuantityKind.AREA),
        ("1e18 cell/cm**2", QuantityKind.CELL_DENSITY),
        ("1e18 cell/mL", QuantityKind.CELL_CONCENTRATION),
        ("1e18 ug/mL", QuantityKind.MASS_CONCENTRATION),
        ("1e18 EU/mL", QuantityKind.ENDOTOXIN_CONCENTRATION),
        ("1e18", QuantityKind.COUNT),
    ],
)
def test_canonical_values_from_1e16_to_1e24_are_refused_not_crashed(
    raw: object, kind: QuantityKind
) -> None:
    # These once raised decimal.InvalidOperation in rounding (a 500 over HTTP).
    with pytest.raises(InvalidInput, match=r"too large|above the largest plausible") as err:
        parse_quantity(raw, kind, field="q")
    assert err.value.field == "q"


@pytest.mark.parametrize(
    ("raw", "kind", "message"),
    [
        ("1 m**3", QuantityKind.VOLUME, "above the largest plausible volume 10000 mL"),
        ("1 km**3", QuantityKind.VOLUME, "above the largest plausible volume 10000 mL"),
        ("10.001 L", QuantityKind.VOLUME, "above the largest plausible volume"),
        ("-300 degC", QuantityKind.TEMPERATURE, "below absolute zero (-273.15 degC)"),
        ("-500 K", QuantityKind.TEMPERATURE, "below absolute zero"),
        ("-460 degF", QuantityKind.TEMPERATURE, "below absolute zero"),
        ("-273.16 degC", QuantityKind.TEMPERATURE, "below absolute zero"),
        ("1e17 K", QuantityKind.TEMPERATURE, "above the largest plausible temperature 200 degC"),
        ("101 %", QuantityKind.FRACTION, "above the largest plausible percentage 100"),
        ("2 m", QuantityKind.LENGTH, "above the largest plausible length"),
        ("11 atm", QuantityKind.PRESSURE, "above the largest plausible pressure"),
    ],
)
def test_impossible_values_are_refused_with_the_reason(
    raw: str, kind: QuantityKind, message: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_quantity(raw, kind, field="q")
    assert message in err.value.message
    # The refusal names where the bound comes from.
    assert KINDS[kind].bounds.source in err.value.message or "absolute zero" in message


@pytest.mark.parametrize(
    ("raw", "kind", "canonical"),
    [
        ("0 K", QuantityKind.TEMPERATURE, Decimal("-273.15")),
        ("-196 degC", QuantityKind.TEMPERATURE, Decimal("-196")),
        ("10 L", QuantityKind.VOLUME, Decimal("10000")),
        ("2000 mL", QuantityKind.VOLUME, Decimal("2000")),
        ("100 %", QuantityKind.FRACTION, Decimal("100")),
        ("1e11 cells", QuantityKind.CELLS, Decimal("1e11")),
        ("13000 x g", QuantityKind.RCF, Decimal("13000")),
        ("760 torr", QuantityKind.PRESSURE, Decimal("760000")),
        ("30 days", QuantityKind.DURATION, Decimal("43200")),
    ],
)
def test_values_at_or_inside_the_bounds_are_kept(
    raw: str, kind: QuantityKind, canonical: Decimal
) -> None:
    assert parse_quantity(raw, kind).canonical == canonical


def test_every_kind_has_bounds_with_a_source_inside_the_stored_precision() -> None:
    for kind, info in KINDS.items():
        bounds = info.bounds
        assert bounds.source.strip(), kind
        assert bounds.low < bounds.high, kind
        # 12 decimal places within the default 28-digit context: rounding cannot fail.
        assert abs(bounds.high) < Decimal("1e15") and abs(bounds.low) < Decimal("1e15"), kind
        parse_quantity(f"{bounds.high} {info.canonical_unit}", kind)
        parse_quantity(f"{bounds.low} {info.canonical_unit}", kind)


@given(
    st.decimals(min_value=Decimal("-1e23"), max_value=Decimal("1e23"), allow_nan=False),
    st.sampled_from(["mL", "L", "m**3", "uL", "K", "degC", "degF", "mg", "kg", "cells", "%"]),
    st.sampled_from(list(QuantityKind)),
)
def test_any_number_and_unit_is_parsed_or_refused_never_crashes(
    value: Decimal, unit: str, kind: QuantityKind
) -> None:
    try:
        q = parse_quantity(f"{value} {unit}", kind)
    except InvalidInput:
        return
    bounds = KINDS[kind].bounds
    assert bounds.low <= q.canonical <= bounds.high


def test_the_kind_of_a_quantity_comes_from_its_unit() -> None:
    among = [QuantityKind.VIALS, QuantityKind.VOLUME, QuantityKind.MASS]
    assert quantity_kind("4 mL", among=among) is QuantityKind.VOLUME
    assert quantity_kind({"value": "2", "unit": "vials"}, among=among) is QuantityKind.VIALS
    assert quantity_kind("500 µg", among=among) is QuantityKind.MASS
    assert quantity_kind(parse_quantity("1 L", QuantityKind.VOLUME), among=among) is (
        QuantityKind.VOLUME
    )
    with pytest.raises(WrongKind, match="expected a number of vials or a volume or a mass") as e:
        quantity_kind("3 cm", among=among, field="dose")
    assert (e.value.got, e.value.field, e.value.http_status) == ("3 cm", "dose", 422)
    # Not a quantity at all: the reading error itself, never a kind mismatch.
    for raw, message in [("3 blorps", "unknown unit"), ("many", "expected a number"), (3, "unit")]:
        with pytest.raises(InvalidInput, match=message) as not_kind:
            quantity_kind(raw, among=among)
        assert not isinstance(not_kind.value, WrongKind)


def test_a_refusal_of_a_tiny_amount_is_a_short_message() -> None:
    with pytest.raises(InvalidInput, match="below the smallest recordable amount") as err:
        parse_quantity("5e-999999 mL", QuantityKind.VOLUME, field="q")
    assert len(err.value.message) < 200 and "5E-999999 mL" in err.value.message


def test_constant_quantities_are_parsed_once_and_refused_like_any_other() -> None:
    from lims.units import constant_quantity

    first = constant_quantity("18 h", QuantityKind.DURATION)
    assert first is constant_quantity("18 h", QuantityKind.DURATION)  # shared, frozen
    assert first == parse_quantity("18 h", QuantityKind.DURATION)
    assert constant_quantity("18 h", QuantityKind.DURATION).canonical == 1080
    for _ in range(2):  # a refusal is not cached as a value
        with pytest.raises(InvalidInput, match="expected"):
            constant_quantity("18 mL", QuantityKind.DURATION)
