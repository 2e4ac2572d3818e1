"""What the hosts run (flows/hosts.py) goes through: donations' intake and SVF stages
through the deployments on both workers; one worker host's link cut mid-flow and that run
done again on the other; one API host killed (SIGKILL) while a client retries with
Idempotency-Keys against the other. Everything is then checked in the LIMS database."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from flows.common import engine_for
from flows.hosts import APIS, WORKERS, Topology, started
from lims.custody.ledger import verify_chain
from lims.db import read_session, utcnow, write_session
from lims.identity.codes import parse_material_id
from lims.materials.service import get_material
from lims.orders.queries import order_numbers_with_consent_prefix
from lims.parties.queries import find_clinic, get_user
from lims.parties.service import register_patient
from lims.signatures.passwords import set_password
from lims.steps.conservation import verify_conservation
from lims.steps.queries import step_counts, steps_taking

DONATIONS = 4
ORDERS = 30
PASSWORD = "hosts-run-password-18"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class HostsCheck:
    timings: dict[str, float] = field(default_factory=dict)
    runs_per_worker: dict[str, int] = field(default_factory=dict)
    cut_worker: str = ""
    steps_at_cut: int = 0
    steps: dict[str, int] = field(default_factory=dict)
    duplicate_steps: int = 0
    conservation_ok: bool = False
    chain_ok: bool = False
    custody_events: int = 0
    orders_sent: int = 0
    orders_stored: int = 0
    retries: int = 0
    replays_checked: int = 0
    replays_same: int = 0
    killed_api: str = ""

    def lines(self) -> list[str]:
        return [
            "timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()),
            f"flow runs per worker host: {self.runs_per_worker}",
            f"link of {self.cut_worker} cut with {self.steps_at_cut} of its run's 2 steps "
            "committed; that run done again on the other worker",
            f"steps: {self.steps}; duplicates {self.duplicate_steps}; conservation "
            f"{'holds' if self.conservation_ok else 'BROKEN'}; custody chain "
            f"{'verifies' if self.chain_ok else 'BROKEN'} ({self.custody_events} events)",
            f"orders: {self.orders_sent} sent, {self.orders_stored} stored, {self.retries} "
            f"retried on the other API host after {self.killed_api} was killed (SIGKILL); "
            f"{self.replays_same}/{self.replays_checked} replays gave the first answer",
        ]


def _ids_after(log: str, marker: str) -> set[str]:
    return {line.split(marker)[1].split("'")[0] for line in log.splitlines() if marker in line}


def _runs_of(top: Topology, worker: str) -> set[str]:
    """The flow runs this worker host ran: submitted, and not lost to the other worker
    (both may pick the same run up; the server lets one of them have it)."""
    log = (top.workdir / f"{worker}.log").read_text(errors="replace")
    submitted = _ids_after(log, "submitting flow run '")
    return submitted - _ids_after(log, "Aborted submission of flow run '")


def _submit(name: str, request: dict[str, Any]) -> UUID:
    from prefect.deployments import run_deployment

    run = run_deployment(name, parameters={"request": request}, timeout=0)
    return run.id  # type: ignore[union-attr]


def _wait(ids: list[UUID], timeout: float = 240) -> dict[UUID, Any]:
    from prefect import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = {i: client.read_flow_run(i) for i in ids}
            if all(r.state and r.state.type.value in FINAL for r in runs.values()):
                return runs
            if time.monotonic() > deadline:
                states = {r.name: r.state and r.state.name for r in runs.values()}
                raise TimeoutError(f"flow runs not finished: {states}")
            time.sleep(0.5)


def _steps_on(top: Topology, lipo: str) -> int:
    with read_session(engine_for(top.lims_url)) as s:
        return steps_taking(s, material=get_material(s, lipo), except_sop="LIPO-INTAKE")


def run_stages(top: Topology, check: HostsCheck) -> None:
    from prefect import get_client
    from prefect.states import Crashed

    from flows.scenario_requests import Requests, set_up_cast

    engine = engine_for(top.lims_url)
    cast = set_up_cast(engine)
    rq = Requests(cast, utcnow() - timedelta(hours=8))
    tag = uuid.uuid4().hex[:6]
    mark = time.perf_counter()
    intakes = [
        _submit("lipoaspirate-intake/lims", rq.intake(cast.patient, "120 mL", 0, f"H-{tag}-{i}"))
        for i in range(DONATIONS)
    ]
    done = _wait(intakes)
    assert all(r.state.is_completed() for r in done.values()), [r.state for r in done.values()]
    lipos = [parse_material_id(done[i].name.split(" · ")[1]) for i in intakes]
    check.timings[f"{DONATIONS} intakes"] = time.perf_counter() - mark
    mark = time.perf_counter()
    svf_requests = {lipo: rq.svf(lipo, 5, "1.9e7 cells", "86 %", nanofat=True) for lipo in lipos}
    svfs = {_submit("svf-separation/lims", r): lipo for lipo, r in svf_requests.items()}
    # The first run seen with its SVF step committed: its worker host loses its link.
    deadline = time.monotonic() + 180
    victim: UUID | None = None
    while victim is None:
        assert time.monotonic() < deadline, "no SVF run got to its first step"
        for run_id, lipo in svfs.items():
            worker = next((w for w in WORKERS if str(run_id) in _runs_of(top, w)), None)
            if worker and _steps_on(top, lipo) >= 1:
                victim, check.cut_worker = run_id, worker
                top.net.cut(worker)
                break
        time.sleep(0.02)
    check.steps_at_cut = _steps_on(top, svfs[victim])
    with get_client(sync_client=True) as client:  # what an operator does: the run is lost
        client.set_flow_run_state(
            victim, Crashed(message=f"worker host {check.cut_worker} lost its link"), force=True
        )
    rerun = _submit("svf-separation/lims", svf_requests[svfs[victim]])
    others = [i for i in svfs if i != victim] + [rerun]
    done = _wait(others)
    assert all(r.state.is_completed() for r in done.values()), [r.state for r in done.values()]
    survivor = next(w for w in WORKERS if w != check.cut_worker)
    assert str(rerun) in _runs_of(top, survivor), "the re-run was not on the other worker"
    check.timings[f"{DONATIONS} SVF runs, one cut and re-run"] = time.perf_counter() - mark
    ours = {str(i) for i in [*intakes, *svfs, rerun]}
    check.runs_per_worker = {w: len(_runs_of(top, w) & ours) for w in WORKERS}
    with read_session(engine) as s:
        check.steps = step_counts(s)
    check.duplicate_steps = sum(n - DONATIONS for n in check.steps.values())
    for lipo in lipos:
        check.duplicate_steps += abs(_steps_on(top, lipo) - 2)


def _sign_in(url: str, username: str) -> str:
    response = httpx.post(
        f"{url}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def run_api_kill(top: Topology, check: HostsCheck) -> None:
    engine = engine_for(top.lims_url)
    from flows.scenario_requests import set_up_cast

    cast = set_up_cast(engine)
    desk = cast.ginza_desk
    tag = uuid.uuid4().hex[:6]
    with write_session(engine) as s:
        user = get_user(s, username=desk)
        set_password(s, user=user, password=PASSWORD, actor=None)
        # One patient per order: a course's session is ordered once (lims.orders.course).
        clinic = find_clinic(s, code="GINZA")
        assert clinic is not None
        patients = [
            register_patient(
                s, clinic=clinic, identifier_1=f"hosts-{tag}", identifier_2=f"order-{i}"
            ).coi_id
            for i in range(ORDERS)
        ]
    first, other = (top.api_urls[a] for a in APIS)
    headers = {"Authorization": f"Bearer {_sign_in(first, desk)}"}
    answered: dict[str, str] = {}
    bodies = {f"hosts-{tag}-{i}": _order(patients[i], f"hosts-{tag}-{i}") for i in range(ORDERS)}
    kill_at = threading.Event()
    victim = top.procs[APIS[0]]

    def killer() -> None:
        kill_at.wait(60)
        # It may have died already: victim.wait below and the orders' check say so.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(victim.pid, signal.SIGKILL)

    threading.Thread(target=killer, daemon=True).start()
    mark = time.perf_counter()
    target = first
    with httpx.Client(timeout=10) as client:
        for key, body in bodies.items():
            for _attempt in range(5):
                try:
                    r = client.post(
                        f"{target}/api/v1/clinic/orders",
                        json=body,
                        headers=headers | {"Idempotency-Key": key},
                    )
                except httpx.TransportError:
                    check.retries += 1
                    target = other  # that host is gone: the same request to the other one
                    continue
                assert r.status_code in (200, 201), r.text
                answered[key] = r.json()["number"]
                break
            if len(answered) == ORDERS // 3:
                kill_at.set()
        check.timings[f"{ORDERS} orders, one API host killed"] = time.perf_counter() - mark
        victim.wait(timeout=30)
        check.killed_api = APIS[0]
        for key in list(answered)[: ORDERS // 2]:  # the first ones again, on the survivor
            r = client.post(
                f"{other}/api/v1/clinic/orders",
                json=bodies[key],
                headers=headers | {"Idempotency-Key": key},
            )
            check.replays_checked += 1
            replayed = r.headers.get("idempotent-replayed") == "true"
            check.replays_same += int(replayed and r.json().get("number") == answered[key])
    check.orders_sent = len(answered)
    with read_session(engine) as s:
        numbers = order_numbers_with_consent_prefix(s, prefix=f"hosts-{tag}-")
    check.orders_stored = len(numbers)
    assert set(numbers) == set(answered.values()), "an order lost or one the client never saw"


def _order(coi: str, ref: str) -> dict[str, Any]:
    return {
        "coi_id": coi,
        "product": "aape",
        "dose": "1 vial",
        "session_number": 1,
        "sessions_total": 6,
        "planned_use_at": (utcnow() + timedelta(days=3)).replace(microsecond=0).isoformat(),
        "ship_to": "Ginza Hair Clinic, Tokyo",
        "prescriber": "Dr. H. Fukuoka",
        "consent_ref": ref,
    }


def run_hosts_check(workdir: Path) -> HostsCheck:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    check = HostsCheck()
    t0 = time.perf_counter()
    with started(workdir) as top:
        check.timings.update(top.timings)
        with temporary_settings(updates={PREFECT_API_URL: top.prefect_api}):
            run_stages(top, check)
        run_api_kill(top, check)
        with read_session(engine_for(top.lims_url)) as s:
            check.conservation_ok = verify_conservation(s).ok
            chain = verify_chain(s)
            check.chain_ok, check.custody_events = chain.ok, chain.events
    check.timings["total"] = time.perf_counter() - t0
    return check
