"""The scheduled maintenance flow: expiry, overdue QC, custody chain."""

from __future__ import annotations

from datetime import timedelta

from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from sqlalchemy import Engine, update

from flows.common import label
from flows.maintenance import lab_maintenance
from lims.db import utcnow, write_session
from lims.materials.models import Material
from lims.materials.service import get_material
from tests.builders import Lab
from tests.conftest import World
from tests.flows.conftest import counts, run


def test_maintenance_expires_lots_flags_overdue_qc_and_verifies_the_chain(
    engine: Engine, world: World, db_url: str
) -> None:
    lab = Lab.start(engine, world)
    expired_lot = lab.lot()
    in_testing = lab.lot(released=False)
    lab.move(in_testing, "QC_TESTING")
    lab.result(in_testing, "endotoxin", "0.5 EU/mL")
    # The lot's expiry has passed (24 months of shelf life cannot pass in a test).
    with write_session(engine) as s:
        lot = get_material(s, expired_lot)
        s.execute(
            update(Material)
            .where(Material.id == lot.id)  # type: ignore[arg-type]
            .values(expires_at=utcnow() - timedelta(hours=1))
        )

    report = run(lab_maintenance, qc_turnaround="0 min", database_url=db_url)
    assert report.expired == [expired_lot]
    assert lab.get(expired_lot).state == "EXPIRED"
    (overdue,) = report.overdue_qc
    assert overdue.material == label(in_testing)
    assert overdue.missing == [
        "Sterility",
        "Mycoplasma",
        "Residual moisture",
        "Total protein per vial (reconstituted)",
        "Cake appearance and reconstitution",
    ]
    assert report.custody.ok and report.custody.events == counts(engine)["custody_event"]
    assert report.checkpoint is not None
    assert report.checkpoint.tree_size == report.custody.events
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["overdue-qc"])),
            limit=1,
            sort=ArtifactSort.CREATED_DESC,
        )
    assert label(in_testing) in str(artifact.data)

    # Nothing left to expire; with the default 21-day turnaround nothing is overdue yet.
    before = counts(engine)
    again = run(lab_maintenance, database_url=db_url)
    assert (again.expired, again.overdue_qc) == ([], [])
    assert again.checkpoint == report.checkpoint  # nothing appended: the same checkpoint
    assert counts(engine) == before
