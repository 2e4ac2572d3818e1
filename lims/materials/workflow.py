"""State machines per material kind, as data (domain.md section D).

Each machine lists its states, the allowed transitions, which states are quarantine and
which are terminal. Shared rules apply to every kind: any non-terminal state may go
ON_HOLD (deviation, recall) and come back to the state it was held from; REJECTED and
EXPIRED go only to DESTROYED; RELEASED goes to EXPIRED at expiry. Rules that need more
than the table (who may release, four-eyes) are rule objects (lims.materials.policy):
they return the reasons a transition is refused, so the refusal can say why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lims.materials.kinds import MaterialKind
from lims.parties.models import LAB_STAFF, Role

if TYPE_CHECKING:
    from lims.materials.models import Material

ON_HOLD = "ON_HOLD"
RELEASED = "RELEASED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
DESTROYED = "DESTROYED"
# A released lot with no vials (or cells) left: not allocatable, still traced; a vial
# returned to it by QA's disposition of a cancelled dose makes it RELEASED again.
DEPLETED = "DEPLETED"

STAFF = LAB_STAFF
QA_ONLY = frozenset({Role.QA})
CLINIC_SIDE = frozenset({Role.CLINIC, Role.TECHNICIAN, Role.QA, Role.ADMIN})
# Targets that always need a written reason (EU GMP Annex 11 section 9).
REASON_REQUIRED = frozenset(
    {
        ON_HOLD,
        REJECTED,
        DESTROYED,
        "DISCARDED",
        "RECALLED",
        "CANCELLED",
        "CONTAMINATED",
        "TERMINATED",
        "RETURNED",
    }
)


@dataclass
class StateMachine:
    kind: MaterialKind
    initial: frozenset[str]
    quarantine: frozenset[str]
    terminal: frozenset[str]
    edges: dict[str, frozenset[str]]
    roles_by_target: dict[str, frozenset[Role]] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)

    @property
    def states(self) -> frozenset[str]:
        found = set(self.edges) | self.initial | self.terminal | {ON_HOLD}
        for targets in self.edges.values():
            found |= targets
        if RELEASED in found:
            found.add(EXPIRED)
        if found & {REJECTED, EXPIRED}:
            found.add(DESTROYED)
        return frozenset(found)

    def targets(self, state: str, held_from: str | None = None) -> frozenset[str]:
        """States reachable in one transition from ``state`` (shared rules included)."""
        if state == ON_HOLD:
            back = {held_from} if held_from else set()
            ends = {s for s in (REJECTED, DESTROYED, "RECALLED") if s in self.states}
            return frozenset(back | ends)
        targets = set(self.edges.get(state, frozenset()))
        if state not in self.terminal and state not in (REJECTED, EXPIRED):
            targets.add(ON_HOLD)
        if state == RELEASED:
            targets.add(EXPIRED)
        if state in (REJECTED, EXPIRED):
            targets.add(DESTROYED)
        return frozenset(t for t in targets if t != state)

    def roles_for(self, target: str) -> frozenset[Role]:
        return self.roles_by_target.get(target, STAFF)


def _parse_edges(text: str) -> dict[str, frozenset[str]]:
    edges: dict[str, set[str]] = {}
    for line in text.strip().splitlines():
        sources, targets = (part.strip() for part in line.split("->"))
        for source in sources.split("|"):
            edges.setdefault(source.strip(), set()).update(t.strip() for t in targets.split("|"))
    return {s: frozenset(t) for s, t in edges.items()}


def _machine(
    kind: MaterialKind,
    *,
    initial: str,
    quarantine: str = "",
    terminal: str,
    edges: str,
    roles: dict[str, frozenset[Role]] | None = None,
    hints: dict[str, str] | None = None,
) -> StateMachine:
    release_roles = {RELEASED: QA_ONLY}
    return StateMachine(
        kind=kind,
        initial=frozenset(initial.split()),
        quarantine=frozenset(quarantine.split()),
        terminal=frozenset(terminal.split()),
        edges=_parse_edges(edges),
        roles_by_target={**release_roles, **(roles or {})},
        hints=hints or {},
    )


_RELEASE_HINT = (
    "release needs QC testing with passing sterility, endotoxin and mycoplasma results "
    "and a QA signature by someone who did not process it"
)

MACHINES: dict[MaterialKind, StateMachine] = {
    m.kind: m
    for m in [
        _machine(
            MaterialKind.LIPOASPIRATE,
            initial="EXPECTED RECEIVED",
            quarantine="RECEIVED",
            terminal="CONSUMED DESTROYED",
            edges="""
                EXPECTED -> RECEIVED
                RECEIVED -> ACCEPTED | REJECTED
                ACCEPTED -> IN_PROCESS | CRYOSTORED
                CRYOSTORED -> IN_PROCESS
                IN_PROCESS -> CONSUMED
            """,
            hints={"IN_PROCESS": "lipoaspirate must pass intake (ACCEPTED) before processing"},
        ),
        _machine(
            MaterialKind.SVF,
            initial="CREATED",
            quarantine="CREATED",
            terminal="CONSUMED DESTROYED",
            edges="""
                CREATED -> QC_PASSED | QC_FAILED
                QC_FAILED -> REJECTED
                QC_PASSED -> TO_CULTURE | CRYOSTORED | RELEASED
                CRYOSTORED -> TO_CULTURE
                TO_CULTURE -> CONSUMED
                RELEASED -> CONSUMED
            """,
            roles={"QC_PASSED": STAFF, "QC_FAILED": STAFF},
            hints={RELEASED: _RELEASE_HINT},
        ),
        _machine(
            MaterialKind.ADSC_CULTURE,
            initial="SEEDED",
            terminal="TERMINATED DISCARDED PASSAGED",
            edges="""
                SEEDED -> EXPANDING | PASSAGED | CONTAMINATED
                EXPANDING -> PASSAGED | CONDITIONING | CRYOBANKED | CONTAMINATED | TERMINATED
                CRYOBANKED -> EXPANDING
                CONDITIONING -> HARVESTED | CONTAMINATED
                HARVESTED -> TERMINATED
                CONTAMINATED -> DISCARDED
            """,
        ),
        _machine(
            MaterialKind.CM_BATCH,
            initial="COLLECTED",
            quarantine="COLLECTED",
            terminal="POOLED_INTO_LOT DESTROYED",
            edges="""
                COLLECTED -> CLARIFIED | REJECTED
                CLARIFIED -> CONCENTRATED | HELD_FROZEN | POOLED_INTO_LOT | REJECTED
                CONCENTRATED -> HELD_FROZEN | POOLED_INTO_LOT | REJECTED
                HELD_FROZEN -> CONCENTRATED | POOLED_INTO_LOT | REJECTED
            """,
        ),
        _machine(
            MaterialKind.AAPE_LOT,
            initial="FILLED",
            quarantine="LYOPHILISED QC_TESTING",
            terminal="DESTROYED",
            edges="""
                FILLED -> LYOPHILISING | REJECTED
                LYOPHILISING -> LYOPHILISED | REJECTED
                LYOPHILISED -> QC_TESTING | REJECTED
                QC_TESTING -> RELEASED | REJECTED
                RELEASED -> RECALLED | DEPLETED
                DEPLETED -> RELEASED | RECALLED
                RECALLED -> DESTROYED
            """,
            roles={REJECTED: STAFF},
            hints={RELEASED: _RELEASE_HINT},
        ),
        _machine(
            MaterialKind.DOSE,
            initial="ALLOCATED",
            quarantine="CLINIC_QUARANTINE",
            terminal="ADMINISTERED DISCARDED DEALLOCATED DESTROYED",
            edges="""
                ALLOCATED -> LABELED | CANCELLED | EXPIRED
                LABELED -> DISPATCH_VERIFIED | CANCELLED | EXPIRED
                DISPATCH_VERIFIED -> IN_TRANSIT | CANCELLED
                IN_TRANSIT -> RECEIVED_AT_CLINIC | CLINIC_QUARANTINE | RETURNED
                CLINIC_QUARANTINE -> RECEIVED_AT_CLINIC | DISCARDED
                RECEIVED_AT_CLINIC -> RECONSTITUTED | ADMINISTERED | RETURNED | DISCARDED
                RECONSTITUTED -> ADMINISTERED | DISCARDED
                RETURNED -> DISCARDED
                CANCELLED -> DEALLOCATED | DESTROYED
                IN_TRANSIT | RECEIVED_AT_CLINIC | RECONSTITUTED | CLINIC_QUARANTINE -> RECALLED
                RECALLED -> RETURNED | DISCARDED
            """,
            roles={
                "RECEIVED_AT_CLINIC": CLINIC_SIDE,
                "CLINIC_QUARANTINE": CLINIC_SIDE,
                "RETURNED": CLINIC_SIDE,
                "RECONSTITUTED": CLINIC_SIDE,
                "ADMINISTERED": CLINIC_SIDE,
                "DISCARDED": CLINIC_SIDE,
                "CANCELLED": CLINIC_SIDE,
                # Only a recall (lims.recalls, QA's signature) makes a dose out of the lab
                # "do not use"; the clinic then returns or discards it.
                "RECALLED": QA_ONLY,
            },
            hints={"IN_TRANSIT": "a dose is dispatched only after the dispatch check passes"},
        ),
        _machine(
            MaterialKind.SCALP_BIOPSY,
            initial="COLLECTED RECEIVED",
            quarantine="RECEIVED",
            terminal="MICRODISSECTED DESTROYED",
            edges="""
                COLLECTED -> RECEIVED
                RECEIVED -> ACCEPTED | REJECTED
                ACCEPTED -> MICRODISSECTED
            """,
        ),
        _machine(
            MaterialKind.DP_CULTURE,
            initial="SEEDED",
            quarantine="FORMULATED QC_TESTING",
            terminal="PASSAGED CONSUMED DISCARDED TERMINATED DESTROYED",
            edges="""
                SEEDED -> EXPANDING | PASSAGED | CONTAMINATED
                EXPANDING -> PASSAGED | FORMULATED | CRYOBANKED | CONTAMINATED | TERMINATED
                CRYOBANKED -> EXPANDING
                FORMULATED -> QC_TESTING | REJECTED
                QC_TESTING -> RELEASED | REJECTED
                RELEASED -> CONSUMED | DEPLETED
                DEPLETED -> RELEASED
                CONTAMINATED -> DISCARDED
            """,
            hints={RELEASED: _RELEASE_HINT},
        ),
        _machine(
            MaterialKind.NANOFAT,
            initial="PREPARED",
            terminal="ADMINISTERED DISCARDED",
            edges="PREPARED -> ADMINISTERED | DISCARDED",
        ),
    ]
}


def machine_for(kind: str) -> StateMachine:
    return MACHINES[MaterialKind(kind)]


def is_quarantine(material: Material) -> bool:
    return material.state in machine_for(material.kind).quarantine
