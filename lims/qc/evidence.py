"""What is on file for a material's release: its specification and its current QC results."""

from __future__ import annotations

from collections.abc import Collection

from sqlmodel import Session, col, select

from lims.errors import RuleViolation
from lims.materials.models import Material
from lims.qc.models import QcResult
from lims.qc.specs import QcTest, Specification, specification_for
from lims.sops.models import SopVersion
from lims.steps.models import Step


def specification_of(session: Session, *, material: Material) -> Specification:
    """The release specification for ``material`` (by kind and the SOP version that made
    it)."""
    code = version = None
    if material.created_in_step_id is not None:
        step = session.get(Step, material.created_in_step_id)
        sop = session.get(SopVersion, step.sop_version_id) if step else None
        if sop is not None:
            code, version = sop.code, sop.version
    spec = specification_for(material.kind, code, version) or specification_for(
        material.kind, None, None
    )
    if spec is None:
        raise RuleViolation(f"{material.kind} has no release specification; it is not released")
    return spec


def current_results(session: Session, *, material: Material) -> list[QcResult]:
    """The latest value of each test (corrections applied)."""
    rows = session.exec(
        select(QcResult).where(col(QcResult.material_id) == material.id).order_by(col(QcResult.id))
    ).all()
    replaced = {r.corrects_id for r in rows if r.corrects_id is not None}
    return sorted((r for r in rows if r.id not in replaced), key=lambda r: r.test_code)


def result_history(session: Session, *, material: Material) -> list[QcResult]:
    """Every result ever entered for ``material``, corrections included, oldest first."""
    return list(
        session.exec(
            select(QcResult)
            .where(col(QcResult.material_id) == material.id)
            .order_by(col(QcResult.id))
        ).all()
    )


def missing_tests(spec: Specification, have: Collection[str]) -> list[QcTest]:
    return [t for t in spec.tests if t.required and t.code not in have]


def missing_results(session: Session, *, material: Material) -> list[QcTest]:
    """The required tests of ``material``'s specification that have no result yet."""
    spec = specification_of(session, material=material)
    return missing_tests(spec, {r.test_code for r in current_results(session, material=material)})
