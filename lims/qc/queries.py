"""Reads for QC and QA: what waits for results, and what waits for QA's review."""

from __future__ import annotations

from sqlmodel import Session

from lims.materials.models import Material
from lims.materials.queries import in_states

# What QA reviews: lots, SVF and DP cultures under test, on hold, or passed and awaiting
# the release signature.
QA_STATES = ("QC_TESTING", "ON_HOLD", "QC_PASSED")
QA_KINDS = ("aape_lot", "svf", "dp_culture")


def qa_queue(session: Session) -> list[Material]:
    """What waits for QA: lots, SVF and DP cultures under test, on hold or passed, oldest
    first."""
    return in_states(session, states=QA_STATES, kinds=QA_KINDS)


def awaiting_results(session: Session) -> list[Material]:
    """Materials in QC testing (their results are still coming in), oldest first."""
    return in_states(session, states=("QC_TESTING",))
