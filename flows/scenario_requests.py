"""The demo scenario's cast and its stage requests, written once: the JSON a technician
(or the API) sends each stage flow, with the SOPs' typical parameters
(``lims.sops.parameters.typical_parameters``) and the facility of ``lims.demo``.

``lims demo``, bench/flows.py, flows/overhead.py (which also records the same requests
through the services directly) and flows/scale.py build their runs from these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from lims.db import utcnow, write_session
from lims.demo import Facility, register_people, set_up_facility
from lims.parties.queries import patient_count
from lims.sops.parameters import typical_parameters

# Where the demo's lots are stored (a box per run).
FREEZER = {"site": "Lab 1", "freezer": "ULT-80-A", "rack": "R1", "temperature": "-80 degC"}


@dataclass
class Cast:
    """Who and what a scenario run uses: the facility's staff, desks, people, resources."""

    run: int
    facility: Facility
    tech: str = "tanaka"
    tech2: str = "mori"
    qa: str = "sato"

    @property
    def ginza_desk(self) -> str:
        return self.facility.desks["GINZA"]

    @property
    def osaka_desk(self) -> str:
        return self.facility.desks["OSAKA"]

    @property
    def patient(self) -> str:
        return self.facility.people["patient"]

    @property
    def recipient(self) -> str:
        return self.facility.people["recipient"]

    @property
    def donor(self) -> str:
        return self.facility.people["donor"]

    def instruments(self, *kinds: str) -> list[str]:
        """Asset tags of this run's instruments of these types."""
        return [self.facility.instrument_tags[k] for k in kinds]

    def reagents(self, *kinds: str) -> list[dict[str, str]]:
        """This run's reagent lots of these types, as a flow request names them."""
        return [{"reagent_type": k, "lot_number": self.facility.reagent_lots[k]} for k in kinds]


def set_up_cast(engine: Engine) -> Cast:
    """The demo facility and a new run of its people (through the services)."""
    with write_session(engine) as s:
        run = patient_count(s) // 3 + 1
        facility = set_up_facility(s, tag=f"F{run}")
        register_people(s, facility=facility, tag=f"F{run:05d}")
    return Cast(run=run, facility=facility)


