"""What running a stage as a Prefect flow costs over calling the same services directly.

    python -m flows.overhead [--rounds 5] [--heartbeats]      (make flow-overhead)

On a fresh SQLite database (a temporary file) with the demo's cast, each round takes one
lipoaspirate from intake to a passaged culture twice: once by calling the ``lims``
services directly, each stage in one write transaction per step as the flows do, and once
through the stage flows on Prefect's ephemeral server. It prints, per stage, the median
wall time of both and the difference. ``--heartbeats`` keeps Prefect's flow-run heartbeat
thread on (the default for deployed flows; ``lims demo`` and the tests switch it off).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from flows.common import engine_for, user
from flows.culture import culture_passage, culture_seeding
from flows.demo import SVF_PARAMETERS, Cast, _cast
from flows.intake import lipoaspirate_intake
from flows.svf import svf_separation
from lims import migrate
from lims.db import utcnow, write_session
from lims.materials.kinds import MaterialKind, Use
from lims.materials.service import register_material
from lims.parties.models import Instrument, ReagentLot
from lims.parties.service import get_patient
from lims.steps.service import InputBooking, LossBooking, OutputRequest, record_step
from lims.units import QuantityKind, parse_quantity

STAGES = ("lipoaspirate-intake", "svf-separation", "culture-seeding", "culture-passage")


class Requests:
    """The same stage requests for both paths (as JSON, as a flow receives them)."""

    def __init__(self, cast: Cast, n: int) -> None:
        self.cast, self.n = cast, n
        self.t0 = utcnow() - timedelta(days=3)

    def at(self, hours: float) -> str:
        return (self.t0 + timedelta(hours=hours)).isoformat()

    def intake(self, tag: str) -> dict[str, Any]:
        return {
            "patient": self.cast.patient,
            "volume": "120 mL",
            "collected_at": self.at(0),
            "shipment_ref": f"OVERHEAD-{tag}-{self.n}",
            "received_by": self.cast.tech,
            "inspection": {
                "performed_by": self.cast.tech,
                "performed_at": self.at(3),
                "parameters": {
                    "transport_temperature": "6 degC",
                    "temperature_excursion": False,
                    "received_volume": "120 mL",
                    "donor_site": "abdomen",
                    "identity_verified": True,
                    "container_intact": True,
                },
            },
        }

    def svf(self, lipo: str) -> dict[str, Any]:
        c = self.cast
        return {
            "performed_by": c.tech,
            "performed_at": self.at(5),
            "lipoaspirate": lipo,
            "taken": "100 mL",
            "cells": "1.9e7 cells",
            "instruments": [
                c.instruments[k] for k in ("centrifuge", "shaking_incubator", "cell_counter")
            ],
            "reagent_lots": [c.reagents["collagenase"]],
            "parameters": {**SVF_PARAMETERS, "viability": "86 %"},
            "nanofat": {
                "performed_by": c.tech,
                "performed_at": self.at(6),
                "taken": "20 mL",
                "made": "18 mL",
                "loss": {"quantity": "2 mL", "reason": "residue on the filter"},
                "parameters": {
                    "emulsification_passes": 30,
                    "filter_mesh": "500 um",
                    "needle_gauge": 27,
                },
            },
        }

    def seed(self, svf: str) -> dict[str, Any]:
        c = self.cast
        return {
            "performed_by": c.tech,
            "performed_at": self.at(7),
            "svf": svf,
            "taken": "7e5 cells",
            "flasks": ["3.5e5 cells", "3.5e5 cells"],
            "instruments": [c.instruments["biosafety_cabinet"], c.instruments["co2_incubator"]],
            "reagent_lots": [c.reagents["culture_medium"]],
            "parameters": {"culture_area": "350 cm^2", "medium": "DMEM/F12 + hPL"},
        }

    def passage(self, culture: str) -> dict[str, Any]:
        c = self.cast
        return {
            "culture": culture,
            "count": {
                "performed_by": c.tech,
                "performed_at": self.at(50),
                "instruments": [c.instruments["cell_counter"]],
                "parameters": {
                    "cell_count": "2.8e6 cells",
                    "viability": "92 %",
                    "confluence": "85 %",
                },
            },
            "passage": {
                "performed_by": c.tech,
                "performed_at": self.at(51),
                "taken": "2.8e6 cells",
                "flasks": ["1.05e6 cells", "1.05e6 cells"],
                "loss": {"quantity": "7e5 cells", "reason": "count sample and excess"},
                "instruments": [c.instruments["biosafety_cabinet"], c.instruments["cell_counter"]],
                "reagent_lots": [c.reagents["culture_medium"]],
                "parameters": {
                    "harvested_cells": "2.8e6 cells",
                    "confluence": "85 %",
                    "viability": "92 %",
                    "culture_area": "700 cm^2",
                },
            },
        }


# --- the same work through the services, no Prefect ----------------------------------------


def _ids(
    engine: Engine, tags: list[str], lots: list[dict[str, str]]
) -> tuple[list[int], list[int]]:
    with Session(engine) as s:
        inst = [
            s.exec(select(Instrument.id).where(col(Instrument.asset_tag) == t)).one() for t in tags
        ]
        reag = [
            s.exec(
                select(ReagentLot.id).where(
                    col(ReagentLot.reagent_type) == r["reagent_type"],
                    col(ReagentLot.lot_number) == r["lot_number"],
                )
            ).one()
            for r in lots
        ]
    return [i for i in inst if i is not None], [r for r in reag if r is not None]


def _step(engine: Engine, username: str, **kw: Any) -> list[str]:
    with write_session(engine) as s:
        result = record_step(s, actor=user(s, username), **kw)
        return [m.material_id for m in result.outputs]


def direct_intake(engine: Engine, r: dict[str, Any]) -> str:
    with write_session(engine) as s:
        lipo = register_material(
            s,
            kind=MaterialKind.LIPOASPIRATE,
            patient=get_patient(s, coi_id=r["patient"]),
            use=Use.AUTOLOGOUS,
            quantity=parse_quantity(r["volume"], QuantityKind.VOLUME),
            actor=user(s, r["received_by"]),
            state="RECEIVED",
            collected_at=datetime.fromisoformat(r["collected_at"]),
        ).material_id
    i = r["inspection"]
    _step(
        engine,
        i["performed_by"],
        sop_code="LIPO-INTAKE",
        performed_at=datetime.fromisoformat(i["performed_at"]),
        inputs=[InputBooking(lipo)],
        parameters=i["parameters"],
    )
    return lipo


def direct_svf(engine: Engine, r: dict[str, Any]) -> str:
    inst, reag = _ids(engine, r["instruments"], r["reagent_lots"])
    (svf,) = _step(
        engine,
        r["performed_by"],
        sop_code="SVF-SEP",
        performed_at=datetime.fromisoformat(r["performed_at"]),
        inputs=[InputBooking(r["lipoaspirate"], r["taken"])],
        outputs=[OutputRequest(r["cells"])],
        parameters=r["parameters"],
        instrument_ids=inst,
        reagent_lot_ids=reag,
    )
    n = r["nanofat"]
    _step(
        engine,
        n["performed_by"],
        sop_code="NANOFAT-PREP",
        performed_at=datetime.fromisoformat(n["performed_at"]),
        inputs=[InputBooking(r["lipoaspirate"], n["taken"])],
        outputs=[OutputRequest(n["made"])],
        losses=[LossBooking(r["lipoaspirate"], n["loss"]["quantity"], n["loss"]["reason"])],
        parameters=n["parameters"],
    )
    return svf


def direct_seed(engine: Engine, r: dict[str, Any]) -> str:
    inst, reag = _ids(engine, r["instruments"], r["reagent_lots"])
    return _step(
        engine,
        r["performed_by"],
        sop_code="ADSC-SEED",
        performed_at=datetime.fromisoformat(r["performed_at"]),
        inputs=[InputBooking(r["svf"], r["taken"])],
        outputs=[OutputRequest(q) for q in r["flasks"]],
        parameters=r["parameters"],
        instrument_ids=inst,
        reagent_lot_ids=reag,
    )[0]


def direct_passage(engine: Engine, r: dict[str, Any]) -> None:
    c, p = r["count"], r["passage"]
    inst, _ = _ids(engine, c["instruments"], [])
    _step(
        engine,
        c["performed_by"],
        sop_code="CULTURE-COUNT",
        performed_at=datetime.fromisoformat(c["performed_at"]),
        inputs=[InputBooking(r["culture"])],
        parameters=c["parameters"],
        instrument_ids=inst,
    )
    inst, reag = _ids(engine, p["instruments"], p["reagent_lots"])
    _step(
        engine,
        p["performed_by"],
        sop_code="ADSC-PASSAGE",
        performed_at=datetime.fromisoformat(p["performed_at"]),
        inputs=[InputBooking(r["culture"], p["taken"])],
        outputs=[OutputRequest(q) for q in p["flasks"]],
        losses=[LossBooking(r["culture"], p["loss"]["quantity"], p["loss"]["reason"])],
        parameters=p["parameters"],
        instrument_ids=inst,
        reagent_lot_ids=reag,
    )


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, out


def measure(database_url: str, rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    """Per stage: (direct seconds, flow seconds) for each round."""
    engine = engine_for(database_url)
    migrate.upgrade(engine)
    cast = _cast(engine)
    times: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in STAGES}
    url = {"database_url": database_url}
    for n in range(rounds):
        rq = Requests(cast, n)
        # Direct: the services, each step in its own write transaction.
        t1, lipo = _timed(direct_intake, engine, rq.intake("direct"))
        t2, svf = _timed(direct_svf, engine, rq.svf(lipo))
        t3, culture = _timed(direct_seed, engine, rq.seed(svf))
        t4, _ = _timed(direct_passage, engine, rq.passage(culture))
        # The same through the flows.
        f1, got = _timed(lipoaspirate_intake, request=rq.intake("flow"), **url)
        f2, sep = _timed(svf_separation, request=rq.svf(got.lipoaspirate), **url)
        f3, seeded = _timed(culture_seeding, request=rq.seed(sep.svf), **url)
        f4, _ = _timed(culture_passage, request=rq.passage(seeded.cultures[0]), **url)
        for stage, direct, flow in zip(STAGES, (t1, t2, t3, t4), (f1, f2, f3, f4), strict=True):
            times[stage][0].append(direct)
            times[stage][1].append(flow)
    return times


def main() -> None:
    from flows.demo import ephemeral_prefect

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--heartbeats", action="store_true", help="keep flow-run heartbeats on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ephemeral_prefect() as startup:
        url = f"sqlite:///{Path(tmp) / 'overhead.db'}"
        if args.heartbeats:
            from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

            with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 180}):
                times = measure(url, args.rounds)
        else:
            times = measure(url, args.rounds)
    print(f"Prefect ephemeral server ready in {startup:.1f} s; {args.rounds} rounds, medians:")
    print(f"{'stage':<22} {'direct':>9} {'flow':>9} {'overhead':>9}")
    for stage, (direct, flow) in times.items():
        d, f = statistics.median(direct), statistics.median(flow)
        print(f"{stage:<22} {d * 1000:7.0f} ms {f * 1000:7.0f} ms {(f - d) * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
