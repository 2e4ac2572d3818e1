"""The checkpoint endpoints under /api/v1/audit: auditors get the key and proofs that
verify offline; a clinic is refused."""

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from lims.custody.checkpoint import make_checkpoint
from lims.custody.keys import key_id, private_pem, public_pem
from lims.custody.verify import check_checkpoint, leaf_hash, verify_consistency, verify_inclusion
from lims.db import write_session
from lims.settings import get_checkpoint_settings
from tests.api.conftest import Api, api  # noqa: F401  (the fixture)

KEY = Ed25519PrivateKey.generate()


@pytest.fixture(autouse=True)
def lab_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LIMS_CHECKPOINT_KEY", private_pem(KEY).decode("ascii"))
    get_checkpoint_settings.cache_clear()
    yield
    get_checkpoint_settings.cache_clear()


URLS = (
    "/api/v1/audit/checkpoint-key",
    "/api/v1/audit/checkpoints/latest",
    "/api/v1/audit/proofs/inclusion/1",
    "/api/v1/audit/proofs/consistency?first=1",
)


def test_auditor_gets_key_checkpoint_and_proofs(api: Api, engine: Engine) -> None:  # noqa: F811
    auditor = api.as_("auditor")
    key = api.client.get(URLS[0], headers=auditor)
    assert key.status_code == 200
    assert key.json() == {
        "key_id": key_id(KEY),
        "public_key": public_pem(KEY),
        "algorithm": "Ed25519",
    }
    assert api.client.get(URLS[1], headers=auditor).status_code == 404  # none made yet
    with write_session(engine) as s:
        first = make_checkpoint(s, key=KEY)
    with write_session(engine) as s:
        from lims.custody import ledger

        ledger.append(s, actor=None, action="test.note", entity="note", entity_id=1)
        second = make_checkpoint(s, key=KEY)
    latest = api.client.get(URLS[1], headers=auditor).json()
    check_checkpoint(latest, public_pem(KEY))
    assert latest["id"] == second.id
    proof = api.client.get(
        f"/api/v1/audit/proofs/inclusion/3?checkpoint={first.id}", headers=auditor
    )
    assert proof.status_code == 200, proof.text
    body = proof.json()
    verify_inclusion(
        2,
        first.tree_size,
        leaf_hash(body["canonical"].encode("utf-8")),
        [bytes.fromhex(h) for h in body["proof"]],
        bytes.fromhex(first.root_hash),
    )
    outside = api.client.get(
        f"/api/v1/audit/proofs/inclusion/{second.tree_size}?checkpoint={first.id}", headers=auditor
    )
    assert outside.status_code == 422
    cons = api.client.get(f"/api/v1/audit/proofs/consistency?first={first.id}", headers=auditor)
    assert cons.status_code == 200
    verify_consistency(
        first.tree_size,
        second.tree_size,
        bytes.fromhex(first.root_hash),
        bytes.fromhex(second.root_hash),
        [bytes.fromhex(h) for h in cons.json()["proof"]],
    )


def test_a_clinic_is_refused(api: Api) -> None:  # noqa: F811
    for url in URLS:
        response = api.client.get(url, headers=api.as_("clinic"))
        assert response.status_code == 403, (url, response.text)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/audit/proofs/consistency?first=99999999999999999999",
        "/api/v1/audit/proofs/consistency?first=1&second=-1",
        "/api/v1/audit/proofs/inclusion/99999999999999999999",
        "/api/v1/audit/proofs/inclusion/0",
        "/api/v1/audit/proofs/inclusion/1?checkpoint=4294967296",
    ],
)
def test_ids_beyond_the_database_range_are_refused_not_crashed(
    api: Api,  # noqa: F811
    url: str,
) -> None:
    # Found by schemathesis: an id past 64 bits reached the driver (OverflowError, a 500).
    r = api.client.get(url, headers=api.as_("auditor"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
