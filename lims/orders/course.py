"""A patient's course of treatment: each session ordered once, sessions spaced as the
published schedules space them.

A session number is unique in a patient's course of a product unless its earlier order
was cancelled. A session planned outside the schedule's interval from its neighbours is
refused unless the prescriber's reason is given (kept on the order as interval_reason);
such an order carries its warning (``course_warning``) wherever it is shown.

Called by lims.orders.service.place, so the API, the portal, FHIR and the flows all keep it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from lims.errors import RuleViolation
from lims.orders.models import DoseOrder, OrderStatus, Product
from lims.orders.schemas import OrderDetails
from lims.parties.models import Patient


@dataclass(frozen=True)
class Schedule:
    min_weeks: int
    max_weeks: int
    source: str


SCHEDULES = {
    Product.AAPE: Schedule(
        3, 5, "4-6 sessions every 3-5 weeks [2]; 6 sessions every 3-5 weeks [3]"
    ),
    Product.DP_CELLS: Schedule(5, 8, "3 sessions 45 days apart [7]; [I] margin"),
}


def _gap_problem(
    earlier: DoseOrder | OrderDetails,
    later: DoseOrder | OrderDetails,
    schedule: Schedule,
    product: str,
) -> str | None:
    steps = later.session_number - earlier.session_number
    gap = later.planned_use_at - earlier.planned_use_at
    low, high = (
        timedelta(weeks=schedule.min_weeks * steps),
        timedelta(weeks=schedule.max_weeks * steps),
    )
    if low <= gap <= high:
        return None
    days = gap.total_seconds() / 86400
    return (
        f"session {later.session_number} is planned {days:.0f} days after session "
        f"{earlier.session_number}; {product} sessions are every {schedule.min_weeks}-"
        f"{schedule.max_weeks} weeks ({schedule.source})"
    )


def _course(session: Session, *, patient_id: int, product: str) -> list[DoseOrder]:
    return list(
        session.exec(
            select(DoseOrder).where(
                col(DoseOrder.patient_id) == patient_id,
                col(DoseOrder.product) == product,
                col(DoseOrder.status) != OrderStatus.CANCELLED,
            )
        ).all()
    )


def _interval_problems(course: list[DoseOrder], details: DoseOrder | OrderDetails) -> list[str]:
    """What is out of the schedule between this session and its neighbours in the course."""
    n = details.session_number
    schedule = SCHEDULES[Product(details.product)]
    before = max(
        (o for o in course if o.session_number < n), key=lambda o: o.session_number, default=None
    )
    after = min(
        (o for o in course if o.session_number > n), key=lambda o: o.session_number, default=None
    )
    return [
        p
        for p in (
            _gap_problem(before, details, schedule, details.product) if before else None,
            _gap_problem(details, after, schedule, details.product) if after else None,
        )
        if p
    ]


def course_warning(session: Session, *, order: DoseOrder) -> str | None:
    """For an order placed out of interval with the prescriber's reason: what is out of the
    schedule now (against the course's current orders) and the reason given."""
    if not order.interval_reason:
        return None
    course = [
        o
        for o in _course(session, patient_id=order.patient_id, product=order.product)
        if o.id != order.id
    ]
    problems = _interval_problems(course, order)
    if not problems:
        return None
    return "; ".join(problems) + f". Prescriber's reason: {order.interval_reason}"


def check_course(session: Session, *, patient: Patient, details: OrderDetails) -> str | None:
    """Refuse a session ordered twice or out of interval without a reason; returns the
    prescriber's interval reason to keep on the order (None when the interval holds)."""
    # Locks the patient's row, so two orders for one course are checked one after the other.
    # FOR NO KEY UPDATE (key_share): a plain FOR UPDATE would also block the key-share lock
    # every INSERT referencing the patient takes (a step's new material), and a step that
    # already holds the custody head would deadlock with this order waiting for it.
    session.exec(
        select(Patient).where(col(Patient.id) == patient.id).with_for_update(key_share=True)
    ).first()
    assert patient.id is not None
    course = _course(session, patient_id=patient.id, product=details.product)
    n = details.session_number
    for other in course:
        if other.session_number == n:
            raise RuleViolation(
                f"session {n} of {patient.coi_id}'s {details.product} course is already "
                f"ordered ({other.number}, {other.status}); a session is ordered once "
                "unless its order is cancelled",
                field="session_number",
            )
    problems = _interval_problems(course, details)
    if not problems:
        return None
    reason = (details.interval_reason or "").strip()
    if not reason:
        raise RuleViolation(
            "; ".join(problems) + ". To order it anyway give the prescriber's reason "
            "(interval_reason)",
            field="interval_reason",
        )
    return reason
