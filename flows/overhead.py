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

from flows.common import engine_for, user
from flows.culture import culture_passage, culture_seeding
from flows.intake import lipoaspirate_intake
from flows.scenario_requests import Cast, Requests, set_up_cast
from flows.svf import svf_separation
from lims import migrate
from lims.db import utcnow, write_session
from lims.materials.kinds import MaterialKind, Use
from lims.materials.service import register_material
from lims.parties.service import get_patient
from lims.steps.service import InputBooking, LossBooking, OutputRequest, record_step
from lims.units import QuantityKind, parse_quantity

STAGES = ("lipoaspirate-intake", "svf-separation", "culture-seeding", "culture-passage")


def requests(cast: Cast, n: int) -> dict[str, Callable[..., dict[str, Any]]]:
    """The same stage requests for both paths (as JSON, as a flow receives them): the
    demo scenario's, dated from three days ago."""
    rq = Requests(cast, utcnow() - timedelta(days=3))
    return {
        "intake": lambda tag: rq.intake(cast.patient, "120 mL", 0, f"OVERHEAD-{tag}-{n}"),
        "svf": lambda lipo: rq.svf(lipo, 5, "1.9e7 cells", "86 %", nanofat=True),
        "seed": lambda svf: rq.seed(svf, 7),
        "passage": lambda culture: rq.passage(culture, 51),
    }


# --- the same work through the services, no Prefect ----------------------------------------


def _ids(cast: Cast, tags: list[str], lots: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Instrument and reagent lot ids of a request's asset tags and lot references."""
    f = cast.facility
    by_tag = {tag: f.instrument_ids[kind] for kind, tag in f.instrument_tags.items()}
    by_lot = {(kind, lot): f.reagent_ids[kind] for kind, lot in f.reagent_lots.items()}
    return [by_tag[t] for t in tags], [by_lot[r["reagent_type"], r["lot_number"]] for r in lots]


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


def direct_svf(engine: Engine, cast: Cast, r: dict[str, Any]) -> str:
    inst, reag = _ids(cast, r["instruments"], r["reagent_lots"])
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


def direct_seed(engine: Engine, cast: Cast, r: dict[str, Any]) -> str:
    inst, reag = _ids(cast, r["instruments"], r["reagent_lots"])
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


def direct_passage(engine: Engine, cast: Cast, r: dict[str, Any]) -> None:
    c, p = r["count"], r["passage"]
    inst, _ = _ids(cast, c["instruments"], [])
    _step(
        engine,
        c["performed_by"],
        sop_code="CULTURE-COUNT",
        performed_at=datetime.fromisoformat(c["performed_at"]),
        inputs=[InputBooking(r["culture"])],
        parameters=c["parameters"],
        instrument_ids=inst,
    )
    inst, reag = _ids(cast, p["instruments"], p["reagent_lots"])
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
    cast = set_up_cast(engine)
    times: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in STAGES}
    url = {"database_url": database_url}
    for n in range(rounds):
        rq = requests(cast, n)
        # Direct: the services, each step in its own write transaction.
        t1, lipo = _timed(direct_intake, engine, rq["intake"]("direct"))
        t2, svf = _timed(direct_svf, engine, cast, rq["svf"](lipo))
        t3, culture = _timed(direct_seed, engine, cast, rq["seed"](svf))
        t4, _ = _timed(direct_passage, engine, cast, rq["passage"](culture))
        # The same through the flows.
        f1, got = _timed(lipoaspirate_intake, request=rq["intake"]("flow"), **url)
        f2, sep = _timed(svf_separation, request=rq["svf"](got.lipoaspirate), **url)
        f3, seeded = _timed(culture_seeding, request=rq["seed"](sep.svf), **url)
        f4, _ = _timed(culture_passage, request=rq["passage"](seeded.cultures[0]), **url)
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