class Requests:
    """Stage requests for ``cast``, dated in hours from ``t0`` (default 6.5 days ago: the
    SOPs check real elapsed time, and 48 h of hypoxia cannot pass in a second)."""

    def __init__(self, cast: Cast, t0: datetime | None = None) -> None:
        self.cast = cast
        self.t0 = t0 or utcnow() - timedelta(days=6, hours=12)

    def at(self, hours: float) -> str:
        return (self.t0 + timedelta(hours=hours)).isoformat()

    def did(self, hours: float | None = None, who: str | None = None) -> dict[str, Any]:
        """Who did a step and when (now when ``hours`` is None)."""
        return {
            "performed_by": who or self.cast.tech,
            "performed_at": self.at(hours) if hours is not None else utcnow().isoformat(),
        }

    def intake(
        self, coi: str, volume: str, hours: float, shipment: str, use: str = "autologous"
    ) -> dict[str, Any]:
        return {
            "patient": coi,
            "use": use,
            "volume": volume,
            "collected_at": self.at(hours),
            "shipment_ref": shipment,
            "container": "250 mL sterile canister",
            "received_by": self.cast.tech,
            "inspection": {
                **self.did(hours + 3),
                "parameters": typical_parameters("LIPO-INTAKE", received_volume=volume),
            },
        }

    def svf(
        self, lipo: str, hours: float, cells: str, viability: str, nanofat: bool = False
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            **self.did(hours),
            "lipoaspirate": lipo,
            "taken": "100 mL",
            "cells": cells,
            "instruments": self.cast.instruments("centrifuge", "shaking_incubator", "cell_counter"),
            "reagent_lots": self.cast.reagents("collagenase"),
            "parameters": typical_parameters("SVF-SEP", viability=viability),
        }
        if nanofat:
            request["nanofat"] = {
                **self.did(hours + 1),
                "taken": "20 mL",
                "made": "18 mL",
                "loss": {"quantity": "2 mL", "reason": "oil and fibrous residue on the filter"},
                "parameters": typical_parameters("NANOFAT-PREP"),
            }
        return request

    def seed(self, svf: str, hours: float) -> dict[str, Any]:
        return {
            **self.did(hours),
            "svf": svf,
            "taken": "7e5 cells",
            "flasks": ["3.5e5 cells", "3.5e5 cells"],
            "instruments": self.cast.instruments("biosafety_cabinet", "co2_incubator"),
            "reagent_lots": self.cast.reagents("culture_medium"),
            "parameters": typical_parameters("ADSC-SEED"),
        }

    def count(self, hours: float, cells: str) -> dict[str, Any]:
        return {
            **self.did(hours),
            "instruments": self.cast.instruments("cell_counter"),
            "parameters": typical_parameters("CULTURE-COUNT", cell_count=cells),
        }

    def passage(self, culture: str, hours: float) -> dict[str, Any]:
        """Count, then passage the 2.8e6 cells into two flasks; 7e5 cells are the count
        sample and the excess."""
        return {
            "culture": culture,
            "count": self.count(hours - 1, "2.8e6 cells"),
            "passage": {
                **self.did(hours),
                "taken": "2.8e6 cells",
                "flasks": ["1.05e6 cells", "1.05e6 cells"],
                "loss": {"quantity": "7e5 cells", "reason": "count sample and excess"},
                "instruments": self.cast.instruments("biosafety_cabinet", "cell_counter"),
                "reagent_lots": self.cast.reagents("culture_medium"),
                "parameters": typical_parameters("ADSC-PASSAGE", harvested_cells="2.8e6 cells"),
            },
        }

    def hypoxia(self, culture: str, hours: float, cells: str) -> dict[str, Any]:
        return {
            **self.did(hours),
            "culture": culture,
            "count": self.count(hours - 1, cells),
            "instruments": self.cast.instruments("trigas_incubator"),
            "reagent_lots": self.cast.reagents("culture_medium"),
            "parameters": typical_parameters("HYPOXIA-START"),
        }

    def harvest(self, culture: str, hours: float, volume: str, log: str) -> dict[str, Any]:
        """Harvest 48 h after hypoxia started at ``hours``; clarify it 2 h later."""
        return {
            **self.did(hours + 48),
            "culture": culture,
            "volume": volume,
            "instruments": self.cast.instruments("trigas_incubator"),
            "parameters": typical_parameters("CM-HARVEST", o2_log_ref=log),
            "clarification": {
                **self.did(hours + 50),
                "loss": {"quantity": "1.25 mL", "reason": "filter hold-up volume"},
                "instruments": self.cast.instruments("centrifuge"),
                "reagent_lots": self.cast.reagents("sterile_filter"),
                "parameters": typical_parameters("CM-CLARIFY"),
            },
        }

    def fill(
        self,
        draws: list[tuple[str, str]],
        vials: str,
        hours: float,
        position: str,
        loss: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Fill ``vials`` from (CM batch, volume) draws, lyophilise 20 h later, store."""
        batches: list[dict[str, Any]] = [{"cm_batch": cm, "volume": v} for cm, v in draws]
        if loss:
            batches[-1]["loss"] = {"quantity": loss[1], "reason": loss[0]}
        return {
            **self.did(hours),
            "cm_batches": batches,
            "vials": vials,
            "instruments": self.cast.instruments("biosafety_cabinet"),
            "parameters": typical_parameters("AAPE-FILL"),
            "lyophilisation": {
                **self.did(hours + 20),
                "instruments": self.cast.instruments("freeze_dryer", "karl_fischer_titrator"),
                "parameters": typical_parameters(
                    "AAPE-LYO", cycle_trace_ref=f"FD-CYCLE-{position}"
                ),
            },
            "storage": {**FREEZER, "box": f"F{self.cast.run}", "position": position},
        }

    def qc(self, lot: str, results: dict[str, str]) -> dict[str, Any]:
        tested = utcnow().isoformat()
        return {
            "lot": lot,
            "started_by": self.cast.tech,
            "results": [
                {"test": t, "value": v, "tested_at": tested, "entered_by": self.cast.tech2}
                for t, v in results.items()
            ],
        }

    def order(
        self, coi: str, desk: str, session_number: int, ship_to: str, lot: str | None = None
    ) -> dict[str, Any]:
        return {
            "order": {
                "patient": coi,
                "placed_by": desk,
                "dose": "1 vial",
                "session_number": session_number,
                "sessions_total": 6,
                # Session n four weeks after session n-1 (AAPE: every 3-5 weeks [2][3]).
                "planned_use_at": (
                    utcnow() + timedelta(days=3, weeks=4 * (session_number - 1))
                ).isoformat(),
                "ship_to": ship_to,
                "prescriber": "Dr. H. Fukuoka",
                "consent_ref": f"CONSENT-{coi[-6:]}",
            },
            "allocated_by": self.cast.tech,
            "lot": lot,
        }

    def dispatch(self, order: str, scanned_label: str, logger: str) -> dict[str, Any]:
        return {
            "order": order,
            "scanned_label": scanned_label,
            "shipper": "ColdChain Couriers",
            "temperature_logger": logger,
            "transit": "20 h",
            "dispatched_by": self.cast.tech,
        }

    def receipt(
        self, desk: str, order: str, nurse: str, temperature: str = "4.1 degC"
    ) -> dict[str, Any]:
        return {
            "order": order,
            "received_at": utcnow().isoformat(),
            "temperature": temperature,
            "received_by": nurse,
            "confirmed_by": desk,
        }
