"""Unit-checked quantities: one pint registry, lab units, and a pydantic Quantity type.

Every quantity the LIMS stores or validates goes through :func:`parse_quantity`. A quantity
keeps the value and unit as entered (what the technician typed, for the record) and a
canonical Decimal magnitude in the canonical unit of its kind (mL, mg, cells, ...), which
is what conservation arithmetic uses. Decimal, never float: ten 0.1 mL aliquots of 1 mL
leave exactly 0 mL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from enum import StrEnum
from functools import lru_cache
from typing import Any

import pint

from lims.amounts import amount_text, plain_number, shown_number
from lims.errors import InvalidInput
from lims.plausible import ABSOLUTE_ZERO_C, BOUNDS, Bounds

# Built once, at import: building a registry takes ~100 ms and every parse needs it.
ureg: pint.UnitRegistry = pint.UnitRegistry(non_int_type=Decimal)
# Countable things get their own base dimensions so that "3 vials" can never be taken for
# "3 cells" or for a dimensionless number.
ureg.define("cell = [cell_count] = cells")
ureg.define("vial = [vial_count] = vials")
# Endotoxin units (USP <85>); pharmacopoeial IU are numerically equal, so IU aliases EU.
ureg.define("EU = [endotoxin] = endotoxin_unit = IU")
ureg.define("CFU = [colony_forming_unit] = cfu")
# Relative centrifugal force is a multiple of standard gravity: "1200 x g".
ureg.define("xg = standard_gravity = x_g")
ureg.define("mTorr = 1e-3 * torr = millitorr")
Q_ = ureg.Quantity

# Canonical magnitudes are stored with this many decimal places (Numeric(38, 12) on
# PostgreSQL); 1e-12 mL is far below anything a pipette can move.
CANONICAL_PLACES = 12
_QUANTUM = Decimal(1).scaleb(-CANONICAL_PLACES)
# Anything at or above this is a typing error, not a lab quantity (it also keeps every
# canonical value inside Numeric(38, 12)).
MAX_MAGNITUDE = Decimal("1e24")


class QuantityKind(StrEnum):
    """What a quantity measures; each kind has one canonical unit."""

    VOLUME = "volume"
    MASS = "mass"
    CELLS = "cells"
    VIALS = "vials"
    DURATION = "duration"
    TEMPERATURE = "temperature"
    PRESSURE = "pressure"
    RCF = "rcf"
    FRACTION = "fraction"
    LENGTH = "length"
    AREA = "area"
    CELL_DENSITY = "cell_density"
    CELL_CONCENTRATION = "cell_concentration"
    MASS_CONCENTRATION = "mass_concentration"
    ENDOTOXIN_CONCENTRATION = "endotoxin_concentration"
    COUNT = "count"


@dataclass(frozen=True)
class KindInfo:
    canonical_unit: str
    noun: str
    allow_negative: bool = False
    whole: bool = False

    @property
    def dimensionality(self) -> Any:
        return ureg.parse_units(self.canonical_unit).dimensionality

    @property
    def bounds(self) -> Bounds:
        return BOUNDS[_KIND_OF[self]]


KINDS: dict[QuantityKind, KindInfo] = {
    QuantityKind.VOLUME: KindInfo("mL", "a volume"),
    QuantityKind.MASS: KindInfo("mg", "a mass"),
    QuantityKind.CELLS: KindInfo("cell", "a cell count", whole=True),
    QuantityKind.VIALS: KindInfo("vial", "a number of vials", whole=True),
    QuantityKind.DURATION: KindInfo("min", "a duration"),
    QuantityKind.TEMPERATURE: KindInfo("degC", "a temperature", allow_negative=True),
    QuantityKind.PRESSURE: KindInfo("mTorr", "a pressure"),
    QuantityKind.RCF: KindInfo("xg", "a relative centrifugal force (x g)"),
    QuantityKind.FRACTION: KindInfo("percent", "a percentage"),
    QuantityKind.LENGTH: KindInfo("um", "a length"),
    QuantityKind.AREA: KindInfo("cm**2", "an area"),
    QuantityKind.CELL_DENSITY: KindInfo("cell/cm**2", "a seeding density (cells per area)"),
    QuantityKind.CELL_CONCENTRATION: KindInfo("cell/mL", "a cell concentration"),
    QuantityKind.MASS_CONCENTRATION: KindInfo("ug/mL", "a mass concentration"),
    QuantityKind.ENDOTOXIN_CONCENTRATION: KindInfo("EU/mL", "an endotoxin concentration"),
    QuantityKind.COUNT: KindInfo("dimensionless", "a plain number"),
}
_KIND_OF = {info: kind.value for kind, info in KINDS.items()}

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")
# Spellings people type at a bench, rewritten to what pint parses.
_UNIT_REWRITES = [
    (re.compile(r"^[x×]\s*g$", re.IGNORECASE), "xg"),
    (re.compile(r"[µμ]"), "u"),
    (re.compile(r"°\s*C|℃"), "degC"),
    (re.compile(r"°\s*F|℉"), "degF"),
    (re.compile(r"%"), "percent"),
    (re.compile(r"\^"), "**"),
]


def _normalise_unit(unit: str) -> str:
    text = unit.strip()
    for pattern, replacement in _UNIT_REWRITES:
        text = pattern.sub(replacement, text)
    return text


def _to_decimal(raw: Any, *, field: str | None) -> Decimal:
    if isinstance(raw, bool):
        raise InvalidInput(f"expected a number, got {raw!r}", field=field)
    if isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, float):
        # str() first: Decimal(0.1) would carry the binary float's noise into the record.
        value = Decimal(str(raw))
    elif isinstance(raw, str):
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            raise InvalidInput(f"expected a number, got {raw!r}", field=field) from None
    else:
        raise InvalidInput(f"expected a number, got {type(raw).__name__}", field=field)
    if not value.is_finite():
        raise InvalidInput(f"expected a finite number, got {raw!r}", field=field)
    # adjusted() needs no arithmetic, so 1e999999999 cannot overflow the Decimal context
    # before it is refused.
    if value and value.adjusted() >= MAX_MAGNITUDE.adjusted():
        raise InvalidInput(f"{raw} is too large to be real", field=field)
    return value


@dataclass(frozen=True, order=False)
class Quantity:
    """A checked quantity: value and unit as entered, plus canonical Decimal magnitude."""

    value: Decimal
    unit: str
    kind: QuantityKind
    canonical: Decimal

    @property
    def canonical_unit(self) -> str:
        return KINDS[self.kind].canonical_unit

    def to(self, unit: str) -> Decimal:
        """Return the magnitude in ``unit`` (Decimal)."""
        target = _normalise_unit(unit)
        pq = Q_(self.value, _normalise_unit(self.unit)).to(target)
        return Decimal(pq.magnitude)

    @classmethod
    def from_canonical(cls, kind: QuantityKind, canonical: Decimal) -> Quantity:
        """Build a quantity from a stored canonical magnitude."""
        unit = KINDS[kind].canonical_unit
        return cls(value=canonical, unit=unit, kind=kind, canonical=canonical)

    def as_json(self) -> dict[str, str]:
        """Value and unit as entered, the form the API returns and accepts."""
        return {"value": plain_number(self.value), "unit": self.unit}

    def __str__(self) -> str:
        return amount_text(self.value, self.unit, exact=True)

    def canonical_str(self) -> str:
        return amount_text(self.canonical, self.canonical_unit)

    def _check_same_kind(self, other: Quantity) -> None:
        if other.kind is not self.kind:
            raise InvalidInput(f"cannot compare {self.kind} with {other.kind}")

    def __lt__(self, other: Quantity) -> bool:
        self._check_same_kind(other)
        return self.canonical < other.canonical

    def __le__(self, other: Quantity) -> bool:
        self._check_same_kind(other)
        return self.canonical <= other.canonical

    def __gt__(self, other: Quantity) -> bool:
        self._check_same_kind(other)
        return self.canonical > other.canonical

    def __ge__(self, other: Quantity) -> bool:
        self._check_same_kind(other)
        return self.canonical >= other.canonical


def quantize(value: Decimal) -> Decimal:
    """Round a canonical magnitude to the stored precision."""
    # Enough digits for anything below MAX_MAGNITUDE with 12 places: the default 28 made
    # quantize raise InvalidOperation from 1e16 on.
    with localcontext() as context:
        context.prec = 40
        return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def _check_bounds(
    kind: QuantityKind, converted: Decimal, value: Decimal, unit: str, field: str | None
) -> None:
    """Refuse what is physically impossible or implausible for the kind, saying why."""
    info = KINDS[kind]
    bounds = info.bounds
    shown = amount_text(value, unit, exact=True)
    if kind is QuantityKind.TEMPERATURE and converted < ABSOLUTE_ZERO_C:
        raise InvalidInput(
            f"{shown} is below absolute zero ({plain_number(ABSOLUTE_ZERO_C)} degC)", field=field
        )
    if converted > bounds.high:
        raise InvalidInput(
            f"{shown} is above the largest plausible {info.noun.split(' ', 1)[1]} "
            f"{plain_number(bounds.high)} {info.canonical_unit} ({bounds.source})",
            field=field,
        )
    if converted < bounds.low:
        raise InvalidInput(
            f"{shown} is below the smallest plausible {info.noun.split(' ', 1)[1]} "
            f"{plain_number(bounds.low)} {info.canonical_unit} ({bounds.source})",
            field=field,
        )


def _read(raw: Any, info: KindInfo, *, field: str | None) -> tuple[Decimal, str, Any]:
    """The value, the unit as written and pint's units of ``raw`` (``info`` words the
    messages); InvalidInput for anything that is not a number with a known unit."""
    if isinstance(raw, Quantity):
        value, unit = raw.value, raw.unit
    elif isinstance(raw, dict):
        unknown = set(raw) - {"value", "unit"}
        if unknown or "value" not in raw:
            raise InvalidInput(
                'expected {"value": ..., "unit": ...}' + f", got keys {sorted(raw)}",
                field=field,
            )
        value = _to_decimal(raw["value"], field=field)
        unit = raw.get("unit") or ""
        if not isinstance(unit, str):
            raise InvalidInput(f"unit must be text, got {unit!r}", field=field)
    elif isinstance(raw, str):
        match = _NUMBER.match(raw)
        if not match:
            raise InvalidInput(
                f"expected a number and a unit such as '3.5 {info.canonical_unit}', got {raw!r}",
                field=field,
            )
        value = _to_decimal(match.group(1), field=field)
        unit = match.group(2)
    elif isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
        raise InvalidInput(
            f"a unit is required: write e.g. '{raw} {info.canonical_unit}'", field=field
        )
    else:
        raise InvalidInput(f"expected {info.noun} with a unit, got {raw!r}", field=field)

    unit = unit.strip()
    if not unit and info is not KINDS[QuantityKind.COUNT]:
        raise InvalidInput(
            f"a unit is required: write e.g. '{plain_number(value)} {info.canonical_unit}'",
            field=field,
        )
    try:
        units = ureg.parse_units(_normalise_unit(unit)) if unit else ureg.dimensionless
    except (pint.UndefinedUnitError, pint.DefinitionSyntaxError, AttributeError, TypeError):
        raise InvalidInput(f"unknown unit {unit!r}", field=field) from None
    except Exception:  # pint's parser raises assorted errors on garbage such as "mL)("
        raise InvalidInput(f"cannot read unit {unit!r}", field=field) from None
    return value, unit, units


def parse_quantity(raw: Any, kind: QuantityKind, *, field: str | None = None) -> Quantity:
    """Parse ``"3.5 mL"`` or ``{"value": "3.5", "unit": "mL"}`` as a quantity of ``kind``.

    Raises InvalidInput with a message a person can act on: a wrong dimension, an unknown
    unit, a missing unit, a non-number, NaN or infinity, a negative amount, a fraction of
    a countable thing, or an absurd size.
    """
    info = KINDS[kind]
    value, unit, units = _read(raw, info, field=field)
    if units.dimensionality != info.dimensionality:
        raise InvalidInput(
            f"expected {info.noun}, got {amount_text(value, unit, exact=True)}", field=field
        )
    if value < 0 and not info.allow_negative:
        raise InvalidInput(
            f"must not be negative, got {amount_text(value, unit, exact=True)}", field=field
        )
    if abs(value) >= MAX_MAGNITUDE:
        raise InvalidInput(
            f"{amount_text(value, unit, exact=True)} is too large to be real", field=field
        )
    try:
        converted = Decimal(Q_(value, units).to(info.canonical_unit).magnitude)
    except (pint.DimensionalityError, InvalidOperation) as exc:
        raise InvalidInput(f"cannot convert {value} {unit}: {exc}", field=field) from None
    if not converted.is_finite():
        raise InvalidInput(
            f"{amount_text(value, unit, exact=True)} is too large to be real", field=field
        )
    # Bounded before rounding: the kind's bounds keep every canonical value far inside
    # Numeric(38, 12) (and below MAX_MAGNITUDE).
    _check_bounds(kind, converted, value, unit, field)
    canonical = quantize(converted)
    if info.whole and canonical != canonical.to_integral_value():
        raise InvalidInput(
            f"{info.noun} is counted in whole {info.canonical_unit}s, got "
            f"{plain_number(canonical)} {info.canonical_unit}",
            field=field,
        )
    if converted != 0 and canonical == 0:
        raise InvalidInput(
            f"{shown_number(value)} {unit} is below the smallest recordable amount "
            f"({_QUANTUM} {info.canonical_unit})",
            field=field,
        )
    return Quantity(value=value, unit=unit, kind=kind, canonical=canonical)


def dimension_of(unit: str) -> QuantityKind:
    """Return the kind whose dimension ``unit`` has (first match), or raise InvalidInput."""
    try:
        dim = ureg.parse_units(_normalise_unit(unit)).dimensionality
    except Exception:
        raise InvalidInput(f"unknown unit {unit!r}") from None
    for kind, info in KINDS.items():
        if info.dimensionality == dim:
            return kind
    raise InvalidInput(f"unit {unit!r} is not one the lab records")


class WrongKind(InvalidInput):
    """A well-formed quantity of a kind other than the ones asked for; ``got`` is it as
    written ("3 cm")."""

    def __init__(self, message: str, *, got: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.got = got


def quantity_kind(
    raw: Any, *, among: Sequence[QuantityKind], field: str | None = None
) -> QuantityKind:
    """Which of ``among`` the quantity ``raw`` measures, by its unit's dimension ("4 mL":
    a volume); WrongKind when it is none of them, InvalidInput when it is not a quantity."""
    if not among:
        raise ValueError("quantity_kind needs at least one kind")
    if isinstance(raw, Quantity) and raw.kind in among:
        return raw.kind
    value, unit, units = _read(raw, KINDS[among[0]], field=field)
    for kind in among:
        if units.dimensionality == KINDS[kind].dimensionality:
            return kind
    got = amount_text(value, unit, exact=True)
    nouns = " or ".join(KINDS[k].noun for k in among)
    raise WrongKind(f"expected {nouns}, got {got}", got=got, field=field)


@lru_cache(maxsize=4096)
def constant_quantity(text: str, kind: QuantityKind) -> Quantity:
    """A quantity written in the SOP, specification or product data ("18 h", "2 degC"),
    parsed once: a Quantity is frozen, so every later call shares it. Those texts were
    parsed by pint again on every step, order and QC result (issue 12)."""
    return parse_quantity(text, kind)
