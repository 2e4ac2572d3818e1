"""Two or more writers on the same parent: never below zero, never a duplicate id."""

import threading
from decimal import Decimal

from sqlalchemy import Engine

from lims.db import write_session
from lims.errors import StepRefused
from lims.materials.service import next_material_id
from lims.parties.models import User
from lims.steps.service import InputBooking, OutputRequest, record_step
from tests.builders import Lab
from tests.conftest import World

NANOFAT = {"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27}


def _take(lab: Lab, lipo: str, amount: str) -> None:
    with write_session(lab.engine) as s:
        actor = s.get(User, lab.world.tech_id)
        assert actor is not None
        record_step(
            s,
            sop_code="NANOFAT-PREP",
            actor=actor,
            performed_at=lab.at(10),
            inputs=[InputBooking(lipo, amount)],
            outputs=[OutputRequest(amount)],
            parameters=NANOFAT,
        )


def test_second_writer_waits_and_is_refused(engine: Engine, world: World) -> None:
    """Writer A holds its transaction open after booking 8 of 10 mL; writer B must wait for
    it and then see only 2 mL, not the 10 mL it would have read without the lock."""
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("10 mL")
    booked, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def writer_a() -> None:
        with write_session(engine) as s:
            actor = s.get(User, world.tech_id)
            assert actor is not None
            record_step(
                s,
                sop_code="NANOFAT-PREP",
                actor=actor,
                performed_at=lab.at(10),
                inputs=[InputBooking(lipo, "8 mL")],
                outputs=[OutputRequest("8 mL")],
                parameters=NANOFAT,
            )
            booked.set()
            release.wait(timeout=10)

    def writer_b() -> None:
        booked.wait(timeout=10)
        try:
            _take(lab, lipo, "8 mL")
            outcome["b"] = "booked"
        except StepRefused as exc:
            outcome["b"] = str(exc)

    a = threading.Thread(target=writer_a)
    b = threading.Thread(target=writer_b)
    a.start()
    b.start()
    booked.wait(timeout=10)
    b.join(timeout=0.5)
    assert b.is_alive(), "writer B did not wait for writer A's lock"
    release.set()
    a.join(timeout=20)
    b.join(timeout=20)
    assert "8 mL asked, only 2 mL remain" in str(outcome["b"])
    assert lab.get(lipo).remaining_canonical == Decimal("2")


def test_many_writers_never_overdraw(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("10 mL")
    start = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        start.wait(timeout=10)
        try:
            _take(lab, lipo, "2 mL")
            outcome = "ok"
        except StepRefused:
            outcome = "refused"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["ok"] * 5 + ["refused"] * 3
    final = lab.get(lipo)
    assert (final.remaining_canonical, final.state) == (Decimal("0"), "CONSUMED")


def test_material_ids_are_unique_under_concurrent_writers(engine: Engine) -> None:
    issued: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait(timeout=10)
        for _ in range(25):
            with write_session(engine) as s:
                mid = next_material_id(s)
            with lock:
                issued.append(mid)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(issued) == 100
    assert len(set(issued)) == 100
    sequences = sorted(int(m[7:13]) for m in issued)
    assert sequences == list(range(1, 101))
