"""Bad parameters, a flow killed mid-run and re-run, retries, pausing for typed input."""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from sqlalchemy import Engine, update

import flows.dispatch
from flows.common import is_transient
from flows.dispatch import dose_allocation
from flows.intake import lipoaspirate_intake
from flows.lot import lot_fill_and_lyophilisation
from flows.svf import svf_separation
from flows.tasks import Arrival, register_arrival
from lims.db import make_engine, write_session
from lims.errors import IdempotencyConflict, StepRefused
from lims.materials.kinds import MaterialKind, Use
from lims.settings import get_settings
from tests.builders import Lab
from tests.conftest import BACKENDS, World
from tests.flows import requests as rq
from tests.flows.conftest import counts, flow_run_id, run
from tests.flows.test_stages import order_request


def _task_runs(flow_run_id: UUID) -> dict[str, int]:
    """Task run name -> how many times it ran, read back from the Prefect server."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {run.name: run.run_count for run in runs}


def _stored_state_message(flow_run_id: UUID) -> str:
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
    assert run.state is not None
    return run.state.message or ""


# --- a bad parameter fails the run before anything is written ------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"taken": "3 kg"}, "request.taken: expected a volume, got 3 kg"),
        ({"lipoaspirate": "X0001 26 000001 Q"}, "has a wrong check character"),
        ({"colour": "blue"}, "request.colour: Extra inputs are not permitted"),
        ({"performed_at": "2026-01-01T10:00:00"}, "request.performed_at: Input should have"),
    ],
)
def test_bad_parameter_fails_the_run_before_any_write(
    engine: Engine, world: World, db_url: str, change: dict[str, str], message: str
) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate()
    before = counts(engine)
    state = run(
        svf_separation,
        request={**rq.svf(lab, lipo), **change},
        database_url=db_url,
        return_state=True,
    )
    assert state.is_failed()
    assert message in (state.message or "")
    # The message is in the run's state on the server too (what the Prefect UI shows).
    assert message in _stored_state_message(flow_run_id(state))
    assert counts(engine) == before


# --- killed mid-run, re-run: continues, nothing duplicated ----------------------------------


def _delta(engine: Engine, run: Any) -> dict[str, int]:
    before = counts(engine)
    run()
    after = counts(engine)
    return {k: after[k] - before[k] for k in after}


def _fill(lab: Lab, cm: str, position: str) -> dict[str, Any]:
    request = rq.lot_fill(lab, cm)
    request["storage"] = {**request["storage"], "position": position}
    return request


def test_killed_after_its_second_task_a_rerun_continues_without_duplicates(
    engine: Engine, world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = Lab.start(engine, world)
    clean_cm, killed_cm = lab.cm_batch("61 mL"), lab.cm_batch("61 mL")
    clean = _delta(
        engine,
        lambda: run(
            lot_fill_and_lyophilisation, request=_fill(lab, clean_cm, "A1"), database_url=db_url
        ),
    )

    def power_cut(*args: object, **kwargs: object) -> str:
        raise RuntimeError("power cut after the lyophilisation was recorded")

    request = _fill(lab, killed_cm, "A2")
    with monkeypatch.context() as patch:
        patch.setattr("flows.lot.store", power_cut)  # the third task never starts
        killed = counts(engine)
        state = run(
            lot_fill_and_lyophilisation, request=request, database_url=db_url, return_state=True
        )
        assert state.is_failed() and "power cut" in (state.message or "")
        partial = {k: v - killed[k] for k, v in counts(engine).items()}
        assert partial["material"] == 1 and partial["step"] == 2  # fill and lyophilisation
    rerun = _delta(
        engine, lambda: run(lot_fill_and_lyophilisation, request=request, database_url=db_url)
    )
    assert {k: partial[k] + rerun[k] for k in clean} == clean
    assert rerun["material"] == 0 and rerun["step"] == 0 and rerun["custody_event"] > 0
    # A third run replays everything and writes nothing at all.
    again = _delta(
        engine, lambda: run(lot_fill_and_lyophilisation, request=request, database_url=db_url)
    )
    assert set(again.values()) == {0}


def test_a_task_that_dies_after_its_commit_is_replayed_not_repeated(
    engine: Engine, world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst case: the allocation committed, then the task died before reporting it."""
    lab = Lab.start(engine, world)
    lab.lot()
    clean = _delta(
        engine,
        lambda: run(
            dose_allocation,
            request={"order": order_request(world, 1), "allocated_by": "tanaka"},
            database_url=db_url,
        ),
    )
    real = flows.dispatch.allocate.fn

    @functools.wraps(real)
    def allocate_then_die(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("worker killed after the allocation committed")

    request = {"order": order_request(world, 2), "allocated_by": "tanaka"}
    with monkeypatch.context() as patch:
        patch.setattr(flows.dispatch.allocate, "fn", allocate_then_die)
        killed = counts(engine)
        state = run(dose_allocation, request=request, database_url=db_url, return_state=True)
        assert state.is_failed()
        partial = {k: v - killed[k] for k, v in counts(engine).items()}
        assert partial["dose_order"] == 1 and partial["material"] == 1  # the dose exists
    rerun = _delta(engine, lambda: run(dose_allocation, request=request, database_url=db_url))
    assert rerun["material"] == 0 and rerun["dose_order"] == 0
    assert {k: partial[k] + rerun[k] for k in clean} == clean


# --- retries: transient errors only --------------------------------------------------------


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # SQLite's database lock
def test_transient_lock_is_retried_and_the_run_completes(
    engine: Engine, world: World, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = Lab.start(engine, world)
    # A short busy timeout so that the held lock surfaces as "database is locked" quickly.
    monkeypatch.setenv("LIMS_SQLITE_BUSY_TIMEOUT_MS", "50")
    get_settings.cache_clear()
    monkeypatch.setattr("flows.common._engines", {})
    holder = sqlite3.connect(
        engine.url.database or "", isolation_level=None, check_same_thread=False
    )
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the database
    release = threading.Timer(4.5, holder.rollback)
    release.start()
    try:
        state = run(
            lipoaspirate_intake,
            request=rq.intake(lab, world.patient_coi),
            database_url=db_url,
            return_state=True,
        )
    finally:
        release.cancel()
        holder.close()
        get_settings.cache_clear()
    assert state.is_completed(), state.message
    runs = _task_runs(flow_run_id(state))
    assert runs["register lipoaspirate · shipment SHIP-1"] == 2  # failed once, retried
    assert counts(engine)["material"] == 1


def test_a_rule_refusal_is_not_retried(engine: Engine, world: World, db_url: str) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate()
    request = rq.svf(lab, lipo)
    request["parameters"] = {**request["parameters"], "digestion_temperature": "50 degC"}
    before = counts(engine)
    state = run(svf_separation, request=request, database_url=db_url, return_state=True)
    assert state.is_failed()
    assert "digestion_temperature: 50 degC is above the maximum 38 degC" in (state.message or "")
    runs = _task_runs(flow_run_id(state))
    assert list(runs.values()) == [1]
    assert counts(engine) == before


def test_transient_errors_are_told_from_refusals(tmp_path: Any) -> None:
    path = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Exception) as locked, write_session(engine, retries=0) as s:
            s.execute(update_nothing())
    finally:
        holder.close()
        engine.dispose()
    assert is_transient(locked.value), locked.value
    assert not is_transient(StepRefused("SOP X refused", problems=["a problem"]))
    assert not is_transient(ValueError("database is locked"))  # not a database error


def update_nothing() -> Any:
    from lims.custody.models import CustodyHead

    return update(CustodyHead).where(CustodyHead.id == -1).values(seq=0)  # type: ignore[arg-type]


# --- pausing for typed input ---------------------------------------------------------------


@pytest.mark.parametrize("engine", [BACKENDS[-1]], indirect=True)  # not about the database
def test_intake_pauses_for_the_inspection_and_resumes_with_it(
    engine: Engine, world: World, db_url: str
) -> None:
    lab = Lab.start(engine, world)
    request = rq.intake(lab, world.patient_coi)
    inspection = request.pop("inspection")
    outcome: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: outcome.update(
            result=run(lipoaspirate_intake, request=request, database_url=db_url)
        )
    )
    runner.start()
    paused = None
    with get_client(sync_client=True) as client:
        for _ in range(100):
            found = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
            if found:
                paused = found[0]
                break
            time.sleep(0.2)
    assert paused is not None, "the intake flow did not pause for its inspection"
    assert paused.name.startswith("lipoaspirate intake · X0001")
    # The lipoaspirate is registered and waits in quarantine while the form is filled in.
    assert counts(engine)["material"] == 1
    for _ in range(50):  # the form's schema is saved just after the run pauses
        try:
            resume_flow_run(paused.id, run_input=inspection)
            break
        except RuntimeError as exc:
            assert "schema not found" in str(exc)
            time.sleep(0.1)
    runner.join(timeout=60)
    assert outcome["result"].state == "ACCEPTED"


