"""The demo scenario as runs of the stage flows, and the people's acts between them.

:class:`Scenario` runs one stage flow per call with the requests of
flows/scenario_requests.py and records each run (:class:`FlowRun`); what people do, people
do here too, through the services and with their passwords: QA's release signature and the
donor-eligibility determination, the packer's and the verifier's signatures, a technician
rejecting a failed SVF. ``lims demo`` (flows/demo.py) and bench/flows.py tell their stories
with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prefect.client.schemas.objects import State

from flows.common import engine_for, label
from flows.conditioning import cm_harvest, hypoxia_start
from flows.culture import culture_passage, culture_seeding
from flows.dispatch import clinic_receipt, dose_allocation, dose_dispatch
from flows.intake import lipoaspirate_intake
from flows.lot import lot_fill_and_lyophilisation
from flows.maintenance import lab_maintenance
from flows.qc import lot_qc
from flows.scenario_requests import Cast, Requests
from flows.svf import svf_separation
from lims.db import utcnow, write_session
from lims.demo import DEMO_PASSWORD
from lims.lifecycle import transition
from lims.materials.service import get_material
from lims.parties.queries import get_user
from lims.parties.service import get_patient
from lims.qc.service import record_donor_eligibility, release
from lims.signatures.models import Meaning
from lims.signatures.service import sign

PERSON = "(person)"


class DemoFailed(RuntimeError):
    """A flow run of the demo failed where it should have succeeded."""


@dataclass
class FlowRun:
    flow: str
    seconds: float
    summary: str
    ok: bool = True


@dataclass
class PipelineDemo:
    donation: str = ""
    donor_donation: str = ""
    patient: str = ""
    recipient: str = ""
    donor: str = ""
    lots: dict[str, str] = field(default_factory=dict)
    doses: dict[str, str] = field(default_factory=dict)
    refusal: str = ""
    bedside_refusal: str = ""
    orders: dict[str, str] = field(default_factory=dict)
    yields: list[str] = field(default_factory=list)
    runs: list[FlowRun] = field(default_factory=list)
    human: list[str] = field(default_factory=list)
    prefect_startup: float = 0.0
    prefect_api: str = "ephemeral server"
    seconds: float = 0.0
    custody_events: int = 0
    materials: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def flow_seconds(self) -> float:
        return sum(r.seconds for r in self.runs)


class Scenario:
    """Stage flow runs and people's acts on one LIMS database, reported to ``on_run``."""

    def __init__(self, database_url: str | None, on_run: Callable[[FlowRun], None] | None) -> None:
        self.url = database_url
        self.engine = engine_for(database_url)
        self.on_run = on_run
        self.out = PipelineDemo()
        # Steps are dated over the past six and a half days, as a lab would have entered
        # them: the SOPs check real elapsed time.
        self.t0 = utcnow() - timedelta(days=6, hours=12)

    def requests(self, cast: Cast) -> Requests:
        """The cast's stage requests, dated from this scenario's start."""
        return Requests(cast, self.t0)

    def _report(self, run: FlowRun) -> None:
        self.out.runs.append(run)
        if self.on_run:
            self.on_run(run)

    def flow(
        self, fn: Any, summary: Callable[[Any], str], refusal: bool = False, **request: Any
    ) -> Any:
        """Run one stage flow; a failed run stops the demo unless a refusal is the point."""
        started = time.perf_counter()
        state: State = fn(request=request, database_url=self.url, return_state=True)
        seconds = time.perf_counter() - started
        if not state.is_completed():
            run = FlowRun(fn.name, seconds, state.message or str(state.name), ok=False)
            self._report(run)
            if not refusal:
                raise DemoFailed(f"flow run {fn.name} failed: {run.summary}")
            return state
        result = state.result()
        self._report(FlowRun(fn.name, seconds, summary(result)))
        return result

    def human(self, line: str) -> None:
        self.out.human.append(line)
        if self.on_run:
            self.on_run(FlowRun(PERSON, 0.0, line))

    # --- stages ----------------------------------------------------------------------------
    def intake(self, cast: Cast, *args: Any) -> str:
        """Args as :meth:`Requests.intake`; returns the lipoaspirate's id."""
        r = self.flow(
            lipoaspirate_intake,
            lambda x: f"{label(x.lipoaspirate)} {x.state} ({x.time_since_harvest} after harvest)",
            **self.requests(cast).intake(*args),
        )
        return str(r.lipoaspirate)

    def svf(self, cast: Cast, *args: Any, **kw: Any) -> Any:
        """Args as :meth:`Requests.svf`; returns the flow's result."""
        r = self.flow(
            svf_separation,
            lambda x: (
                f"SVF {label(x.svf)}: {x.cells} ({x.yield_per_ml}), viability "
                f"{x.viability} -> {x.state}"
            ),
            **self.requests(cast).svf(*args, **kw),
        )
        self.out.yields.append(
            f"SVF {label(r.svf)}: {r.cells} from 100 mL ({r.yield_per_ml}), viability "
            f"{r.viability}: {r.state}"
        )
        return r

    def seed(self, cast: Cast, svf: str, hours: float) -> list[str]:
        r = self.flow(
            culture_seeding,
            lambda x: f"{len(x.cultures)} flasks at {x.seeding_density}",
            **self.requests(cast).seed(svf, hours),
        )
        return list(r.cultures)

    def passage(self, cast: Cast, culture: str, hours: float) -> list[str]:
        r = self.flow(
            culture_passage,
            lambda x: f"P1 x{len(x.children)}, {x.population_doublings} doublings",
            **self.requests(cast).passage(culture, hours),
        )
        return list(r.children)

    def condition(
        self, cast: Cast, culture: str, hours: float, cells: str, volume: str, log: str
    ) -> str:
        """Count and start hypoxia at ``hours``; harvest 48 h later and clarify."""
        requests = self.requests(cast)
        self.flow(
            hypoxia_start,
            lambda x: f"{label(x.culture)} {x.state} at 2 % O2",
            **requests.hypoxia(culture, hours, cells),
        )
        r = self.flow(
            cm_harvest,
            lambda x: (
                f"CM {label(x.cm_batch)}: {x.collected} after "
                f"{x.conditioning_duration} -> {x.state}"
            ),
            **requests.harvest(culture, hours, volume, log),
        )
        self.out.yields.append(
            f"CM {label(r.cm_batch)}: {r.collected} after {r.conditioning_duration} of hypoxia"
        )
        return str(r.cm_batch)

    def fill(self, cast: Cast, draws: list[tuple[str, str]], *args: Any, **kw: Any) -> str:
        """Args as :meth:`Requests.fill`; returns the lot's id."""
        r = self.flow(
            lot_fill_and_lyophilisation,
            lambda x: (
                f"lot {label(x.lot)}: {x.vials}, lyophilisation {x.lyophilisation} -> "
                f"{x.state}, stored {x.location}"
            ),
            **self.requests(cast).fill(draws, *args, **kw),
        )
        self.out.yields.append(
            f"lot {label(r.lot)}: {r.vials} of 4 mL from "
            + " + ".join(f"{v} of CM {label(c)}" for c, v in draws)
        )
        return str(r.lot)

    def qc(self, cast: Cast, lot: str, results: dict[str, str]) -> Any:
        return self.flow(
            lot_qc,
            lambda x: f"lot {label(x.lot)}: {x.state}; {x.status}",
            **self.requests(cast).qc(lot, results),
        )

    def order(self, cast: Cast, *args: Any, **kw: Any) -> Any:
        """Args as :meth:`Requests.order`; returns the allocation (order and dose)."""
        return self.flow(
            dose_allocation,
            lambda x: f"order {x.order}: dose {label(x.dose)} {x.state}",
            **self.requests(cast).order(*args, **kw),
        )

    def dispatch(
        self, cast: Cast, order: str, scanned: str, logger: str, refusal: bool = False
    ) -> Any:
        return self.flow(
            dose_dispatch,
            lambda x: f"order {x.order}: dose {label(x.dose)} {x.state} with {x.custodian}",
            refusal=refusal,
            **self.requests(cast).dispatch(order, label(scanned), logger),
        )

    def receive(
        self, cast: Cast, desk: str, order: str, nurse: str, temperature: str = "4.1 degC"
    ) -> Any:
        return self.flow(
            clinic_receipt,
            lambda x: f"order {x.order}: dose {label(x.dose)} {x.state} ({x.custodian})",
            **self.requests(cast).receipt(desk, order, nurse, temperature),
        )

    def maintenance(self) -> None:
        started = time.perf_counter()
        x = lab_maintenance(database_url=self.url)
        self._report(
            FlowRun(
                lab_maintenance.name,
                time.perf_counter() - started,
                f"{len(x.expired)} expired, {len(x.overdue_qc)} QC overdue, custody "
                f"{x.custody.summary}",
            )
        )

    # --- people ----------------------------------------------------------------------------
    def pack(self, cast: Cast, dose: str) -> None:
        """The packer and a second verifier sign the labelled dose (people, passwords)."""
        with write_session(self.engine) as s:
            for username, meaning, comment in (
                (cast.tech, Meaning.PERFORMED, "packed with its temperature logger"),
                (cast.tech2, Meaning.VERIFIED, "label and identity checked"),
            ):
                sign(
                    s,
                    user=get_user(s, username=username),
                    password=DEMO_PASSWORD,
                    meaning=meaning,
                    record_type="material",
                    record_id=dose,
                    comment=comment,
                )
        self.human(f"dose {label(dose)}: packed by Yui Tanaka, verified by Aoi Mori (signed)")

    def qa_release(self, cast: Cast, lot: str) -> None:
        with write_session(self.engine) as s:
            release(
                s,
                material=get_material(s, lot),
                actor=get_user(s, username=cast.qa),
                password=DEMO_PASSWORD,
                comment="all AAPE-LOT-SPEC v1 results pass",
            )
        self.human(f"lot {label(lot)}: RELEASED by QA Kenji Sato (signature, meaning 'released')")

    def eligibility(self, cast: Cast) -> None:
        with write_session(self.engine) as s:
            record_donor_eligibility(
                s,
                donor=get_patient(s, coi_id=cast.donor),
                eligible=True,
                basis="donor screening and testing complete; medical history reviewed",
                actor=get_user(s, username=cast.qa),
            )
        self.human(f"donor {cast.donor}: eligible (determination by QA Kenji Sato)")

    def reject_svf(self, cast: Cast, svf: str, why: str) -> None:
        with write_session(self.engine) as s:
            transition(
                s,
                material=get_material(s, svf, lock=True),
                to_state="REJECTED",
                actor=get_user(s, username=cast.tech),
                reason=why,
            )
        self.human(f"SVF {label(svf)}: REJECTED by Yui Tanaka ({why})")
