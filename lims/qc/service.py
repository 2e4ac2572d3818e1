"""QC results, deviations, donor eligibility, release and expiry."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.custody.models import CustodyEvent
from lims.db import utcnow
from lims.errors import InvalidInput, NotFound, RuleViolation
from lims.identity.codes import format_material_id
from lims.materials.kinds import Use
from lims.materials.models import Material
from lims.materials.service import transition
from lims.materials.workflow import ON_HOLD, RELEASED, TransitionContext, machine_for
from lims.parties.models import LAB_STAFF, Patient, Role, User
from lims.qc.models import Deviation, DonorEligibility, QcResult
from lims.qc.specs import QcTest, Specification, limit_text, specification_for
from lims.signatures.models import Meaning
from lims.signatures.service import sign, signatures_for
from lims.sops.models import SopVersion
from lims.steps.models import Step
from lims.units import parse_quantity

QC_ROLES = LAB_STAFF
SYSTEM_USERNAME = "system"


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


def open_deviation(
    session: Session,
    *,
    material: Material,
    description: str,
    actor: User,
    qc_result: QcResult | None = None,
) -> Deviation:
    """Record a deviation against a material; release waits until it is closed."""
    description = ledger.require_reason(description, "a deviation")
    deviation = Deviation(
        # Unique per transaction until the id gives the number (a shared placeholder would
        # make concurrent writers queue on the unique index).
        number=f"tmp-{secrets.token_hex(6)}",
        material_id=material.id,  # type: ignore[arg-type]
        description=description,
        opened_by_id=actor.id,  # type: ignore[arg-type]
        qc_result_id=qc_result.id if qc_result else None,
    )
    session.add(deviation)
    session.flush()
    deviation.number = f"DV-{deviation.id:06d}"
    session.add(deviation)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="deviation.opened",
        entity="deviation",
        entity_id=deviation.number,
        materials=[material.material_id],
        new={"description": description, "qc_result": qc_result.id if qc_result else None},
    )
    return deviation


def close_deviation(
    session: Session, *, deviation: Deviation, resolution: str, actor: User
) -> Deviation:
    """QA closes a deviation with its resolution."""
    if Role(actor.role) is not Role.QA:
        raise RuleViolation("only QA closes deviations")
    if deviation.closed_at is not None:
        raise RuleViolation(f"{deviation.number} is already closed")
    deviation.resolution = ledger.require_reason(resolution, "closing a deviation")
    deviation.closed_by_id = actor.id
    deviation.closed_at = utcnow()
    session.add(deviation)
    session.flush()
    material = session.get(Material, deviation.material_id)
    ledger.append(
        session,
        actor=actor,
        action="deviation.closed",
        entity="deviation",
        entity_id=deviation.number,
        materials=[material.material_id] if material else [],
        old={"closed": False},
        new={"closed": True},
        reason=deviation.resolution,
    )
    return deviation


def deviations_of(session: Session, *, material: Material) -> list[Deviation]:
    return list(
        session.exec(
            select(Deviation)
            .where(col(Deviation.material_id) == material.id)
            .order_by(col(Deviation.id))
        ).all()
    )


def get_deviation(session: Session, *, number: str) -> Deviation:
    row = session.exec(select(Deviation).where(col(Deviation.number) == number)).first()
    if row is None:
        raise NotFound(f"no deviation {number}")
    return row


def record_donor_eligibility(
    session: Session, *, donor: Patient, eligible: bool, basis: str, actor: User
) -> DonorEligibility:
    """A responsible person (QA) records whether a donor's tissue may be used for others."""
    if Role(actor.role) is not Role.QA:
        raise RuleViolation("donor eligibility is determined by QA")
    assert donor.id is not None and actor.id is not None
    row = DonorEligibility(
        patient_id=donor.id,
        eligible=eligible,
        basis=ledger.require_reason(basis, "an eligibility determination"),
        determined_by_id=actor.id,
    )
    session.add(row)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="donor.eligibility_determined",
        entity="patient",
        entity_id=donor.coi_id,
        new={"eligible": eligible, "basis": row.basis},
    )
    return row


def donor_is_eligible(session: Session, *, patient_id: int) -> bool:
    latest = session.exec(
        select(DonorEligibility)
        .where(col(DonorEligibility.patient_id) == patient_id)
        .order_by(col(DonorEligibility.id).desc())
    ).first()
    return bool(latest and latest.eligible)


def _missing(spec: Specification, have: Collection[str]) -> list[QcTest]:
    return [t for t in spec.tests if t.required and t.code not in have]


def missing_results(session: Session, *, material: Material) -> list[QcTest]:
    """The required tests of ``material``'s specification that have no result yet."""
    spec = specification_of(session, material=material)
    return _missing(spec, {r.test_code for r in current_results(session, material=material)})


