"""Flow parameters as a technician (or the API) would send them: plain JSON."""

from __future__ import annotations

from typing import Any

from flows.scenario_requests import Cast, Requests
from lims.sops.parameters import typical_parameters
from tests.builders import Lab

INTAKE = typical_parameters("LIPO-INTAKE")


def inst(*types: str) -> list[str]:
    """Asset tags of the world fixture's calibrated instruments."""
    return [f"{t[:12]}-1" for t in types]


def reag(*types: str) -> list[dict[str, str]]:
    """The world fixture's unexpired reagent lots."""
    return [{"reagent_type": t, "lot_number": f"{t[:3]}-1"} for t in types]


def when(lab: Lab, hours: float, who: str = "tanaka") -> dict[str, str]:
    return {"performed_by": who, "performed_at": lab.at(hours).isoformat()}


def intake(lab: Lab, coi: str, *, shipment: str = "SHIP-1", **over: Any) -> dict[str, Any]:
    return {
        "patient": coi,
        "volume": "120 mL",
        "collected_at": lab.at(0).isoformat(),
        "shipment_ref": shipment,
        "received_by": "tanaka",
        "inspection": {**when(lab, 4), "parameters": INTAKE},
        **over,
    }


def scenario(lab: Lab) -> Requests:
    """The demo scenario's stage requests for the world's facility, dated from ``lab``."""
    return Requests(Cast(run=1, facility=lab.world.facility), lab.t0)


def svf(lab: Lab, lipo: str, *, viability: str = "86 %", nanofat: bool = True) -> dict[str, Any]:
    return scenario(lab).svf(lipo, 6, "1.9e7 cells", viability, nanofat=nanofat)


def count(lab: Lab, hours: float, cells: str) -> dict[str, Any]:
    return scenario(lab).count(hours, cells)


def lot_fill(lab: Lab, cm: str, *, moisture: str = "1.2 %") -> dict[str, Any]:
    return {
        **when(lab, 101),
        "cm_batches": [{"cm_batch": cm, "volume": "60 mL"}],
        "vials": "15 vials",
        "instruments": inst("biosafety_cabinet"),
        "parameters": typical_parameters("AAPE-FILL"),
        "lyophilisation": {
            **when(lab, 120),
            "instruments": inst("freeze_dryer", "karl_fischer_titrator"),
            "parameters": typical_parameters("AAPE-LYO", residual_moisture=moisture),
        },
        "storage": {
            "site": "Lab 1",
            "freezer": "ULT-80-A",
            "rack": "R1",
            "box": "B1",
            "position": "A1",
            "temperature": "-80 degC",
        },
    }
