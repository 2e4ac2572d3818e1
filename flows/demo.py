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
* At the clinics (flows/scenario_clinic.py): A's session 2 arrives at 12 degC and is
  quarantined until QA releases it; A's session 3 is cancelled and QA returns its vial to
  the lot; A's session 1 is reconstituted, a bedside scan of B's wristband is refused, and
  the dose is given to A.

What people do, people do here too, through the services and with their passwords: QA's
release signature and the eligibility determination, the packer's and the verifier's
signatures, a technician rejecting the failed SVF. Everything else is a flow run. The
cast, the requests and the people's acts are flows/scenario.py's; this module tells the
story and prints it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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

from flows.common import label
from flows.scenario import PERSON, DemoFailed, FlowRun, PipelineDemo, Scenario
from flows.scenario_clinic import EXCURSION, bedside, cancel_and_return, release_after_excursion
from flows.scenario_requests import Cast, set_up_cast
from lims.db import read_session
from lims.demo import PASSING_AAPE_QC, custody_event_count, material_counts

__all__ = ["DemoFailed", "ephemeral_prefect", "print_summary", "run_with_progress"]

# How many flow runs the scenario makes (for the progress bar).
FLOW_RUNS = 34
GINZA = "Ginza Hair Clinic, 4-1 Ginza, Tokyo"
OSAKA = "Osaka Scalp Centre, 2-3 Umeda, Osaka"


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


def patient_a_donation(sc: Scenario, cast: Cast, shipment: str, logger: str = "TL-00") -> str:
    """Patient A's own fat from intake to a released lot of 28 vials, three doses ordered
    and allocated, two packed, dispatched and received; returns the lot. The doses' ids
    go to ``sc.out.doses`` ("A session n")."""
    lipo = sc.intake(cast, cast.patient, "120 mL", 0, shipment)
    sc.out.donation = sc.out.donation or lipo
    svf = sc.svf(cast, lipo, 6, "1.9e7 cells", "86 %", nanofat=True).svf
    flasks = sc.seed(cast, svf, 8)
    p1 = sc.passage(cast, flasks[0], 53)
    cm = [
        sc.condition(cast, c, 77 + n, "4.2e6 cells", f"{60 - 5 * n} mL", f"TRIGAS-{n}")
        for n, c in enumerate(p1)
    ]
    # 58.75 + 53.75 mL of CM fill 28 vials of 4 mL (112 mL); 0.5 mL is line dead volume.
    lot = sc.fill(
        cast,
        [(cm[0], "58.75 mL"), (cm[1], "53.75 mL")],
        "28 vials",
        130,
        "A1",
        loss=("line dead volume", "0.5 mL"),
    )
    sc.qc(cast, lot, PASSING_AAPE_QC)
    sc.qa_release(cast, lot)
    doses = [sc.order(cast, cast.patient, cast.ginza_desk, n, GINZA) for n in (1, 2, 3)]
    for n, allocated in enumerate(doses[:2], start=1):
        sc.pack(cast, allocated.dose)
        sc.dispatch(cast, allocated.order, allocated.dose, f"{logger}{40 + n}")
        # Session 2 arrives warm: quarantined at the clinic for QA (flows/scenario_clinic).
        temperature = EXCURSION if n == 2 else "4.1 degC"
        sc.receive(cast, cast.ginza_desk, allocated.order, "Nurse K. Ito", temperature)
    sc.out.doses.update({f"A session {n}": d.dose for n, d in enumerate(doses, start=1)})
    sc.out.orders.update({f"A session {n}": d.order for n, d in enumerate(doses, start=1)})
    return lot