# --- two runs with the same key at the same time ------------------------------------------


def test_concurrent_repeats_of_one_write_happen_once(
    engine: Engine, world: World, db_url: str
) -> None:
    """Four workers register the same shipment at once: one material, one answer."""
    lab = Lab.start(engine, world)
    arrival = Arrival(
        kind=MaterialKind.LIPOASPIRATE,
        patient=world.patient_coi,
        use=Use.AUTOLOGOUS,
        quantity="120 mL",
        collected_at=lab.at(0),
        shipment_ref="SHIP-RACE",
        received_by="tanaka",
    )
    start = threading.Barrier(4)
    answers: list[str] = []

    def register() -> None:
        start.wait()
        answers.append(register_arrival.fn(db_url, "race", arrival))

    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 4 and len(set(answers)) == 1
    assert counts(engine)["material"] == 1


def test_a_key_reused_for_another_request_is_refused(engine: Engine) -> None:
    from lims.idempotency.service import run_once

    with write_session(engine) as s:
        first = run_once(s, key="k-1", operation="note", request={"a": 1}, write=lambda: {"n": 1})
    with write_session(engine) as s:
        again = run_once(s, key="k-1", operation="note", request={"a": 1}, write=lambda: {"n": 2})
        assert (again.result, again.replayed, first.replayed) == ({"n": 1}, True, False)
        with pytest.raises(IdempotencyConflict, match="already used for a different note request"):
            run_once(s, key="k-1", operation="note", request={"a": 2}, write=lambda: {"n": 3})
