"""QC's use cases, re-exported for their many callers: results (lims.qc.results),
deviations, donor eligibility, release, and maintenance (expiry, overdue QC, the system
account). New code imports the module it needs."""

from lims.qc.deviations import close_deviation, deviations_of, get_deviation, open_deviation
from lims.qc.eligibility import donor_is_eligible, record_donor_eligibility
from lims.qc.evidence import current_results, missing_results, result_history, specification_of
from lims.qc.maintenance import (
    QC_TESTING,
    QC_TURNAROUND,
    SYSTEM_USERNAME,
    OverdueQc,
    expire_due,
    overdue_qc,
    qc_testing_since,
    system_user,
)
from lims.qc.release import release
from lims.qc.results import QC_ROLES, correct_result, enter_result
from lims.qc.rules import release_problems

__all__ = [
    "QC_ROLES",
    "QC_TESTING",
    "QC_TURNAROUND",
    "SYSTEM_USERNAME",
    "OverdueQc",
    "close_deviation",
    "correct_result",
    "current_results",
    "deviations_of",
    "donor_is_eligible",
    "enter_result",
    "expire_due",
    "get_deviation",
    "missing_results",
    "open_deviation",
    "overdue_qc",
    "qc_testing_since",
    "record_donor_eligibility",
    "release",
    "release_problems",
    "result_history",
    "specification_of",
    "system_user",
]
