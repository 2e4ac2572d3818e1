"""Which released lot serves an order (first expiry, first out) and how many vials or
cells the order takes from it."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from sqlmodel import Session, col, select

from lims.db import utcnow
from lims.doses.spec import latest_use, spec_for
from lims.errors import RuleViolation
from lims.materials.models import Material
from lims.orders.models import DoseOrder, Product
from lims.qc.service import current_results
from lims.units import QuantityKind, parse_quantity

# Each AAPE vial is reconstituted in 4 mL (AAPE-LOT-SPEC v1 appearance/reconstitution test;
# a 4 mL dose is the basis of the endotoxin limit, domain.md B). Data, with its source.
AAPE_RECONSTITUTION_PER_VIAL = parse_quantity("4 mL", QuantityKind.VOLUME)


def vials_needed(session: Session, *, order: DoseOrder, lot: Material) -> Decimal:
    """How many vials (or cells) the order takes from ``lot``, rounded up to whole vials."""
    kind = QuantityKind(order.dose_kind)
    if kind in (QuantityKind.VIALS, QuantityKind.CELLS):
        return order.dose_canonical
    if kind is QuantityKind.VOLUME:
        per_vial = AAPE_RECONSTITUTION_PER_VIAL.canonical
    else:  # protein mass: from the lot's current protein result (ug/mL) x 4 mL per vial
        protein = next(
            (r for r in current_results(session, material=lot) if r.test_code == "protein"), None
        )
        if protein is None or protein.canonical is None or protein.canonical <= 0:
            raise RuleViolation(
                "the lot has no protein result, so a dose in µg cannot be converted to vials"
            )
        # canonical mass is mg; protein canonical is ug/mL
        per_vial = protein.canonical * AAPE_RECONSTITUTION_PER_VIAL.canonical / 1000
    return (order.dose_canonical / per_vial).to_integral_value(rounding=ROUND_CEILING)


def qualifying_lots(session: Session, *, order: DoseOrder) -> list[tuple[Material, Decimal]]:
    """Every released, unexpired lot of this patient holding enough for the order, with
    what the order takes from it, first expiry first (FEFO: the first is the suggestion)."""
    kind = "aape_lot" if order.product == Product.AAPE else "dp_culture"
    candidates = session.exec(
        select(Material)
        .where(
            col(Material.kind) == kind,
            col(Material.state) == "RELEASED",
            col(Material.patient_id) == order.patient_id,
        )
        .order_by(col(Material.expires_at), col(Material.id))
    ).all()
    now = utcnow()
    found = []
    for lot in candidates:
        # The planned use must leave the transit allowance before the lot expires.
        if lot.expires_at is not None and latest_use(order.product, lot.expires_at) < (
            order.planned_use_at
        ):
            continue
        if lot.expires_at is not None and lot.expires_at <= now:
            continue
        try:
            needed = vials_needed(session, order=order, lot=lot)
        except RuleViolation:
            continue
        if needed <= lot.remaining_canonical:
            found.append((lot, needed))
    return found


def find_lot(session: Session, *, order: DoseOrder) -> Material:
    """First-expiry-first-out: the released, unexpired lot for this patient with enough."""
    found = qualifying_lots(session, order=order)
    if found:
        return found[0][0]
    kind = "aape_lot" if order.product == Product.AAPE else "dp_culture"
    raise RuleViolation(
        f"no released, unexpired {kind} of this patient holds enough for order {order.number} "
        f"and expires at least {spec_for(order.product).transit} (transit) after its planned "
        f"use {order.planned_use_at:%Y-%m-%d %H:%M} UTC"
    )
