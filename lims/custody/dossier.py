"""A dossier: one item's custody events (and its lineage's), each with its canonical bytes
and an inclusion proof against one signed checkpoint, checkable offline
(python -m lims.custody.verify DOSSIER; layout in docs/custody.md)."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import or_
from sqlmodel import Session, col, select

from lims.custody.checkpoint import checkpoint_document, inclusion, ledger_tree, make_checkpoint
from lims.custody.keys import public_pem
from lims.custody.models import CustodyEvent, CustodyMaterial
from lims.errors import InvalidInput, NotFound
from lims.materials.lineage import lineage_graph
from lims.materials.models import Material
from lims.materials.service import get_material
from lims.orders.models import DoseOrder
from lims.parties.service import get_patient

DOSSIER_FORMAT = "lims-custody-dossier/1"
KINDS = ("dose", "order", "patient", "lot")


def _lineage_ids(session: Session, material: Material) -> set[str]:
    graph = lineage_graph(session, material=material)
    return {m.material_id for m in graph.nodes.values()}


def _subject(session: Session, kind: str, item: str) -> tuple[set[str], list[tuple[str, str]]]:
    """The materials and the (entity, entity_id) records whose events the dossier holds."""
    if kind in ("dose", "lot"):
        return _lineage_ids(session, get_material(session, item)), [("material", item)]
    if kind == "order":
        order = session.exec(select(DoseOrder).where(col(DoseOrder.number) == item)).first()
        if order is None:
            raise NotFound(f"no order {item}")
        materials: set[str] = set()
        if order.dose_material_id is not None:
            dose = session.get(Material, order.dose_material_id)
            assert dose is not None
            materials = _lineage_ids(session, dose)
        return materials, [("order", order.number)]
    if kind == "patient":
        patient = get_patient(session, coi_id=item)
        materials = set()
        for m in session.exec(select(Material).where(col(Material.patient_id) == patient.id)):
            materials |= _lineage_ids(session, m)
        numbers = session.exec(
            select(DoseOrder.number).where(col(DoseOrder.patient_id) == patient.id)
        ).all()
        return materials, [("patient", patient.coi_id), *(("order", n) for n in numbers)]
    raise InvalidInput(f"a dossier is for one of {', '.join(KINDS)}, not {kind!r}", field="kind")


def _event_seqs(session: Session, materials: set[str], records: list[tuple[str, str]]) -> list[int]:
    seqs: set[int] = set()
    if materials:
        seqs |= set(
            session.exec(
                select(CustodyMaterial.seq).where(col(CustodyMaterial.material_id).in_(materials))
            ).all()
        )
    if records:
        match = or_(
            *(
                (col(CustodyEvent.entity) == entity) & (col(CustodyEvent.entity_id) == entity_id)
                for entity, entity_id in records
            )
        )
        seqs |= set(session.exec(select(CustodyEvent.seq).where(match)).all())
    return sorted(seqs)


def build_dossier(
    session: Session, *, kind: str, item: str, key: Ed25519PrivateKey
) -> dict[str, Any]:
    """The dossier of one dose, order, patient (coi id) or lot, against a fresh checkpoint."""
    materials, records = _subject(session, kind, item)
    checkpoint = make_checkpoint(session, key=key)
    tree = ledger_tree(session, size=checkpoint.tree_size)
    seqs = [s for s in _event_seqs(session, materials, records) if s <= checkpoint.tree_size]
    return {
        "format": DOSSIER_FORMAT,
        "subject": {"kind": kind, "id": item},
        "materials": sorted(materials),
        "event_seqs": seqs,
        "checkpoint": checkpoint_document(session, checkpoint, public_key=public_pem(key)),
        "events": [inclusion(session, seq=s, checkpoint=checkpoint, tree=tree) for s in seqs],
    }
