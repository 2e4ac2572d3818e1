"""``lims demo``: the whole pipeline through the stage flows, on Prefect's ephemeral server.

Two patients from two clinics and one donor:

* Ginza Hair Clinic's patient A gives her own fat (autologous): intake, SVF, culture and a
  passage, hypoxic conditioning of two flasks, CM harvest, one AAPE lot, QC, release by QA,
  three doses ordered and allocated, two dispatched and received.
* Osaka Scalp Centre registers donor D (allogeneic; QA records the donor-eligibility
  determination) and patient B, who is treated with D's product. D's first SVF fails its
  viability and is rejected; the second passes. Two lots: D1 passes QC and is released; D2
  has an out-of-specification endotoxin result and is put on hold.
* B's dose is allocated from lot D1, and a packer scanning one of A's doses while packing
  B's order is refused by the dispatch gate before B's own dose goes out and is received.

What people do, people do here too, through the services and with their passwords: QA's
release signature and the eligibility determination, the packer's and the verifier's
signatures, a technician rejecting the failed SVF. Everything else is a flow run.
Steps are dated over the past six and a half days, as a lab would have entered them: the
SOPs check real elapsed time (48 h of hypoxia cannot pass in a second).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prefect.client.schemas.objects import State
from prefect.settings import get_current_settings
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import Engine, func
from sqlmodel import col, select

from flows.common import engine_for, label
from flows.conditioning import cm_harvest, hypoxia_start
from flows.culture import culture_passage, culture_seeding
from flows.dispatch import clinic_receipt, dose_allocation, dose_dispatch
from flows.intake import lipoaspirate_intake
from flows.lot import lot_fill_and_lyophilisation
from flows.maintenance import lab_maintenance
from flows.qc import lot_qc
from flows.svf import svf_separation
from lims.custody.models import CustodyEvent
from lims.db import read_session, utcnow, write_session
from lims.demo import DEMO_PASSWORD, PASSING_AAPE_QC, _get_or_create_clinic, _get_or_create_user
from lims.lifecycle import transition
from lims.materials.models import Material
from lims.materials.service import get_material
from lims.parties.models import DonorType, Patient, Role, User
from lims.parties.service import (
    add_instrument,
    add_reagent_lot,
    create_user,
    get_patient,
    register_patient,
)
from lims.qc.service import record_donor_eligibility, release
from lims.settings import refuse_demo_data
from lims.signatures.models import Meaning
from lims.signatures.passwords import set_password
from lims.signatures.service import sign
from lims.sops.service import sync_catalog

PERSON = "(person)"
# How many flow runs the scenario makes (for the progress bar).
FLOW_RUNS = 34
INSTRUMENTS = [
    "centrifuge",
    "shaking_incubator",
    "cell_counter",
    "biosafety_cabinet",
    "co2_incubator",
    "trigas_incubator",
    "freeze_dryer",
    "karl_fischer_titrator",
]
REAGENTS = ["collagenase", "culture_medium", "sterile_filter"]
SVF_PARAMETERS = {
    "collagenase_type": "I",
    "collagenase_concentration": "0.1 %",
    "digestion_temperature": "37 degC",
    "digestion_time": "45 min",
    "centrifugation_rcf": "1200 x g",
    "centrifugation_time": "10 min",
    "lysis": "NH4Cl",
    "filter_mesh": "100 µm",
}
LYO_PARAMETERS = {
    "freezing_shelf_temperature": "-45 degC",
    "primary_drying_shelf_temperature": "-25 degC",
    "primary_drying_pressure": "100 mTorr",
    "secondary_drying_temperature": "40 degC",
    "secondary_drying_time": "4 h",
    "residual_moisture": "1.2 %",
}
CLARIFY_PARAMETERS = {
    "clarification_rcf": "13000 x g",
    "clarification_time": "10 min",
    "clarification_temperature": "4 degC",
    "filter_pore": "0.22 um",
    "hold": "fresh",
}
PASSING_QC = PASSING_AAPE_QC


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


@dataclass
class Cast:
    run: int
    tech: str
    tech2: str
    qa: str
    ginza_desk: str
    osaka_desk: str
    patient: str
    recipient: str
    donor: str
    instruments: dict[str, str]
    reagents: dict[str, dict[str, str]]


def _cast(engine: Engine) -> Cast:
    """Clinics, staff, the three people, instruments and reagent lots (through services)."""
    refuse_demo_data()
    with write_session(engine) as s:
        sync_catalog(s)
        run = s.exec(select(func.count()).select_from(Patient)).one() // 3 + 1
        ginza = _get_or_create_clinic(s, "GINZA", "Ginza Hair Clinic")
        osaka = _get_or_create_clinic(s, "OSAKA", "Osaka Scalp Centre")
        staff = [
            _get_or_create_user(s, "tanaka", "Yui Tanaka", Role.TECHNICIAN),
            _get_or_create_user(s, "mori", "Aoi Mori", Role.TECHNICIAN),
            _get_or_create_user(s, "sato", "Kenji Sato", Role.QA),
        ]
        for person in staff:
            if person.password_hash is None:
                set_password(s, user=person, password=DEMO_PASSWORD, actor=None)
        for username, name, clinic in (
            ("ginza-desk", "Ginza front desk", ginza),
            ("osaka-desk", "Osaka front desk", osaka),
        ):
            found = s.exec(select(User).where(col(User.username) == username)).first()
            if found is None:
                create_user(
                    s, username=username, printed_name=name, role=Role.CLINIC, clinic=clinic
                )
        patient = register_patient(
            s, clinic=ginza, identifier_1="1980-04-12", identifier_2=f"GHC-F{run:05d}"
        )
        recipient = register_patient(
            s,
            clinic=osaka,
            identifier_1="1975-11-02",
            identifier_2=f"OSC-F{run:05d}",
            donor_type=DonorType.RECIPIENT,
        )
        donor = register_patient(
            s,
            clinic=osaka,
            identifier_1="1991-06-30",
            identifier_2=f"DON-F{run:05d}",
            donor_type=DonorType.ALLOGENEIC_DONOR,
        )
        due = utcnow() + timedelta(days=180)
        instruments = {}
        for kind in INSTRUMENTS:
            tag = f"{kind[:10].upper()}-F{run}"
            add_instrument(
                s,
                asset_tag=tag,
                instrument_type=kind,
                name=kind.replace("_", " "),
                calibration_due=due,
            )
            instruments[kind] = tag
        reagents = {}
        for kind in REAGENTS:
            lot = f"{kind[:3].upper()}-F{run}"
            add_reagent_lot(
                s, reagent_type=kind, lot_number=lot, supplier="demo supplier", expires_at=due
            )
            reagents[kind] = {"reagent_type": kind, "lot_number": lot}
        return Cast(
            run=run,
            tech="tanaka",
            tech2="mori",
            qa="sato",
            ginza_desk="ginza-desk",
            osaka_desk="osaka-desk",
            patient=patient.coi_id,
            recipient=recipient.coi_id,
            donor=donor.coi_id,
            instruments=instruments,
            reagents=reagents,
        )


@contextmanager
def ephemeral_prefect() -> Iterator[float]:
    """Prefect as the demo uses it: the ephemeral server unless PREFECT_API_URL is set;
    no flow-run heartbeats (they watch deployed runs for crashes), no analytics. Yields
    the seconds the server took to answer (its start-up, in ephemeral mode)."""
    from prefect import get_client
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
            PREFECT_SERVER_ANALYTICS_ENABLED: False,
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 90,
        }
    ):
        started = time.perf_counter()
        with get_client(sync_client=True) as client:
            client.hello()
        yield time.perf_counter() - started


class _Scenario:
    def __init__(self, database_url: str | None, on_run: Callable[[FlowRun], None] | None) -> None:
        self.url = database_url
        self.engine = engine_for(database_url)
        self.on_run = on_run
        self.out = PipelineDemo()
        self.t0 = utcnow() - timedelta(days=6, hours=12)

    def at(self, hours: float) -> str:
        return (self.t0 + timedelta(hours=hours)).isoformat()

    def did(self, who: str, hours: float | None = None) -> dict[str, Any]:
        return {
            "performed_by": who,
            "performed_at": self.at(hours) if hours is not None else utcnow().isoformat(),
        }

    def flow(
        self, fn: Any, summary: Callable[[Any], str], refusal: bool = False, **request: Any
    ) -> Any:
        """Run one stage flow; a failed run stops the demo unless a refusal is the point."""
        started = time.perf_counter()
        state: State = fn(request=request, database_url=self.url, return_state=True)
        seconds = time.perf_counter() - started
        if not state.is_completed():
            run = FlowRun(fn.name, seconds, state.message or str(state.name), ok=False)
            self.out.runs.append(run)
            if self.on_run:
                self.on_run(run)
            if not refusal:
                raise DemoFailed(f"flow run {fn.name} failed: {run.summary}")
            return state
        result = state.result()
        run = FlowRun(fn.name, seconds, summary(result))
        self.out.runs.append(run)
        if self.on_run:
            self.on_run(run)
        return result

    def human(self, line: str) -> None:
        self.out.human.append(line)
        if self.on_run:
            self.on_run(FlowRun(PERSON, 0.0, line))

    # --- stages ----------------------------------------------------------------------------
    def intake(
        self,
        cast: Cast,
        coi: str,
        volume: str,
        hours: float,
        shipment: str,
        use: str = "autologous",
    ) -> str:
        r = self.flow(
            lipoaspirate_intake,
            lambda x: f"{label(x.lipoaspirate)} {x.state} ({x.time_since_harvest} after harvest)",
            patient=coi,
            use=use,
            volume=volume,
            collected_at=self.at(hours),
            shipment_ref=shipment,
            container="250 mL sterile canister",
            received_by=cast.tech,
            inspection={
                **self.did(cast.tech, hours + 3),
                "parameters": {
                    "transport_temperature": "6 degC",
                    "temperature_excursion": False,
                    "received_volume": volume,
                    "donor_site": "abdomen",
                    "identity_verified": True,
                    "container_intact": True,
                },
            },
        )
        return r.lipoaspirate

    def svf(
        self, cast: Cast, lipo: str, hours: float, cells: str, viability: str, nanofat: bool = False
    ) -> Any:
        request: dict[str, Any] = {
            **self.did(cast.tech, hours),
            "lipoaspirate": lipo,
            "taken": "100 mL",
            "cells": cells,
            "instruments": [
                cast.instruments[k] for k in ("centrifuge", "shaking_incubator", "cell_counter")
            ],
            "reagent_lots": [cast.reagents["collagenase"]],
            "parameters": {**SVF_PARAMETERS, "viability": viability},
        }
        if nanofat:
            request["nanofat"] = {
                **self.did(cast.tech, hours + 1),
                "taken": "20 mL",
                "made": "18 mL",
                "loss": {"quantity": "2 mL", "reason": "oil and fibrous residue on the filter"},
                "parameters": {
                    "emulsification_passes": 30,
                    "filter_mesh": "500 um",
                    "needle_gauge": 27,
                },
            }
        r = self.flow(
            svf_separation,
            lambda x: (
                f"SVF {label(x.svf)}: {x.cells} ({x.yield_per_ml}), viability "
                f"{x.viability} -> {x.state}"
            ),
            **request,
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
            **self.did(cast.tech, hours),
            svf=svf,
            taken="7e5 cells",
            flasks=["3.5e5 cells", "3.5e5 cells"],
            instruments=[cast.instruments["biosafety_cabinet"], cast.instruments["co2_incubator"]],
            reagent_lots=[cast.reagents["culture_medium"]],
            parameters={"culture_area": "350 cm^2", "medium": "DMEM/F12 + hPL"},
        )
        return list(r.cultures)

    def count(self, cast: Cast, hours: float, cells: str) -> dict[str, Any]:
        return {
            **self.did(cast.tech, hours),
            "instruments": [cast.instruments["cell_counter"]],
            "parameters": {"cell_count": cells, "viability": "92 %", "confluence": "86 %"},
        }

    def passage(self, cast: Cast, culture: str, hours: float) -> list[str]:
        r = self.flow(
            culture_passage,
            lambda x: f"P1 x{len(x.children)}, {x.population_doublings} doublings",
            culture=culture,
            count=self.count(cast, hours - 1, "2.8e6 cells"),
            passage={
                **self.did(cast.tech, hours),
                "taken": "2.8e6 cells",
                "flasks": ["1.05e6 cells", "1.05e6 cells"],
                "loss": {"quantity": "7e5 cells", "reason": "count sample and excess"},
                "instruments": [
                    cast.instruments["biosafety_cabinet"],
                    cast.instruments["cell_counter"],
                ],
                "reagent_lots": [cast.reagents["culture_medium"]],
                "parameters": {
                    "harvested_cells": "2.8e6 cells",
                    "confluence": "85 %",
                    "viability": "92 %",
                    "culture_area": "700 cm^2",
                },
            },
        )
        return list(r.children)

    def condition(
        self, cast: Cast, culture: str, hours: float, cells: str, volume: str, log: str
    ) -> str:
        self.flow(
            hypoxia_start,
            lambda x: f"{label(x.culture)} {x.state} at 2 % O2",
            **self.did(cast.tech, hours),
            culture=culture,
            count=self.count(cast, hours - 1, cells),
            instruments=[cast.instruments["trigas_incubator"]],
            reagent_lots=[cast.reagents["culture_medium"]],
            parameters={"o2_setpoint": "2 %", "medium": "serum-free"},
        )
        r = self.flow(
            cm_harvest,
            lambda x: (
                f"CM {label(x.cm_batch)}: {x.collected} after "
                f"{x.conditioning_duration} -> {x.state}"
            ),
            **self.did(cast.tech, hours + 48),
            culture=culture,
            volume=volume,
            instruments=[cast.instruments["trigas_incubator"]],
            parameters={"o2_mean": "2.1 %", "o2_log_ref": log},
            clarification={
                **self.did(cast.tech, hours + 50),
                "loss": {"quantity": "1.25 mL", "reason": "filter hold-up volume"},
                "instruments": [cast.instruments["centrifuge"]],
                "reagent_lots": [cast.reagents["sterile_filter"]],
                "parameters": CLARIFY_PARAMETERS,
            },
        )
        self.out.yields.append(
            f"CM {label(r.cm_batch)}: {r.collected} after {r.conditioning_duration} of hypoxia"
        )
        return str(r.cm_batch)

    def fill(
        self,
        cast: Cast,
        draws: list[tuple[str, str]],
        vials: str,
        hours: float,
        position: str,
        loss: tuple[str, str] | None = None,
    ) -> str:
        batches: list[dict[str, Any]] = [{"cm_batch": cm, "volume": v} for cm, v in draws]
        if loss:
            batches[-1]["loss"] = {"quantity": loss[1], "reason": loss[0]}
        r = self.flow(
            lot_fill_and_lyophilisation,
            lambda x: (
                f"lot {label(x.lot)}: {x.vials}, lyophilisation {x.lyophilisation} -> "
                f"{x.state}, stored {x.location}"
            ),
            **self.did(cast.tech, hours),
            cm_batches=batches,
            vials=vials,
            instruments=[cast.instruments["biosafety_cabinet"]],
            parameters={"fill_volume": "4 mL", "cryoprotectant": "trehalose"},
            lyophilisation={
                **self.did(cast.tech, hours + 20),
                "instruments": [
                    cast.instruments["freeze_dryer"],
                    cast.instruments["karl_fischer_titrator"],
                ],
                "parameters": {**LYO_PARAMETERS, "cycle_trace_ref": f"FD-CYCLE-{position}"},
            },
            storage={
                "site": "Lab 1",
                "freezer": "ULT-80-A",
                "rack": "R1",
                "box": f"F{cast.run}",
                "position": position,
                "temperature": "-80 degC",
            },
        )
        self.out.yields.append(
            f"lot {label(r.lot)}: {r.vials} of 4 mL from "
            + " + ".join(f"{v} of CM {label(c)}" for c, v in draws)
        )
        return str(r.lot)

    def qc(self, cast: Cast, lot: str, results: dict[str, str]) -> Any:
        tested = utcnow().isoformat()
        return self.flow(
            lot_qc,
            lambda x: f"lot {label(x.lot)}: {x.state}; {x.status}",
            lot=lot,
            started_by=cast.tech,
            results=[
                {"test": t, "value": v, "tested_at": tested, "entered_by": cast.tech2}
                for t, v in results.items()
            ],
        )

    def order(
        self,
        cast: Cast,
        coi: str,
        desk: str,
        session_number: int,
        ship_to: str,
        lot: str | None = None,
    ) -> Any:
        return self.flow(
            dose_allocation,
            lambda x: f"order {x.order}: dose {label(x.dose)} {x.state}",
            order={
                "patient": coi,
                "placed_by": desk,
                "dose": "1 vial",
                "session_number": session_number,
                "sessions_total": 6,
                "planned_use_at": (utcnow() + timedelta(days=3)).isoformat(),
                "ship_to": ship_to,
                "prescriber": "Dr. H. Fukuoka",
                "consent_ref": f"CONSENT-{coi[-6:]}",
            },
            allocated_by=cast.tech,
            lot=lot,
        )

    def pack(self, cast: Cast, dose: str) -> None:
        """The packer and a second verifier sign the labelled dose (people, passwords)."""
        with write_session(self.engine) as s:
            for username, meaning, comment in (
                (cast.tech, Meaning.PERFORMED, "packed with its temperature logger"),
                (cast.tech2, Meaning.VERIFIED, "label and identity checked"),
            ):
                person = s.exec(select(User).where(col(User.username) == username)).one()
                sign(
                    s,
                    user=person,
                    password=DEMO_PASSWORD,
                    meaning=meaning,
                    record_type="material",
                    record_id=dose,
                    comment=comment,
                )
        self.human(f"dose {label(dose)}: packed by Yui Tanaka, verified by Aoi Mori (signed)")

    def dispatch(
        self, cast: Cast, order: str, scanned: str, logger: str, refusal: bool = False
    ) -> Any:
        return self.flow(
            dose_dispatch,
            lambda x: f"order {x.order}: dose {label(x.dose)} {x.state} with {x.custodian}",
            refusal=refusal,
            order=order,
            scanned_label=label(scanned),
            shipper="ColdChain Couriers",
            temperature_logger=logger,
            transit="20 h",
            dispatched_by=cast.tech,
        )

    def receive(self, desk: str, order: str, nurse: str) -> Any:
        return self.flow(
            clinic_receipt,
            lambda x: f"order {x.order}: dose {label(x.dose)} {x.state} ({x.custodian})",
            order=order,
            received_at=utcnow().isoformat(),
            temperature="4.1 degC",
            received_by=nurse,
            confirmed_by=desk,
        )

    def maintenance(self) -> None:
        started = time.perf_counter()
        x = lab_maintenance(database_url=self.url)
        run = FlowRun(
            lab_maintenance.name,
            time.perf_counter() - started,
            f"{len(x.expired)} expired, {len(x.overdue_qc)} QC overdue, custody "
            f"{x.custody.summary}",
        )
        self.out.runs.append(run)
        if self.on_run:
            self.on_run(run)

    # --- people ----------------------------------------------------------------------------
    def qa_release(self, cast: Cast, lot: str) -> None:
        with write_session(self.engine) as s:
            qa = s.exec(select(User).where(col(User.username) == cast.qa)).one()
            release(
                s,
                material=get_material(s, lot),
                actor=qa,
                password=DEMO_PASSWORD,
                comment="all AAPE-LOT-SPEC v1 results pass",
            )
        self.human(f"lot {label(lot)}: RELEASED by QA Kenji Sato (signature, meaning 'released')")

    def eligibility(self, cast: Cast) -> None:
        with write_session(self.engine) as s:
            qa = s.exec(select(User).where(col(User.username) == cast.qa)).one()
            record_donor_eligibility(
                s,
                donor=get_patient(s, coi_id=cast.donor),
                eligible=True,
                basis="donor screening and testing complete; medical history reviewed",
                actor=qa,
            )
        self.human(f"donor {cast.donor}: eligible (determination by QA Kenji Sato)")

    def reject_svf(self, cast: Cast, svf: str, why: str) -> None:
        with write_session(self.engine) as s:
            tech = s.exec(select(User).where(col(User.username) == cast.tech)).one()
            transition(
                s,
                material=get_material(s, svf, lock=True),
                to_state="REJECTED",
                actor=tech,
                reason=why,
            )
        self.human(f"SVF {label(svf)}: REJECTED by Yui Tanaka ({why})")


def run_pipeline_demo(
    database_url: str | None = None, on_run: Callable[[FlowRun], None] | None = None
) -> PipelineDemo:
    """Run the scenario; ``on_run`` hears of every flow run and every person's act."""
    started = time.perf_counter()
    with ephemeral_prefect() as startup:
        sc = _Scenario(database_url, on_run)
        out = sc.out
        out.prefect_startup = startup
        out.prefect_api = get_current_settings().api.url or "ephemeral server"
        cast = _cast(sc.engine)
        out.patient, out.recipient, out.donor = cast.patient, cast.recipient, cast.donor

        # Patient A (Ginza), autologous.
        lipo = sc.intake(cast, cast.patient, "120 mL", 0, f"GINZA-{cast.run}-1")
        out.donation = lipo
        svf = sc.svf(cast, lipo, 6, "1.9e7 cells", "86 %", nanofat=True).svf
        flasks = sc.seed(cast, svf, 8)
        p1 = sc.passage(cast, flasks[0], 53)
        cm = [
            sc.condition(cast, c, 77 + n, "4.2e6 cells", f"{60 - 5 * n} mL", f"TRIGAS-{n}")
            for n, c in enumerate(p1)
        ]
        # 58.75 + 53.75 mL of CM fill 28 vials of 4 mL (112 mL); 0.5 mL is line dead volume.
        lot_a = sc.fill(
            cast,
            [(cm[0], "58.75 mL"), (cm[1], "53.75 mL")],
            "28 vials",
            130,
            "A1",
            loss=("line dead volume", "0.5 mL"),
        )
        sc.qc(cast, lot_a, PASSING_QC)
        sc.qa_release(cast, lot_a)

        # Donor D (Osaka), allogeneic: eligibility, a failed SVF, two lots.
        sc.eligibility(cast)
        lipo_d = sc.intake(cast, cast.donor, "220 mL", 2, f"OSAKA-{cast.run}-1", "allogeneic")
        out.donor_donation = lipo_d
        failed = sc.svf(cast, lipo_d, 7, "1.2e7 cells", "58 %")
        sc.reject_svf(cast, failed.svf, "; ".join(failed.acceptance_failures))
        svf_d = sc.svf(cast, lipo_d, 8, "1.8e7 cells", "84 %").svf
        flasks_d = sc.seed(cast, svf_d, 9)
        cm_d = [
            sc.condition(cast, c, 55 + n, "3e6 cells", "45 mL", f"TRIGAS-D{n}")
            for n, c in enumerate(flasks_d)
        ]
        lot_d1 = sc.fill(
            cast,
            [(cm_d[0], "43.75 mL")],
            "10 vials",
            108,
            "A2",
            loss=("filter and line hold-up", "3.75 mL"),
        )
        lot_d2 = sc.fill(
            cast,
            [(cm_d[1], "43.75 mL")],
            "10 vials",
            109,
            "A3",
            loss=("filter and line hold-up", "3.75 mL"),
        )
        sc.qc(cast, lot_d1, PASSING_QC)
        sc.qa_release(cast, lot_d1)
        held = sc.qc(cast, lot_d2, {**PASSING_QC, "endotoxin": "120 EU/mL"})
        out.lots = {"A": lot_a, "D1": lot_d1, "D2": lot_d2}
        out.yields.append(f"lot {label(lot_d2)}: {held.state} ({held.status})")

        # Doses: three for A, one for B from D1; the mix-up; dispatch and receipt.
        ginza = "Ginza Hair Clinic, 4-1 Ginza, Tokyo"
        osaka = "Osaka Scalp Centre, 2-3 Umeda, Osaka"
        a_doses = [sc.order(cast, cast.patient, cast.ginza_desk, n, ginza) for n in (1, 2, 3)]
        b_dose = sc.order(cast, cast.recipient, cast.osaka_desk, 1, osaka, lot=lot_d1)
        for n, allocated in enumerate(a_doses[:2], start=1):
            sc.pack(cast, allocated.dose)
            sc.dispatch(cast, allocated.order, allocated.dose, f"TL-00{40 + n}")
            sc.receive(cast.ginza_desk, allocated.order, "Nurse K. Ito")
        sc.pack(cast, b_dose.dose)
        refused = sc.dispatch(cast, b_dose.order, a_doses[2].dose, "TL-0050", refusal=True)
        out.refusal = (
            (refused.message or "") if isinstance(refused, State) else "NOT REFUSED (a defect)"
        )
        sc.dispatch(cast, b_dose.order, b_dose.dose, "TL-0050")
        sc.receive(cast.osaka_desk, b_dose.order, "Nurse M. Sano")
        out.doses = {
            **{f"A session {n}": d.dose for n, d in enumerate(a_doses, start=1)},
            "B session 1": b_dose.dose,
        }
        sc.maintenance()
    out.seconds = time.perf_counter() - started
    with read_session(sc.engine) as s:
        out.custody_events = s.exec(select(func.count()).select_from(CustodyEvent)).one()
        rows = s.exec(
            select(Material.kind, Material.state, func.count()).group_by(
                col(Material.kind), col(Material.state)
            )
        ).all()
        out.materials = {(kind, state): n for kind, state, n in rows}
    return out


