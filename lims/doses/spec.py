"""A dose specification per product, as data with its sources (like the SOPs).

For each product: the plausible dose range of one session in each measure it is ordered
in, the transit allowance the planned use must leave before the lot's expiry, the
transport and receipt temperature range, and the in-use limit after reconstitution. A
dose outside its range is refused with the likely unit slip named ("4 uL is below the
smallest dose 2 mL for AAPE; did you mean 4 mL?").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from lims.amounts import amount_text
from lims.errors import InvalidInput
from lims.orders.models import Product
from lims.settings import get_settings
from lims.units import KINDS, Quantity, QuantityKind, constant_quantity, parse_quantity


@dataclass(frozen=True)
class DoseRange:
    low: str
    high: str
    source: str

    def bounds(self, kind: QuantityKind) -> tuple[Quantity, Quantity]:
        return constant_quantity(self.low, kind), constant_quantity(self.high, kind)


@dataclass(frozen=True)
class DoseSpec:
    product: Product
    name: str
    doses: dict[QuantityKind, DoseRange]
    # The planned use must be at least this long before the lot expires (transit + margin).
    transit: str
    transit_source: str
    # Transport and receipt: every logger reading and the receipt temperature in range.
    transport_low: str
    transport_high: str
    transport_source: str
    # How long a reconstituted dose may wait before administration (None: not reconstituted).
    in_use_limit: str | None
    in_use_source: str


SPECS: dict[Product, DoseSpec] = {
    Product.AAPE: DoseSpec(
        product=Product.AAPE,
        name="AAPE",
        doses={
            QuantityKind.VIALS: DoseRange("1 vial", "10 vials", "[I]; 2-4 mL per session [25][26]"),
            QuantityKind.VOLUME: DoseRange(
                "2 mL", "20 mL", "2 mL ADSC-CM per half-scalp [25]; [I] margin"
            ),
            QuantityKind.MASS: DoseRange(
                "0.3 ug", "10 mg", "0.3-0.6 ug protein per injection site [24]; [I] margin"
            ),
        },
        transit="48 h",
        transit_source="[I] two days door to door, courier with logger (domain.md C)",
        transport_low="-90 degC",
        transport_high="8 degC",
        transport_source="lyophilised, stored at -80 degC; factors fell at 4 degC/room "
        "temperature [21]; [I] cold chain at or below 8 degC",
        in_use_limit="4 h",
        in_use_source="[I] reconstituted protein extract used the same session, no preservative",
    ),
    Product.DP_CELLS: DoseSpec(
        product=Product.DP_CELLS,
        name="DP cells",
        doses={
            QuantityKind.CELLS: DoseRange("3e5 cells", "7.5e6 cells", "DSC doses 3e5-7.5e6 [29]"),
        },
        transit="24 h",
        transit_source="[I] fresh cells, next-day delivery",
        transport_low="2 degC",
        transport_high="8 degC",
        transport_source="[I] fresh cell suspension at 2-8 degC",
        in_use_limit=None,
        in_use_source="cells are given as supplied, not reconstituted",
    ),
}

# Units a slip of the keyboard turns into each other, per kind: the same number in one of
# these that falls inside the range is named as the likely meaning.
_SLIP_UNITS = {
    QuantityKind.VOLUME: ("uL", "mL", "L"),
    QuantityKind.MASS: ("ng", "ug", "mg", "g"),
    QuantityKind.VIALS: (),
    QuantityKind.CELLS: (),
}


def spec_for(product: Product | str) -> DoseSpec:
    return SPECS[Product(product)]


def _slip(dose: Quantity, low: Quantity, high: Quantity) -> str | None:
    """The same number in another unit that lies in range, the nearest to what was typed."""
    guesses = []
    for unit in _SLIP_UNITS.get(dose.kind, ()):
        if unit == dose.unit:
            continue
        try:
            guess = parse_quantity({"value": str(dose.value), "unit": unit}, dose.kind)
        except InvalidInput:
            continue
        if low <= guess <= high:
            guesses.append(guess)
    if not guesses:
        return None
    guesses.sort(key=lambda q: q.canonical)
    return str(guesses[0] if dose < low else guesses[-1])


def check_dose(product: Product, dose: Quantity) -> Quantity:
    """``dose`` if it lies in the product's range for one session; else InvalidInput
    naming the range, its source and the likely unit slip."""
    spec = SPECS[product]
    dose_range = spec.doses[dose.kind]
    low, high = dose_range.bounds(dose.kind)
    if low <= dose <= high:
        return dose
    side = "below the smallest" if dose < low else "above the largest"
    limit = low if dose < low else high
    message = f"{dose} is {side} dose {limit} for {spec.name} ({dose_range.source})"
    guess = _slip(dose, low, high)
    if guess:
        message += f"; did you mean {guess}?"
    raise InvalidInput(message, field="dose")


def check_planned_use(planned_use_at: datetime, *, now: datetime) -> None:
    """The planned use is in the future and no further ahead than the lab plans."""
    if planned_use_at <= now:
        raise InvalidInput("planned use must be in the future", field="planned_use_at")
    days = get_settings().dose_max_days_ahead
    if planned_use_at > now + timedelta(days=days):
        raise InvalidInput(
            f"planned use {planned_use_at:%Y-%m-%d} is more than {days} days ahead; "
            "order a session when its date is known (LIMS_DOSE_MAX_DAYS_AHEAD)",
            field="planned_use_at",
        )


def transit_allowance(product: Product | str) -> timedelta:
    minutes = constant_quantity(spec_for(product).transit, QuantityKind.DURATION).canonical
    return timedelta(minutes=float(minutes))


def latest_use(product: Product | str, expires_at: datetime) -> datetime:
    """The latest planned use a lot expiring at ``expires_at`` can serve (expiry - transit)."""
    return expires_at - transit_allowance(product)


def in_use_limit(product: Product | str) -> timedelta | None:
    text = spec_for(product).in_use_limit
    if text is None:
        return None
    return timedelta(minutes=float(constant_quantity(text, QuantityKind.DURATION).canonical))


def transport_range(product: Product | str) -> tuple[Decimal, Decimal]:
    spec = spec_for(product)
    kind = QuantityKind.TEMPERATURE
    return (
        constant_quantity(spec.transport_low, kind).canonical,
        constant_quantity(spec.transport_high, kind).canonical,
    )


def temperature_text(value: Decimal) -> str:
    return amount_text(value, KINDS[QuantityKind.TEMPERATURE].canonical_unit)