def donor_d_lots(sc: Scenario, cast: Cast) -> tuple[str, str]:
    """Donor D (allogeneic): eligibility, a failed SVF rejected, a second one cultured into
    lot D1 (released) and lot D2 (on hold for an out-of-specification endotoxin result)."""
    sc.eligibility(cast)
    lipo_d = sc.intake(cast, cast.donor, "220 mL", 2, f"OSAKA-{cast.run}-1", "allogeneic")
    sc.out.donor_donation = lipo_d
    failed = sc.svf(cast, lipo_d, 7, "1.2e7 cells", "58 %")
    sc.reject_svf(cast, failed.svf, "; ".join(failed.acceptance_failures))
    svf_d = sc.svf(cast, lipo_d, 8, "1.8e7 cells", "84 %").svf
    flasks_d = sc.seed(cast, svf_d, 9)
    cm_d = [
        sc.condition(cast, c, 55 + n, "3e6 cells", "45 mL", f"TRIGAS-D{n}")
        for n, c in enumerate(flasks_d)
    ]
    # 45 mL harvested, 1.25 mL held up in clarification: 43.75 mL, 10 vials of 4 mL.
    lots = [
        sc.fill(
            cast,
            [(cm, "43.75 mL")],
            "10 vials",
            108 + n,
            f"A{2 + n}",
            loss=("filter and line hold-up", "3.75 mL"),
        )
        for n, cm in enumerate(cm_d)
    ]
    sc.qc(cast, lots[0], PASSING_AAPE_QC)
    sc.qa_release(cast, lots[0])
    held = sc.qc(cast, lots[1], {**PASSING_AAPE_QC, "endotoxin": "120 EU/mL"})
    sc.out.yields.append(f"lot {label(lots[1])}: {held.state} ({held.status})")
    return lots[0], lots[1]


def run_pipeline_demo(
    database_url: str | None = None, on_run: Callable[[FlowRun], None] | None = None
) -> PipelineDemo:
    """Run the scenario; ``on_run`` hears of every flow run and every person's act."""
    started = time.perf_counter()
    with ephemeral_prefect() as startup:
        sc = Scenario(database_url, on_run)
        out = sc.out
        out.prefect_startup = startup
        out.prefect_api = get_current_settings().api.url or "ephemeral server"
        cast = set_up_cast(sc.engine)
        out.patient, out.recipient, out.donor = cast.patient, cast.recipient, cast.donor
        lot_a = patient_a_donation(sc, cast, f"GINZA-{cast.run}-1")
        lot_d1, lot_d2 = donor_d_lots(sc, cast)
        out.lots = {"A": lot_a, "D1": lot_d1, "D2": lot_d2}
        # Patient B from D1; a packer scans A's third dose on B's order: the gate refuses.
        b_dose = sc.order(cast, cast.recipient, cast.osaka_desk, 1, OSAKA, lot=lot_d1)
        sc.pack(cast, b_dose.dose)
        refused = sc.dispatch(cast, b_dose.order, out.doses["A session 3"], "TL-0050", refusal=True)
        out.refusal = (
            (refused.message or "") if isinstance(refused, State) else "NOT REFUSED (a defect)"
        )
        sc.dispatch(cast, b_dose.order, b_dose.dose, "TL-0050")
        sc.receive(cast, cast.osaka_desk, b_dose.order, "Nurse M. Sano")
        out.doses["B session 1"] = b_dose.dose
        # The clinic's end: QA's excursion release, a cancelled dose returned to its lot,
        # a bedside scan of the wrong patient refused and the dose given to the right one.
        release_after_excursion(sc, cast, out.doses["A session 2"])
        cancel_and_return(sc, cast, out.orders["A session 3"], out.doses["A session 3"])
        bedside(sc, cast, out.doses["A session 1"], wrong_patient=cast.recipient)
        sc.maintenance()
    out.seconds = time.perf_counter() - started
    with read_session(sc.engine) as s:
        out.custody_events = custody_event_count(s)
        out.materials = material_counts(s)
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
    console.print("refused as it should be: patient B's wristband scanned for A's dose:")
    console.print(f"  [red]{result.bedside_refusal}[/red]", highlight=False)
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
