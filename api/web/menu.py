"""The layout's menu: what each role's work needs, in the order of its day."""

from __future__ import annotations

from api.web.i18n import N_
from lims.parties.models import Role, User

SEARCH = ("/search", N_("Search"))
RECALLS = ("/qa/recalls", N_("Recalls"))
HOME = ("/home", N_("Home"))
ORDERS = ("/lab/orders", N_("Orders"))
BENCH = [("/bench", N_("Bench")), ("/bench/scan", N_("Scan")), ("/bench/storage", N_("Storage"))]
MENUS: dict[Role, list[tuple[str, str]]] = {
    Role.TECHNICIAN: [HOME, ORDERS, *BENCH, SEARCH],
    Role.QA: [HOME, ORDERS, ("/qa", N_("QA")), RECALLS, ("/audit", N_("Audit")), SEARCH],
    Role.CLINIC: [
        ("/portal", N_("Patients")),
        ("/portal/orders", N_("Orders")),
        ("/portal/orders/new", N_("Order a dose")),
        ("/portal/recalls", N_("Recalls")),
        ("/portal/webhooks", N_("Webhooks")),
        ("/portal/contacts", N_("E-mail contacts")),
        SEARCH,
    ],
    Role.AUDITOR: [("/audit", N_("Audit")), SEARCH],
    Role.ADMIN: [HOME, ORDERS, *BENCH, ("/qa", N_("QA")), RECALLS, ("/audit", N_("Audit")), SEARCH],
}


def menu(user: User) -> list[tuple[str, str]]:
    """(address, label) pairs of the user's role's menu."""
    return MENUS.get(Role(user.role), [SEARCH])