def release_problems(material: Material, ctx: TransitionContext) -> list[str]:
    """Everything that stands between ``material`` and release (empty: it may go)."""
    session = ctx.session
    problems: list[str] = []
    try:
        spec = specification_of(session, material=material)
    except RuleViolation as exc:
        return [str(exc)]
    results = {r.test_code: r for r in current_results(session, material=material)}
    missing = [t.name for t in _missing(spec, results)]
    if missing:
        problems.append(f"results missing for {', '.join(missing)} ({spec.code} v{spec.version})")
    failing = [
        f"{spec.test(c).name} {r.value_text}{' ' + r.unit if r.unit else ''}"  # type: ignore[union-attr]
        for c, r in results.items()
        if r.passed is False
    ]
    if failing:
        problems.append(f"out of specification: {', '.join(failing)}")
    open_ones = [d.number for d in deviations_of(session, material=material) if d.closed_at is None]
    if open_ones:
        problems.append(f"open deviations {', '.join(open_ones)} must be closed first")
    if material.use == Use.ALLOGENEIC and not donor_is_eligible(
        session, patient_id=material.patient_id
    ):
        problems.append(
            "an allogeneic product needs a donor-eligibility determination "
            "(eligible) before release"
        )
    signed = [
        c
        for c in signatures_for(
            session,
            record_type="batch_record",
            record_id=material.material_id,
            meaning=Meaning.RELEASED,
        )
        if c.valid and c.signature.user_id == ctx.actor.id
    ]
    if not signed:
        problems.append(
            f"a QA signature with meaning 'released' by {ctx.actor.printed_name} "
            "on the current batch record is required"
        )
    return problems


def release(
    session: Session, *, material: Material, actor: User, password: str, comment: str | None = None
) -> Material:
    """QA signs the batch record with meaning 'released' and the material is released."""
    if Role(actor.role) is not Role.QA:
        raise RuleViolation("only QA releases")
    sign(
        session,
        user=actor,
        password=password,
        meaning=Meaning.RELEASED,
        record_type="batch_record",
        record_id=material.material_id,
        comment=comment,
    )
    return transition(session, material=material, to_state=RELEASED, actor=actor)


def system_user(session: Session) -> User:
    """The account automatic processes act as (it has no password and cannot sign)."""
    user = session.exec(select(User).where(col(User.username) == SYSTEM_USERNAME)).first()
    if user is None:
        user = User(
            username=SYSTEM_USERNAME, printed_name="LIMS automatic process", role=Role.ADMIN
        )
        session.add(user)
        session.flush()
        ledger.append(
            session,
            actor=None,
            action="user.created",
            entity="user",
            entity_id=SYSTEM_USERNAME,
            new={"role": Role.ADMIN, "system": True},
        )
    return user


def expire_due(session: Session, *, now: datetime | None = None) -> list[Material]:
    """Move every material past its expiry from a usable state to EXPIRED (for a schedule)."""
    now = now or utcnow()
    actor = system_user(session)
    candidates = session.exec(
        select(Material)
        .where(
            col(Material.expires_at) <= now,
            col(Material.state).in_(["RELEASED", "ALLOCATED", "LABELED"]),
        )
        .order_by(col(Material.id))
        .with_for_update()
    ).all()
    expired = []
    for material in candidates:
        if "EXPIRED" in machine_for(material.kind).targets(material.state):
            transition(
                session,
                material=material,
                to_state="EXPIRED",
                actor=actor,
                reason=f"expiry {material.expires_at:%Y-%m-%d %H:%M} UTC passed",
            )
            expired.append(material)
    return expired


# Sterility takes 14 days (USP <71>) [34]; a week more to report gives 21 days from the
# start of QC testing [I]. A lab sets its own turnaround from its validated methods.
QC_TURNAROUND = timedelta(days=21)
QC_TESTING = "QC_TESTING"


@dataclass(frozen=True)
class OverdueQc:
    material_id: str
    kind: str
    testing_since: datetime
    missing: list[str]


def qc_testing_since(session: Session, *, material: Material) -> datetime | None:
    """When ``material`` last entered QC testing (from the custody ledger)."""
    since = None
    for event in ledger.history(session, material_id=material.material_id):
        if (
            event.action == "material.state_changed"
            and (event.new or {}).get("state") == QC_TESTING
        ):
            since = event.occurred_at
    return since


def overdue_qc(
    session: Session, *, now: datetime | None = None, turnaround: timedelta = QC_TURNAROUND
) -> list[OverdueQc]:
    """Materials in QC testing for longer than ``turnaround`` whose required results are
    not all in (for a schedule to flag; nothing is changed)."""
    now = now or utcnow()
    overdue = []
    for material in session.exec(
        select(Material).where(col(Material.state) == QC_TESTING).order_by(col(Material.id))
    ).all():
        since = qc_testing_since(session, material=material)
        if since is None or now - since < turnaround:
            continue
        missing = missing_results(session, material=material)
        if missing:
            overdue.append(
                OverdueQc(
                    material_id=material.material_id,
                    kind=material.kind,
                    testing_since=since,
                    missing=[t.name for t in missing],
                )
            )
    return overdue
