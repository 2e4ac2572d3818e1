"""FHIR reads and searches against their /api/v1 equivalents, in the same run.

    .venv/bin/python -m bench.fhir [--seconds 1.5] [--orders 200] [--backends sqlite]

A fresh database (bench.common.fresh_database) with the demo facility, 20 patients and
``--orders`` orders placed through lims.orders.service; then, in-process (Starlette's
TestClient, so no network on either side), each pair of requests is timed for
``--seconds``, signed in as the clinic's desk:

    GET /fhir/ServiceRequest?_count=50      vs  GET /api/v1/clinic/orders?limit=50
    GET /fhir/ServiceRequest/{n}            vs  GET /api/v1/clinic/orders/{n}
    GET /fhir/Task?patient=<coi>            vs  GET /api/v1/clinic/orders?limit=50
      (10 orders of one patient vs a page of 50: /api/v1 has no patient filter)
    GET /fhir/Patient?_count=50             vs  GET /api/v1/clinic/patients?limit=50

It prints mean milliseconds per request for both and the ratio FHIR / api (the facade
builds each resource as a dict and validates it with fhir.resources: the ratio is the price
of that validation). No target is asserted; docs/fhir.md records a run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from api.app import create_app
from bench.common import fresh_database, machine
from lims.db import utcnow, write_session
from lims.demo import DEMO_PASSWORD, set_up_facility
from lims.orders.service import place_order
from lims.parties.models import Clinic
from lims.parties.queries import get_user
from lims.parties.service import register_patient
from lims.signatures.passwords import set_password

PATIENTS = 20


def _seed(engine: object, orders: int) -> list[str]:
    """Patients and orders of the GINZA clinic; returns the chain-of-identity ids."""
    with write_session(engine) as s:  # type: ignore[arg-type]
        facility = set_up_facility(s, tag="B", desks=["GINZA"])
        clinic = s.get(Clinic, facility.clinic_ids["GINZA"])
        assert clinic is not None
        desk = get_user(s, username="ginza-desk")
        set_password(s, user=desk, password=DEMO_PASSWORD, actor=None)
        patients = [
            register_patient(
                s, clinic=clinic, identifier_1=f"1980-01-{i % 28 + 1:02d}", identifier_2=f"B-{i}"
            )
            for i in range(PATIENTS)
        ]
        for i in range(orders):
            place_order(
                s,
                actor=desk,
                patient=patients[i % PATIENTS],
                product="aape",
                dose="4 mL",
                session_number=1,
                sessions_total=6,
                planned_use_at=utcnow() + timedelta(days=3),
                ship_to="Ginza Hair Clinic, Tokyo",
                prescriber="Dr. H. Fukuoka",
                consent_ref=f"CONSENT-{i}",
            )
        return [p.coi_id for p in patients]


def _mean_ms(call: Callable[[], object], seconds: float) -> float:
    call()  # warm: caches, the first connection
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        n += 1
    return (time.perf_counter() - start) / n * 1000


def run(backend: str, *, seconds: float, orders: int) -> None:
    with fresh_database(backend) as db:
        cois = _seed(db.engine, orders)
        client = TestClient(create_app(db.engine))
        token = client.post(
            "/api/v1/auth/token", data={"username": "ginza-desk", "password": DEMO_PASSWORD}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        def getter(path: str) -> Callable[[], object]:
            def call() -> object:
                r = client.get(path, headers=auth)
                assert r.status_code == 200, (path, r.text)
                return r

            return call

        pairs = [
            ("search orders", "/fhir/ServiceRequest?_count=50", "/api/v1/clinic/orders?limit=50"),
            (
                "read one order",
                "/fhir/ServiceRequest/ORD-000007",
                "/api/v1/clinic/orders/ORD-000007",
            ),
            (
                "tasks of a patient",
                f"/fhir/Task?patient={cois[3]}",
                "/api/v1/clinic/orders?limit=50",
            ),
            ("search patients", "/fhir/Patient?_count=50", "/api/v1/clinic/patients?limit=50"),
        ]
        print(f"\n{backend}: {orders} orders, {PATIENTS} patients, {seconds} s per measurement")
        print(f"{'':22}{'FHIR ms':>10}{'api ms':>10}{'FHIR/api':>10}")
        for name, fhir_path, api_path in pairs:
            fhir_ms = _mean_ms(getter(fhir_path), seconds)
            api_ms = _mean_ms(getter(api_path), seconds)
            print(f"{name:22}{fhir_ms:10.2f}{api_ms:10.2f}{fhir_ms / api_ms:10.2f}")
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--backends", default="sqlite")
    args = parser.parse_args()
    print(machine())
    for backend in args.backends.split(","):
        run(backend.strip(), seconds=args.seconds, orders=args.orders)


if __name__ == "__main__":
    main()
