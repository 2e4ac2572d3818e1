"""The README's clinic journey, written against the Python client generated from the
OpenAPI document (``openapi-python-client``, package ``lims_client``) and nothing else: no
hand-written HTTP, every call and answer typed. tests/contract/test_generated_clients.py
type-checks this file with ``mypy --strict --disallow-any-expr`` against the generated
package, then runs it against a live server with the demo's data:

    python tests/contract/journey.py BASE_URL DESK_PASSWORD STAFF_PASSWORD

It prints one line per step and exits non-zero on the first unexpected answer.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from lims_client import AuthenticatedClient, Client
from lims_client.api.auth import create_token
from lims_client.api.clinic import (
    create_order,
    create_patient,
    get_order,
    list_patients,
    record_order_receipt,
)
from lims_client.api.lab import (
    allocate_order,
    create_signature,
    dispatch_order,
    transition_material,
)
from lims_client.models import (
    AllocateIn,
    BodyCreateToken,
    DispatchIn,
    LabelOut,
    MaterialState,
    Meaning,
    OrderIn,
    OrderOut,
    OrderStatus,
    PagePatientOut,
    PatientIn,
    PatientOut,
    Problem,
    ReceiptIn,
    SignatureOut,
    SignIn,
    TokenOut,
    TransitionIn,
)
from lims_client.models import MaterialOut as Material

T = TypeVar("T")


def expect(parsed: object, kind: type[T], what: str) -> T:
    """The answer as ``kind``; a Problem (or anything else) stops the journey, said."""
    if isinstance(parsed, kind):
        return parsed
    if isinstance(parsed, Problem):
        raise SystemExit(f"{what}: {parsed.status} {parsed.title}: {parsed.detail}")
    raise SystemExit(f"{what}: unexpected answer {parsed!r}")


def signed_in(base: str, username: str, password: str) -> AuthenticatedClient:
    answer = create_token.sync(
        client=Client(base_url=base), body=BodyCreateToken(username=username, password=password)
    )
    token = expect(answer, TokenOut, f"signing in {username}")
    return AuthenticatedClient(base_url=base, token=token.access_token)


def main(base: str, desk_password: str, staff_password: str) -> None:
    clinic = signed_in(base, "ginza-desk", desk_password)
    run = uuid.uuid4().hex[:8]
    new = create_patient.sync(
        client=clinic,
        body=PatientIn(identifier_1="1985-02-03", identifier_2=f"GHC-NEW-{run}"),
        idempotency_key=f"patient-{run}",
    )
    print("patient registered:", expect(new, PatientOut, "registering a patient").coi_id)
    patients = expect(list_patients.sync(client=clinic), PagePatientOut, "listing patients")
    demo_patient = next(p for p in patients.items if p.identifier_2.startswith("GHC-F"))
    in_87_days = datetime.now(UTC) + timedelta(days=87)
    details = OrderIn(
        coi_id=demo_patient.coi_id,
        dose="4 mL",
        session_number=4,
        sessions_total=6,
        planned_use_at=in_87_days,
        ship_to="Ginza Hair Clinic, Tokyo",
        prescriber="Dr. H. Fukuoka",
        consent_ref="CONSENT-2026-0042",
    )
    key = f"order-{run}"
    placed = expect(
        create_order.sync(client=clinic, body=details, idempotency_key=key),
        OrderOut,
        "placing the order",
    )
    again = expect(
        create_order.sync(client=clinic, body=details, idempotency_key=key),
        OrderOut,
        "retrying the order",
    )
    assert again.number == placed.number, "a retry with the same key made a second order"
    assert placed.status is OrderStatus.PLACED
    print("order placed:", placed.number, "(the retry returned the same order)")
    # A refusal parses to the Problem model, with the field that is wrong.
    refusal = create_order.sync(
        client=clinic,
        body=OrderIn(
            coi_id=demo_patient.coi_id,
            dose="3 kg",
            session_number=5,
            sessions_total=6,
            planned_use_at=in_87_days + timedelta(weeks=4),
            ship_to="Ginza Hair Clinic, Tokyo",
            prescriber="Dr. H. Fukuoka",
            consent_ref="CONSENT-2026-0042",
        ),
    )
    problem = expect(refusal, Problem, "ordering 3 kg")
    assert problem.status == 422 and problem.field == "dose", problem
    print("refused as it should be:", problem.detail)

    tech = signed_in(base, "tanaka", staff_password)
    allocated = expect(
        allocate_order.sync(placed.number, client=tech, body=AllocateIn()),
        OrderOut,
        "allocating",
    )
    assert allocated.dose_material is not None, "allocated without a dose"
    dose = allocated.dose_material.material_id
    labelled = transition_material.sync(
        dose, client=tech, body=TransitionIn(to_state=MaterialState.LABELED)
    )
    assert expect(labelled, Material, "labelling").state is MaterialState.LABELED
    for username, meaning in (("tanaka", Meaning.PERFORMED), ("mori", Meaning.VERIFIED)):
        signature = create_signature.sync(
            client=signed_in(base, username, staff_password),
            body=SignIn(
                password=staff_password, meaning=meaning, record_type="material", record_id=dose
            ),
        )
        expect(signature, SignatureOut, f"{username} signing")
    shipped = dispatch_order.sync(
        placed.number,
        client=tech,
        body=DispatchIn(
            scanned_label=dose,
            shipper="ColdChain Couriers",
            temperature_logger="TL-0042",
            transit="18 h",
        ),
    )
    print("dispatched:", expect(shipped, OrderOut, "dispatching").status)
    received = record_order_receipt.sync(
        placed.number,
        client=clinic,
        body=ReceiptIn(
            received_at=datetime.now(UTC), temperature="4.5 degC", received_by="Nurse K. Ito"
        ),
    )
    assert expect(received, OrderOut, "confirming receipt").status is OrderStatus.RECEIVED
    final = expect(get_order.sync(placed.number, client=clinic), OrderOut, "reading the order")
    # The generator falls back to the raw dict when an answer does not fit its schema.
    label = final.label
    assert isinstance(label, LabelOut), f"the label did not parse: {label!r}"
    assert label.material_id == dose
    print("received:", final.number, final.status, "dose", label.printed_id, label.expires_at)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
