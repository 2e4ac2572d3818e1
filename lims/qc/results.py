"""Entering and correcting QC results; an out-of-specification result opens a deviation
and puts the material on hold."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.custody.models import CustodyEvent
from lims.db import utcnow
from lims.errors import InvalidInput, RuleViolation
from lims.identity.codes import format_material_id
from lims.lifecycle import transition
from lims.materials.models import Material
from lims.materials.workflow import ON_HOLD, machine_for
from lims.parties.models import LAB_STAFF, Role, User
from lims.qc.deviations import open_deviation
from lims.qc.evidence import current_results, specification_of
from lims.qc.models import QcResult
from lims.qc.specs import QcTest, Specification, limit_text
from lims.units import parse_quantity

QC_ROLES = LAB_STAFF


def _name(material: Material) -> str:
    return f"{material.kind} {format_material_id(material.material_id)}"


def _parse_result(test: QcTest, value: object) -> tuple[str, str | None, object]:
    if test.quantity_kind is None:
        assert test.results is not None
        if value not in test.results:
            raise InvalidInput(
                f"{test.name}: enter one of {', '.join(test.results)}", field="value"
            )
        return str(value), None, None
    q = parse_quantity(value, test.quantity_kind, field="value")
    return format(q.value, "f"), q.unit, q


def _entry_event_seq(session: Session, result_id: int) -> int | None:
    return session.exec(
        select(CustodyEvent.seq)
        .where(
            col(CustodyEvent.entity) == "qc_result", col(CustodyEvent.entity_id) == str(result_id)
        )
        .order_by(col(CustodyEvent.seq))
        .limit(1)
    ).first()


def _store(
    session: Session,
    *,
    material: Material,
    spec: Specification,
    test: QcTest,
    value: object,
    actor: User,
    tested_at: datetime,
    method: str | None,
    corrects: QcResult | None,
    reason: str | None,
) -> QcResult:
    text, unit, quantity = _parse_result(test, value)
    passed, why = test.evaluate(value if test.quantity_kind is None else quantity)
    result = QcResult(
        material_id=material.id,  # type: ignore[arg-type]
        spec_code=spec.code,
        spec_version=spec.version,
        test_code=test.code,
        method=(method or test.method)[:200],
        value_text=text,
        unit=unit,
        canonical=getattr(quantity, "canonical", None),
        passed=passed,
        tested_at=tested_at,
        entered_by_id=actor.id,  # type: ignore[arg-type]
        corrects_id=corrects.id if corrects else None,
        reason=reason,
    )
    session.add(result)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="qc.result_corrected" if corrects else "qc.result_entered",
        entity="qc_result",
        entity_id=result.id or 0,
        materials=[material.material_id],
        old=(
            {"value": corrects.value_text, "unit": corrects.unit, "passed": corrects.passed}
            if corrects
            else None
        ),
        new={
            "test": test.code,
            "value": text,
            "unit": unit,
            "passed": passed,
            "specification": f"{spec.code} v{spec.version}",
            "limit": limit_text(test),
            "method": result.method,
            "tested_at": tested_at,
        },
        reason=reason,
        corrects_seq=_entry_event_seq(session, corrects.id or 0) if corrects else None,
    )
    if passed is False:
        _out_of_spec(session, material=material, result=result, test=test, why=why, actor=actor)
    return result


def _out_of_spec(
    session: Session, *, material: Material, result: QcResult, test: QcTest, why: str, actor: User
) -> None:
    """An out-of-spec result opens a deviation and puts the material on hold."""
    deviation = open_deviation(
        session,
        material=material,
        actor=actor,
        qc_result=result,
        description=f"Out of specification: {test.name} {why}",
    )
    machine = machine_for(material.kind)
    if material.state != ON_HOLD and ON_HOLD in machine.targets(material.state):
        transition(
            session,
            material=material,
            to_state=ON_HOLD,
            actor=actor,
            reason=f"{deviation.number}: out-of-specification {test.name}",
        )


def enter_result(
    session: Session,
    *,
    material: Material,
    test_code: str,
    value: object,
    actor: User,
    tested_at: datetime | None = None,
    method: str | None = None,
) -> QcResult:
    """Enter a QC result; it is judged against the specification at once."""
    if Role(actor.role) not in QC_ROLES:
        raise RuleViolation(f"a {actor.role} account cannot enter QC results")
    if material.state in machine_for(material.kind).terminal:
        raise RuleViolation(f"{_name(material)} is {material.state}; no QC results are taken")
    spec = specification_of(session, material=material)
    test = spec.test(test_code)
    if test is None:
        tests = ", ".join(t.code for t in spec.tests)
        raise InvalidInput(
            f"{spec.code} v{spec.version} has no test {test_code!r}; tests: {tests}",
            field="test_code",
        )
    now = utcnow()
    tested_at = tested_at or now
    if tested_at > now:
        raise InvalidInput("a test cannot have been done in the future", field="tested_at")
    if any(r.test_code == test_code for r in current_results(session, material=material)):
        raise RuleViolation(
            f"{_name(material)} already has a {test.name} result; correct it (with a "
            "reason) instead of entering another"
        )
    return _store(
        session,
        material=material,
        spec=spec,
        test=test,
        value=value,
        actor=actor,
        tested_at=tested_at,
        method=method,
        corrects=None,
        reason=None,
    )


def correct_result(
    session: Session,
    *,
    result: QcResult,
    value: object,
    reason: str,
    actor: User,
    tested_at: datetime | None = None,
) -> QcResult:
    """A corrected or retested value: a new result that references the one it replaces."""
    reason = ledger.require_reason(reason, "correcting a QC result")
    if Role(actor.role) not in QC_ROLES:
        raise RuleViolation(f"a {actor.role} account cannot correct QC results")
    if session.exec(select(QcResult).where(col(QcResult.corrects_id) == result.id)).first():
        raise RuleViolation("that result was already corrected; correct the latest one")
    material = session.get(Material, result.material_id)
    assert material is not None
    spec = specification_of(session, material=material)
    test = spec.test(result.test_code)
    assert test is not None
    return _store(
        session,
        material=material,
        spec=spec,
        test=test,
        value=value,
        actor=actor,
        tested_at=tested_at or utcnow(),
        method=None,
        corrects=result,
        reason=reason,
    )
