"""Flow parameters as a technician (or the API) would send them: plain JSON."""

from __future__ import annotations

from typing import Any

from tests.builders import Lab

INTAKE = {
    "transport_temperature": "6 degC",
    "temperature_excursion": False,
    "received_volume": "120 mL",
    "donor_site": "abdomen",
    "identity_verified": True,
    "container_intact": True,
}
SVF = {
    "collagenase_type": "I",
    "collagenase_concentration": "0.1 %",
    "digestion_temperature": "37 degC",
    "digestion_time": "45 min",
    "centrifugation_rcf": "1200 x g",
    "centrifugation_time": "10 min",
    "lysis": "NH4Cl",
    "filter_mesh": "100 µm",
    "viability": "86 %",
}
LYO = {
    "freezing_shelf_temperature": "-45 degC",
    "primary_drying_shelf_temperature": "-25 degC",
    "primary_drying_pressure": "100 mTorr",
    "secondary_drying_temperature": "40 degC",
    "secondary_drying_time": "4 h",
    "residual_moisture": "1.2 %",
    "cycle_trace_ref": "FD-CYCLE-0001",
}
CLARIFY = {
    "clarification_rcf": "13000 x g",
    "clarification_time": "10 min",
    "clarification_temperature": "4 degC",
    "filter_pore": "0.22 um",
    "hold": "fresh",
}


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


def svf(lab: Lab, lipo: str, *, viability: str = "86 %", nanofat: bool = True) -> dict[str, Any]:
    request: dict[str, Any] = {
        **when(lab, 6),
        "lipoaspirate": lipo,
        "taken": "100 mL",
        "cells": "1.9e7 cells",
        "instruments": inst("centrifuge", "shaking_incubator", "cell_counter"),
        "reagent_lots": reag("collagenase"),
        "parameters": {**SVF, "viability": viability},
    }
    if nanofat:
        request["nanofat"] = {
            **when(lab, 7),
            "taken": "20 mL",
            "made": "18 mL",
            "loss": {"quantity": "2 mL", "reason": "oil and fibrous residue on the filter"},
            "parameters": {
                "emulsification_passes": 30,
                "filter_mesh": "500 um",
                "needle_gauge": 27,
            },
        }
    return request


def count(lab: Lab, hours: float, cells: str) -> dict[str, Any]:
    return {
        **when(lab, hours),
        "instruments": inst("cell_counter"),
        "parameters": {"cell_count": cells, "viability": "93 %", "confluence": "85 %"},
    }


def lot_fill(lab: Lab, cm: str, *, moisture: str = "1.2 %") -> dict[str, Any]:
    return {
        **when(lab, 101),
        "cm_batches": [{"cm_batch": cm, "volume": "60 mL"}],
        "vials": "15 vials",
        "instruments": inst("biosafety_cabinet"),
        "parameters": {"fill_volume": "4 mL", "cryoprotectant": "trehalose"},
        "lyophilisation": {
            **when(lab, 120),
            "instruments": inst("freeze_dryer", "karl_fischer_titrator"),
            "parameters": {**LYO, "residual_moisture": moisture},
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
