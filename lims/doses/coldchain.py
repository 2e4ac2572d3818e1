"""The cold chain at receipt: the shipment's logger readings and the receipt temperature,
checked against the product's transport range (lims.doses.spec).

A logger file is CSV: one reading a line, ``time,temperature`` (°C), an optional header.
An excursion puts the dose in quarantine at the clinic with a deviation for QA
(lims.doses.clinic), never silently accepted.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from lims.doses.spec import spec_for, temperature_text, transport_range
from lims.errors import InvalidInput
from lims.units import QuantityKind, parse_quantity

MAX_LOGGER_BYTES = 2_000_000  # a logger reading every minute for a month is ~1.5 MB
MAX_LOGGER_LINES = 50_000


@dataclass
class ColdChain:
    readings: int = 0
    low: Decimal | None = None
    high: Decimal | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def excursion(self) -> str | None:
        return "; ".join(self.problems) if self.problems else None


def read_logger_csv(text: str) -> list[tuple[datetime, Decimal]]:
    """The readings of a logger file; InvalidInput naming the first bad line."""
    if len(text.encode()) > MAX_LOGGER_BYTES:
        raise InvalidInput("the logger file is larger than 2 MB", field="logger_csv")
    readings: list[tuple[datetime, Decimal]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and not row[0].strip()[:1].isdigit():
            continue  # a header
        if len(row) != 2:
            raise InvalidInput(
                f"logger line {number}: expected 'time,temperature', got {len(row)} fields",
                field="logger_csv",
            )
        try:
            at = datetime.fromisoformat(row[0].strip())
        except ValueError:
            raise InvalidInput(
                f"logger line {number}: {row[0].strip()[:40]!r} is not an ISO time",
                field="logger_csv",
            ) from None
        if at.tzinfo is None:
            raise InvalidInput(
                f"logger line {number}: the time needs its zone (e.g. +09:00)", field="logger_csv"
            )
        raw = row[1].strip()
        reading = parse_quantity(
            raw if any(c.isalpha() for c in raw) else f"{raw} degC",
            QuantityKind.TEMPERATURE,
            field="logger_csv",
        )
        readings.append((at, reading.canonical))
        if len(readings) > MAX_LOGGER_LINES:
            raise InvalidInput(
                f"the logger file has more than {MAX_LOGGER_LINES} readings", field="logger_csv"
            )
    return readings


def assess(
    product: str, *, receipt_temperature: Decimal, readings: list[tuple[datetime, Decimal]]
) -> ColdChain:
    """Every reading and the receipt temperature against the product's transport range."""
    low, high = transport_range(product)
    spec = spec_for(product)
    result = ColdChain(readings=len(readings))
    values = [t for _, t in readings]
    if values:
        result.low, result.high = min(values), max(values)
    span = f"{temperature_text(low)} to {temperature_text(high)} for {spec.name}"
    outside = [(at, t) for at, t in readings if not low <= t <= high]
    if outside:
        at, worst = max(outside, key=lambda r: abs(r[1] - (low + high) / 2))
        result.problems.append(
            f"the logger read {temperature_text(worst)} at {at:%Y-%m-%d %H:%M %z} "
            f"({len(outside)} of {len(readings)} readings outside {span})"
        )
    if not low <= receipt_temperature <= high:
        result.problems.append(
            f"received at {temperature_text(receipt_temperature)}, outside {span}"
        )
    return result