# --- on a console ----------------------------------------------------------------------------


def run_with_progress(console: Console, database_url: str | None = None) -> PipelineDemo:
    """Run the scenario with a progress bar; print each flow run and each person's act."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("starting Prefect (ephemeral server)", total=FLOW_RUNS)

        def on_run(run: FlowRun) -> None:
            if run.flow == PERSON:
                progress.console.print(f"  [magenta]person[/magenta]  {run.summary}")
                return
            mark = "[green]ok[/green]     " if run.ok else "[red]refused[/red]"
            progress.console.print(
                f"  {mark} {run.flow:<28} {run.seconds:5.2f} s  {run.summary}", highlight=False
            )
            progress.update(bar, advance=1, description=f"flow runs ({run.flow})")

        result = run_pipeline_demo(database_url, on_run=on_run)
        progress.update(bar, description="flow runs")
    return result


def print_summary(console: Console, result: PipelineDemo) -> None:
    console.print(
        f"\npatient A {result.patient} (Ginza, autologous), patient B {result.recipient} "
        f"(Osaka), donor D {result.donor} (Osaka, allogeneic)"
    )
    console.print("\nyields:")
    for line in result.yields:
        console.print(f"  {line}", highlight=False)
    console.print("\nrefused as it should be: dispatching patient A's dose on patient B's order:")
    console.print(f"  [red]{result.refusal}[/red]", highlight=False)
    table = Table(title="materials", show_edge=False, pad_edge=False)
    for column in ("kind", "state", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for (kind, state), n in sorted(result.materials.items()):
        table.add_row(kind, state, str(n))
    console.print()
    console.print(table)
    runs = [r for r in result.runs if r.flow != PERSON]
    console.print(
        f"\n{len(runs)} flow runs in {result.flow_seconds:.1f} s (mean "
        f"{result.flow_seconds / max(len(runs), 1):.2f} s per run); Prefect server ready in "
        f"{result.prefect_startup:.1f} s ({result.prefect_api}); demo {result.seconds:.1f} s; "
        f"{result.custody_events} custody events",
        highlight=False,
    )
