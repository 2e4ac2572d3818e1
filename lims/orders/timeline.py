"""An order's timeline as the clinic sees it: what happened, in time order, in the clinic's
own time zone (with the offset), and who did it.

Built from the custody ledger only (the order's own events and its dose's state changes and
hand-overs after the order was placed), so the API and the portal show the same thing and
nothing can appear on the timeline that the ledger does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from lims.custody import ledger
from lims.custody.models import CustodyEvent
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.orders.queries import order_timeline
from lims.parties.models import Clinic

# The lab's words for what a clinic sees. A status or state not listed here (a new one added
# later) is still shown, by its code made readable, so the timeline never hides an event.
ORDER_STATUS_NAMES = {
    "PLACED": "Order placed",
    "ALLOCATED": "Dose allocated",
    "DISPATCHED": "Dose dispatched",
    "RECEIVED": "Dose received at the clinic",
    "CANCELLED": "Order cancelled",
}
DOSE_STATE_NAMES = {
    "RELEASED": "Dose released by QA",
    "ON_HOLD": "Dose on hold",
    "RECALLED": "Dose recalled: do not use",
    "DO_NOT_USE": "Dose marked do not use",
    "EXPIRED": "Dose expired",
    "DESTROYED": "Dose destroyed",
}
DOSE_EVENTS = ("material.state_changed", "custody.handed_over")


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of an order's timeline."""

    seq: int
    at: datetime  # in the clinic's zone, tz-aware (its isoformat carries the offset)
    event: str  # the ledger's action code
    status: str  # the order's status or the dose's state after the event ("" for hand-overs)
    name: str  # the human name
    actor: str
    actor_role: str
    reason: str | None


def readable(code: str) -> str:
    """A status code the names do not list, made readable (``IN_TRANSIT`` -> ``In transit``)."""
    return code.replace("_", " ").strip().capitalize()


def _entry(event: CustodyEvent, zone: ZoneInfo) -> TimelineEntry:
    new = event.new or {}
    if event.action == "order.placed":
        status, name = "PLACED", ORDER_STATUS_NAMES["PLACED"]
    elif event.action == "order.status_changed":
        status = str(new.get("status", ""))
        name = ORDER_STATUS_NAMES.get(status) or f"Order {readable(status).lower()}"
    elif event.action == "custody.handed_over":
        status, name = "", f"Dose handed over to {event.to}"
    else:
        status = str(new.get("state", ""))
        name = DOSE_STATE_NAMES.get(status) or f"Dose {readable(status).lower()}"
    return TimelineEntry(
        seq=event.seq,
        at=event.occurred_at.astimezone(zone),
        event=event.action,
        status=status,
        name=name,
        actor=event.actor,
        actor_role=event.actor_role,
        reason=event.reason,
    )


def timeline_of(session: Session, *, order: DoseOrder) -> list[TimelineEntry]:
    """The order's timeline, oldest first, times in the clinic's zone (the caller checked
    the actor may see the order)."""
    clinic = session.get(Clinic, order.clinic_id)
    zone = ZoneInfo(clinic.time_zone if clinic else "UTC")
    events = order_timeline(session, order=order)
    placed_seq = events[0].seq if events else 0
    if order.dose_material_id:
        dose = session.get(Material, order.dose_material_id)
        if dose is not None:
            # The dose's life before this order (its manufacture) is the lab's, not the clinic's.
            events += [
                e
                for e in ledger.history(session, material_id=dose.material_id)
                if e.seq > placed_seq and e.action in DOSE_EVENTS
            ]
    return [_entry(e, zone) for e in sorted(events, key=lambda e: e.seq)]
