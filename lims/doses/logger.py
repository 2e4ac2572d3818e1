"""The shipment's temperature-logger file, kept as uploaded at receipt.

The file is stored byte for byte with its SHA-256, which the receipt's custody event
carries: what QA reads when deciding a quarantine, and what an auditor downloads, is
provably what the clinic sent. The readings are parsed again from it (lims.doses.coldchain),
so the chart on the QA and portal pages and the assessment cannot disagree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from lims.doses.coldchain import read_logger_csv
from lims.doses.models import DoseLoggerFile
from lims.doses.spec import transport_range
from lims.errors import NotFound
from lims.identity.codes import format_material_id
from lims.materials.models import Material
from lims.parties.models import User


@dataclass(frozen=True)
class LoggerTrace:
    """A kept logger file's readings against the product's transport range."""

    readings: list[tuple[datetime, Decimal]]
    low: Decimal
    high: Decimal
    sha256: str

    @property
    def outside(self) -> int:
        return sum(1 for _, t in self.readings if not self.low <= t <= self.high)


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def keep_logger_file(
    session: Session, *, dose: Material, text: str, readings: int, actor: User
) -> DoseLoggerFile:
    """Store the uploaded logger file for ``dose`` (once: a dose is received once)."""
    row = DoseLoggerFile(
        dose_id=dose.id,  # type: ignore[arg-type]
        sha256=sha256_of(text),
        content=text,
        readings=readings,
        uploaded_by_id=actor.id,  # type: ignore[arg-type]
    )
    session.add(row)
    session.flush()
    return row


def logger_file(session: Session, *, dose: Material) -> DoseLoggerFile:
    """The dose's kept logger file; NotFound when the receipt came without one."""
    row = session.exec(select(DoseLoggerFile).where(col(DoseLoggerFile.dose_id) == dose.id)).first()
    if row is None:
        raise NotFound(
            f"no temperature-logger file was uploaded with dose "
            f"{format_material_id(dose.material_id)}",
            field="material_id",
        )
    return row


def logger_sha256(session: Session, *, dose: Material) -> str | None:
    """The kept logger file's SHA-256 (hex), None without one."""
    return session.exec(
        select(DoseLoggerFile.sha256).where(col(DoseLoggerFile.dose_id) == dose.id)
    ).first()


def logger_trace(session: Session, *, dose: Material, product: str) -> LoggerTrace | None:
    """The kept file's readings and the product's range, for a chart (None: no file)."""
    row = session.exec(select(DoseLoggerFile).where(col(DoseLoggerFile.dose_id) == dose.id)).first()
    if row is None:
        return None
    low, high = transport_range(product)
    return LoggerTrace(read_logger_csv(row.content), low, high, row.sha256)
