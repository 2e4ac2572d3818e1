"""What a signature is bound to: a canonical digest of the record's signed content.

Volatile facts (where a vial is, how many remain) are not part of a record: a lot's
release signature binds its batch record -- identity, processing steps, QC results and
deviations -- so a corrected result after release shows, while allocating a dose does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select

from lims.custody.ledger import jsonable
from lims.errors import InvalidInput, NotFound
from lims.materials.models import Material
from lims.materials.policy import processing_step_ids
from lims.materials.service import get_material
from lims.qc.deviations import deviations_of
from lims.qc.evidence import current_results
from lims.recalls.models import Recall, RecallItem
from lims.steps.corrections import current_parameters
from lims.steps.models import Step, StepInput, StepLoss

RecordReader = Callable[[Session, str], dict[str, Any]]
RECORDS: dict[str, RecordReader] = {}


def record_type(name: str) -> Callable[[RecordReader], RecordReader]:
    def register(fn: RecordReader) -> RecordReader:
        RECORDS[name] = fn
        return fn

    return register


def _identity(material: Material) -> dict[str, Any]:
    return {
        "material_id": material.material_id,
        "kind": material.kind,
        "patient_id": material.patient_id,
        "recipient_id": material.recipient_id,
        "use": material.use,
        "initial": {"value": material.entered_value, "unit": material.entered_unit},
        "created_in_step": material.created_in_step_id,
        "expires_at": material.expires_at,
        "passage": material.passage,
    }


def _step(session: Session, step: Step) -> dict[str, Any]:
    inputs = session.exec(
        select(StepInput).where(col(StepInput.step_id) == step.id).order_by(col(StepInput.id))
    ).all()
    losses = session.exec(
        select(StepLoss).where(col(StepLoss.step_id) == step.id).order_by(col(StepLoss.id))
    ).all()
    return {
        "id": step.id,
        "sop": step.sop_code,
        "sop_version_id": step.sop_version_id,
        "performed_by": step.performed_by_id,
        "performed_at": step.performed_at,
        "outcome": step.outcome,
        "parameters": current_parameters(session, step=step),
        "inputs": [
            {
                "material": i.material_id,
                "taken": i.taken_canonical,
                "measured": i.measured_canonical,
            }
            for i in inputs
        ],
        "losses": [
            {"material": x.material_id, "canonical": x.canonical, "reason": x.reason}
            for x in losses
        ],
    }


@record_type("material")
def material_record(session: Session, record_id: str) -> dict[str, Any]:
    return _identity(get_material(session, record_id))


@record_type("step")
def step_record(session: Session, record_id: str) -> dict[str, Any]:
    step = session.get(Step, int(record_id)) if record_id.isdigit() else None
    if step is None:
        raise InvalidInput(f"no step {record_id}")
    return _step(session, step)


@record_type("batch_record")
def batch_record(session: Session, record_id: str) -> dict[str, Any]:
    material = get_material(session, record_id)
    ids = processing_step_ids(material).subquery()
    steps = session.exec(
        select(Step).where(col(Step.id).in_(select(ids.c[0]))).order_by(col(Step.id))
    ).all()
    return {
        "material": _identity(material),
        "steps": [_step(session, s) for s in steps],
        "qc_results": [
            {
                "test": r.test_code,
                "value": r.value_text,
                "unit": r.unit,
                "passed": r.passed,
                "id": r.id,
                "method": r.method,
            }
            for r in current_results(session, material=material)
        ],
        "deviations": [
            {"number": d.number, "closed": d.closed_at is not None, "resolution": d.resolution}
            for d in deviations_of(session, material=material)
        ],
    }


@record_type("recall")
def recall_record(session: Session, record_id: str) -> dict[str, Any]:
    """A recall as signed on opening and closing: its lot, reason and every affected item
    as traced (none of which changes later)."""
    recall = session.exec(select(Recall).where(col(Recall.number) == record_id)).first()
    if recall is None:
        raise NotFound(f"no recall {record_id}")
    lot = session.get(Material, recall.lot_id)
    assert lot is not None
    items = session.exec(
        select(RecallItem, Material)
        .join(Material, col(Material.id) == col(RecallItem.material_id))
        .where(col(RecallItem.recall_id) == recall.id)
        .order_by(col(RecallItem.id))
    ).all()
    return {
        "number": recall.number,
        "lot": lot.material_id,
        "reason": recall.reason,
        "opened_by": recall.opened_by_id,
        "items": [
            {
                "material": m.material_id,
                "state_before": i.state_before,
                "action": i.action,
                "order": i.order_id,
                "patient": i.patient_id,
                "clinic": i.clinic_id,
            }
            for i, m in items
        ],
    }


def record_digest(session: Session, *, record_type: str, record_id: str) -> str:
    """SHA-256 of the record's canonical JSON (same rules as the custody ledger)."""
    reader = RECORDS.get(record_type)
    if reader is None:
        raise InvalidInput(f"unknown record type {record_type!r}", field="record_type")
    content = jsonable(reader(session, record_id))
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
