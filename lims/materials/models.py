"""Material, lineage edges, storage positions and the id sequence."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import ExactDecimal, UTCDateTime, utcnow


class StorageLocation(SQLModel, table=True):
    """One position: site / freezer / rack / box / position. Holds at most one material."""

    __tablename__ = "storage_location"
    __table_args__ = (UniqueConstraint("site", "freezer", "rack", "box", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    site: str = Field(sa_type=String(64))
    freezer: str = Field(sa_type=String(64))
    rack: str = Field(sa_type=String(32))
    box: str = Field(sa_type=String(32))
    position: str = Field(sa_type=String(16))
    # Nominal storage temperature, e.g. -80 degC for lyophilised AAPE (domain.md A).
    temperature_c: Decimal | None = Field(default=None, sa_type=ExactDecimal)

    def label(self) -> str:
        return f"{self.site}/{self.freezer}/{self.rack}/{self.box}/{self.position}"


class Material(SQLModel, table=True):
    """Every physical thing the lab holds, from lipoaspirate to a dose.

    The quantity is kept three ways: as entered at creation (``entered_value`` and
    ``entered_unit``), the canonical initial amount, and what remains now (canonical).
    """

    __tablename__ = "material"
    __table_args__ = (
        # Holds on SQLite too: there the column is decimal text, compared as text with '0',
        # and only a negative number's text ("-...") sorts below it.
        CheckConstraint("remaining_canonical >= 0", name="remaining_not_negative"),
        Index("ix_material_kind_state", "kind", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    material_id: str = Field(sa_type=String(14), unique=True)
    kind: str = Field(sa_type=String(24))
    state: str = Field(sa_type=String(24))
    # The state to return to when an ON_HOLD is lifted.
    held_from_state: str | None = Field(default=None, sa_type=String(24))
    patient_id: int = Field(foreign_key="patient.id", index=True)
    # For doses of an allogeneic product: whom it is for (the donor is ``patient_id``).
    recipient_id: int | None = Field(default=None, foreign_key="patient.id", index=True)
    use: str = Field(sa_type=String(16))
    quantity_kind: str = Field(sa_type=String(24))
    entered_value: Decimal = Field(sa_type=ExactDecimal)
    entered_unit: str = Field(sa_type=String(32))
    initial_canonical: Decimal = Field(sa_type=ExactDecimal)
    remaining_canonical: Decimal = Field(sa_type=ExactDecimal)
    collected_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    container: str | None = Field(default=None, sa_type=String(64))
    location_id: int | None = Field(default=None, foreign_key="storage_location.id", unique=True)
    # Who holds it now: "lab:<facility>", "courier:<name/waybill>", "clinic:<code>".
    custodian: str | None = Field(default=None, sa_type=String(120))
    passage: int | None = None
    doublings_at_seeding: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    population_doublings: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    created_in_step_id: int | None = Field(default=None, foreign_key="step.id", index=True)
    created_by_id: int = Field(foreign_key="lims_user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LineageEdge(SQLModel, table=True):
    """Parent -> child, with the amount of the parent that went into the child's step."""

    __tablename__ = "lineage_edge"
    __table_args__ = (
        UniqueConstraint("parent_id", "child_id"),
        Index("ix_lineage_edge_child_parent", "child_id", "parent_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    parent_id: int = Field(foreign_key="material.id")
    child_id: int = Field(foreign_key="material.id")
    step_id: int | None = Field(default=None, foreign_key="step.id")


class IdSequence(SQLModel, table=True):
    """The next material id sequence number per facility and year."""

    __tablename__ = "id_sequence"

    facility: str = Field(sa_type=String(5), primary_key=True)
    year: int = Field(primary_key=True)
    next_value: int = 1
