"""Concurrency soak over real HTTP: clinics ordering, technicians allocating from the same
few lots and booking from the same parent, clinics cancelling, an auditor re-verifying,
all at once for a bounded time; every write appends to the one custody chain.

Afterwards, from the database: no quantity below zero, no lot gave more than it held,
conservation holds for every material and step, the chain verifies, every acknowledged
write is there (nothing lost) and every refused request got a 4xx problem+json with a
reason (no 5xx, no dropped connection).

Runs on each database of the run (PostgreSQL when LIMS_TEST_POSTGRES_URL is set); about
10 s of load with 11 clients by default. LIMS_TEST_LONG=1: 32 clients until at least
10,000 requests were answered (LIMS_SOAK_REQUESTS), at most LIMS_SOAK_SECONDS (600 s).

Most clinic clients register a fresh patient for each order and order its session 1, so
the soak does not lean on the course rule (one order per session number per patient,
sessions weeks apart); the lots are an allogeneic donor's, so those orders race for the
same few lots until the vials run out. Two clients keep ordering for one patient (once
the course rule refuses the repeats, they are clean 409s like any other refusal).
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import Engine, func
from sqlmodel import col, select

from lims.custody.ledger import verify_chain
from lims.custody.models import CustodyEvent
from lims.db import read_session, utcnow
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.steps.conservation import verify_conservation
from lims.steps.models import Step, StepInput
from tests.api.conftest import Api
from tests.builders import Lab
from tests.conftest import World
from tests.live_server import live_server
from tests.reliability.conftest import LONG, Outcomes, Row, assert_clean_refusals

SECONDS = float(os.environ.get("LIMS_SOAK_SECONDS", "600" if LONG else "10"))
# The long run stops at this many answered requests (the deadline is only a guard).
TARGET = int(os.environ.get("LIMS_SOAK_REQUESTS", "10000")) if LONG else None
NANOFAT = {"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27}


def order_body(coi: str, ref: str, **change: Any) -> dict[str, Any]:
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
        **change,
    }


class Soak:
    """The shared state of one soak: who placed, allocated, cancelled and booked what."""

    def __init__(
        self, base_url: str, api: Api, world: World, deadline: float, target: int | None = None
    ) -> None:
        self.base_url = base_url
        self.api = api
        self.world = world
        self.deadline = deadline
        self.target = target
        self.ginza_orders: list[str] = []  # what the Ginza canceller may cancel
        self.out = Outcomes()
        self.to_allocate: queue.Queue[str] = queue.Queue()
        self.lock = threading.Lock()
        self.placed: dict[str, dict[str, Any]] = {}  # number -> first response
        self.sent: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}  # -> body, number
        self.replay_mismatches: list[str] = []
        self.allocated: dict[str, str] = {}  # number -> dose material id
        self.cancelled: set[str] = set()
        self.steps: set[int] = set()
        self.verify_answers: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        # The donor's lots technicians name when allocating (FEFO without a lot picks only
        # the patient's own, autologous, lots).
        self.lot_ids: list[str] = []

    def running(self) -> bool:
        if self.target is not None and len(self.out.items) >= self.target:
            return False
        return time.monotonic() < self.deadline

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url + "/api/v1", timeout=60)

    # --- clients ---------------------------------------------------------------------------
    def fresh_patient(self, c: httpx.Client, who: str, headers: dict[str, str], n: int) -> str:
        o = self.out.send(
            c,
            "patient.register",
            "POST",
            "/clinic/patients",
            json={"identifier_1": "1980-01-01", "identifier_2": f"SOAK-{who}-{n}-{id(c)}"},
            headers=headers,
        )
        if o.status != 201:
            raise AssertionError(f"registering a patient: {o.status} {o.text[:200]}")
        return str(o.body["coi_id"])

    def clinic(self, who: str, coi: str, foreign_coi: str, seed: int, fresh: bool = False) -> None:
        rnd = random.Random(seed)
        headers = self.api.as_(who)
        keys: list[str] = []
        with self.client() as c:
            n = 0
            while self.running():
                n += 1
                roll = rnd.random()
                if roll < 0.08 and keys:  # a retry of an earlier request: the first answer
                    key = rnd.choice(keys)
                    body, number = self.sent[(who, key)]
                    o = self.out.send(
                        c,
                        "order.replay",
                        "POST",
                        "/clinic/orders",
                        json=body,
                        headers=headers | {"Idempotency-Key": key},
                    )
                    first = self.placed[number]
                    if o.status != 201 or o.body != first:
                        self.replay_mismatches.append(f"{who}/{key}: {o.status} {o.text[:200]}")
                    continue
                if roll < 0.12 and keys:  # the same key with another body: refused
                    key = rnd.choice(keys)
                    self.out.send(
                        c,
                        "order.key_reused",
                        "POST",
                        "/clinic/orders",
                        json=order_body(coi, "other"),
                        headers=headers | {"Idempotency-Key": key},
                    )
                    continue
                if roll < 0.16:  # a wrong unit
                    self.out.send(
                        c,
                        "order.bad_unit",
                        "POST",
                        "/clinic/orders",
                        json=order_body(coi, "bad", dose="3 kg"),
                        headers=headers,
                    )
                    continue
                if roll < 0.20:  # another clinic's patient: not found
                    self.out.send(
                        c,
                        "order.foreign_patient",
                        "POST",
                        "/clinic/orders",
                        json=order_body(foreign_coi, "foreign"),
                        headers=headers,
                    )
                    continue
                key = f"{who}-{seed}-{n}"
                if fresh:
                    body = order_body(self.fresh_patient(c, who, headers, n), key)
                else:
                    body = order_body(coi, key, session_number=1 + n % 6)
                o = self.out.send(
                    c,
                    "order.place",
                    "POST",
                    "/clinic/orders",
                    json=body,
                    headers=headers | {"Idempotency-Key": key},
                )
                if o.status == 201:
                    number = o.body["number"]
                    with self.lock:
                        self.placed[number] = o.body
                        self.sent[(who, key)] = (body, number)
                        if who == "clinic":
                            self.ginza_orders.append(number)
                    keys.append(key)
                    self.to_allocate.put(number)
                    if rnd.random() < 0.1:  # two technicians race for the same order
                        self.to_allocate.put(number)

    def technician(self, who: str, seed: int) -> None:
        rnd = random.Random(seed)
        headers = self.api.as_(who)
        with self.client() as c:
            while self.running():
                try:
                    number = self.to_allocate.get(timeout=0.2)
                except queue.Empty:
                    continue
                # Mostly a named donor lot (the race for the same few lots); sometimes none,
                # so the patient's own lot is chosen first-expiry-first.
                named = self.lot_ids and rnd.random() < 0.8
                o = self.out.send(
                    c,
                    "allocate",
                    "POST",
                    f"/lab/orders/{number}/allocation",
                    json={"lot_id": rnd.choice(self.lot_ids)} if named else {},
                    headers=headers,
                )
                if o.status == 200:
                    with self.lock:
                        assert number not in self.allocated, f"{number} allocated twice"
                        self.allocated[number] = o.body["dose_material"]["material_id"]
                if rnd.random() < 0.05:
                    self.out.send(c, "lab.orders", "GET", "/lab/orders?limit=20", headers=headers)

    def canceller(self, seed: int) -> None:
        rnd = random.Random(seed)
        headers = self.api.as_("clinic")
        with self.client() as c:
            while self.running():
                time.sleep(0.05)
                with self.lock:
                    mine = list(self.ginza_orders)
                if not mine:
                    continue
                number = rnd.choice(mine[-10:])
                o = self.out.send(
                    c,
                    "order.cancel",
                    "POST",
                    f"/clinic/orders/{number}/cancel",
                    json={"reason": "session moved"},
                    headers=headers,
                )
                if o.status == 200:
                    with self.lock:
                        self.cancelled.add(number)

    def bench(self, who: str, parents: list[str], seed: int) -> None:
        rnd = random.Random(seed)
        headers = self.api.as_(who)
        with self.client() as c:
            while self.running():
                amount = f"{rnd.choice(['0.5', '1', '1.5', '2', '3'])} mL"
                o = self.out.send(
                    c,
                    "step.nanofat",
                    "POST",
                    "/lab/steps",
                    json={
                        "sop_code": "NANOFAT-PREP",
                        "inputs": [{"material_id": rnd.choice(parents), "quantity": amount}],
                        "outputs": [{"quantity": amount}],
                        "parameters": NANOFAT,
                    },
                    headers=headers,
                )
                if o.status == 201:
                    with self.lock:
                        self.steps.add(int(o.body["id"]))

    def auditor(self) -> None:
        headers = self.api.as_("auditor")
        with self.client() as c:
            while self.running():
                o = self.out.send(c, "audit.verify", "GET", "/audit/verify", headers=headers)
                if o.status == 200:
                    self.verify_answers.append(o.body)
                time.sleep(0.3)

    def guarded(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:  # reported by the test; a thread cannot fail it
                self.errors.append(exc)

        return threading.Thread(target=run, name=target.__name__)


def test_concurrent_clinics_technicians_and_auditors(
    engine: Engine, world: World, api: Api, figures: Row
) -> None:
    lab = Lab.start(engine, world)
    # Lots from the eligible allogeneic donor (2, or 6 in the long run), so that every
    # clinic's fresh patients' orders race for the same few lots until they run out (an
    # autologous lot serves one patient, whose course allows six sessions); one autologous
    # lot for Osaka's patient; the parents technicians book from.
    lots = [lab.allogeneic_lot() for _ in range(6 if LONG else 2)]
    other_lot = lab.lot(cm=lab.cm_batch("61 mL", culture=lab.culture(coi=world.other_patient_coi)))
    volume = "120 mL" if LONG else "30 mL"
    parents = [lab.accepted_lipoaspirate(volume) for _ in range(4 if LONG else 2)]
    with read_session(engine) as s:
        events_before = s.execute(select(func.count()).select_from(CustodyEvent)).scalar_one()

    with live_server(engine) as url:
        soak = Soak(url, api, world, deadline=time.monotonic() + SECONDS, target=TARGET)
        soak.lot_ids = list(lots)
        threads = [
            soak.guarded(soak.clinic, "clinic", world.patient_coi, world.other_patient_coi, 1),
            soak.guarded(soak.clinic, "clinic", world.patient_coi, world.other_patient_coi, 2),
            soak.guarded(
                soak.clinic, "other_clinic", world.other_patient_coi, world.patient_coi, 3
            ),
            soak.guarded(soak.technician, "technician", 4),
            soak.guarded(soak.technician, "technician2", 5),
            soak.guarded(soak.technician, "qa", 6),
            soak.guarded(soak.canceller, 7),
            soak.guarded(soak.bench, "technician", parents, 8),
            soak.guarded(soak.bench, "technician2", parents, 9),
            soak.guarded(soak.bench, "admin", parents, 10),
            soak.guarded(soak.auditor),
        ]
        if LONG:  # 21 more: 32 clients in all
            ginza, osaka = world.patient_coi, world.other_patient_coi
            threads += [
                *(
                    soak.guarded(soak.clinic, "clinic", ginza, osaka, 20 + i, True)
                    for i in range(5)
                ),
                *(
                    soak.guarded(soak.clinic, "other_clinic", osaka, ginza, 30 + i, True)
                    for i in range(4)
                ),
                *(
                    soak.guarded(
                        soak.technician, ("technician", "technician2", "qa")[i % 3], 40 + i
                    )
                    for i in range(5)
                ),
                soak.guarded(soak.canceller, 50),
                *(
                    soak.guarded(
                        soak.bench, ("technician", "technician2", "admin")[i % 3], parents, 60 + i
                    )
                    for i in range(4)
                ),
                soak.guarded(soak.auditor),
                soak.guarded(soak.auditor),
            ]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 120)
        took = time.monotonic() - started
        assert not any(t.is_alive() for t in threads), "a soak client did not stop"
    assert soak.errors == [], soak.errors[:3]
    if TARGET is not None:
        assert len(soak.out.items) >= TARGET, f"{len(soak.out.items)} requests in {took:.0f} s"

    # Every request was answered, no 5xx, every refusal a problem+json with a reason.
    statuses = soak.out.statuses()
    assert statuses[None] == 0, [o.error for o in soak.out.items if o.status is None][:3]
    assert_clean_refusals(soak.out)
    assert soak.replay_mismatches == []
    assert soak.verify_answers
    false_alarms = [v for v in soak.verify_answers if not v["ok"]]
    assert false_alarms == [], false_alarms[:3]
    by_label: dict[str, Counter[int | None]] = defaultdict(Counter)
    for o in soak.out.items:
        by_label[o.label][o.status] += 1
    assert set(by_label["order.bad_unit"]) <= {422}
    assert set(by_label["order.foreign_patient"]) <= {404}
    assert set(by_label["order.key_reused"]) <= {409}  # IdempotencyConflict
    assert set(by_label["allocate"]) <= {200, 409}
    assert set(by_label["step.nanofat"]) <= {201, 409}
    assert set(by_label["order.cancel"]) <= {200, 409}
    assert set(by_label["patient.register"]) <= {201}
    assert by_label["order.place"][201] > 0 and by_label["allocate"][200] > 0

    # The books, straight from the database.
    with read_session(engine) as s:
        materials = {m.id: m for m in s.exec(select(Material)).all()}
        assert all(m.remaining_canonical >= 0 for m in materials.values()), "negative stock"
        for lot_id in [*lots, other_lot, *parents]:
            lot = next(m for m in materials.values() if m.material_id == lot_id)
            taken = sum(
                (
                    r.taken_canonical
                    for r in s.exec(select(StepInput).where(col(StepInput.material_id) == lot.id))
                    if r.measured_canonical is None
                ),
                Decimal(0),
            )
            assert lot.initial_canonical - lot.remaining_canonical == taken
            assert taken <= lot.initial_canonical
        orders = {o.number: o for o in s.exec(select(DoseOrder)).all()}
        allocate_steps = s.exec(select(Step).where(col(Step.sop_code) == "DOSE-ALLOCATE")).all()
        doses = [o.dose_material_id for o in orders.values() if o.dose_material_id is not None]
        assert len(doses) == len(set(doses)) == len(allocate_steps)
        doses_from_lots = sum(
            (m.initial_canonical for m in materials.values() if m.kind == "dose"), Decimal(0)
        )
        assert doses_from_lots == len(allocate_steps)  # one vial each, from the lots above
        # Nothing acknowledged is missing (nothing lost), and nothing unacknowledged exists.
        assert set(soak.placed) == set(orders)
        for number, dose in soak.allocated.items():
            order = orders[number]
            assert order.dose_material_id is not None
            assert materials[order.dose_material_id].material_id == dose
        assert {n for n, o in orders.items() if o.dose_material_id is not None} == set(
            soak.allocated
        )
        assert {n for n, o in orders.items() if o.status == "CANCELLED"} == soak.cancelled
        nanofat_steps = {
            st.id for st in s.exec(select(Step).where(col(Step.sop_code) == "NANOFAT-PREP"))
        }
        assert nanofat_steps == soak.steps
        conservation = verify_conservation(s)
        assert conservation.ok, conservation.problems[:5]
        chain = verify_chain(s)
        assert chain.ok, chain.summary()
        placed_events = s.execute(
            select(func.count())
            .select_from(CustodyEvent)
            .where(col(CustodyEvent.action) == "order.placed")
        ).scalar_one()
        assert placed_events == len(orders)

    refusals = sum(n for code, n in statuses.items() if code is not None and 400 <= code < 500)
    figures.requests = len(soak.out.items)
    figures.refusals = refusals
    figures.server_errors = len(soak.out.server_errors())
    figures.notes = (
        f"{took:.0f} s of load, {len(threads)} clients, {len(lots) + 1} lots, "
        f"{len(parents)} parents, "
        f"{len(orders)} orders, "
        f"{len(soak.allocated)} allocated, {len(soak.cancelled)} cancelled, "
        f"{len(soak.steps)} bookings, {chain.events - events_before} custody events, "
        f"{len(soak.verify_answers)} verifies during load"
    )
    print(
        f"\nsoak on {engine.dialect.name}: {len(soak.out.items)} requests in {took:.1f} s "
        f"({len(soak.out.items) / took:.0f}/s), "
        f"statuses {dict(sorted(statuses.items(), key=str))}; "
        f"{figures.notes}; conservation over {conservation.materials_checked} materials and "
        f"{conservation.steps_checked} steps ok; chain of {chain.events} events ok; nothing lost"
    )
