"""The scheduled maintenance flow: expire lots and doses past their expiry, flag QC that is
overdue, re-verify the custody chain and sign a checkpoint over it. Deployed with a daily
schedule (flows.deploy). ``custody-checkpoint`` signs one only when LIMS_CHECKPOINT_EVERY
events were appended since the last: two indexed reads, cheap enough to run every few
minutes, instead of a check inside every append (which holds the ledger's lock).

Expiry is a state change the LIMS makes as its "system" account (``expire_due``); it is
idempotent by nature (a second run finds nothing left to expire). Overdue QC is reported,
not changed: a table in the run's artifacts ("overdue-qc") and a warning in its log, for QA
to act on. A broken custody chain fails the run, naming the first bad event.
"""

from __future__ import annotations

import time
from datetime import timedelta

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.common import LabModel, engine_for, lab_task, label
from lims.custody.checkpoint import checkpoint_due, make_checkpoint
from lims.custody.keys import checkpoint_key
from lims.custody.ledger import verify_chain
from lims.custody.tsa import timestamp_pending
from lims.db import read_session, utcnow, write_session
from lims.errors import LimsError
from lims.idempotency.service import forget_old_keys
from lims.qc.service import QC_TURNAROUND, expire_due, overdue_qc
from lims.quantity_fields import Duration
from lims.settings import get_checkpoint_settings, get_settings


class CustodyChainBroken(LimsError):
    """The nightly verification found the custody chain does not re-add: an incident."""

    http_status = 500
    code = "custody_chain_broken"


class OverdueItem(LabModel):
    material: str
    kind: str
    testing_since: str
    missing: list[str]


class ChainCheck(LabModel):
    ok: bool
    events: int
    summary: str
    seconds: float


class CheckpointMade(LabModel):
    id: int | None
    tree_size: int
    root_hash: str


class TimestampsSent(LabModel):
    stamped: list[int]
    pending: list[int]


class MaintenanceReport(LabModel):
    expired: list[str]
    idempotency_keys_forgotten: int = 0
    overdue_qc: list[OverdueItem]
    custody: ChainCheck
    checkpoint: CheckpointMade | None = None
    timestamps: TimestampsSent | None = None


@lab_task(name="expire due materials", run_name="expire due lots and doses")
def expire(database_url: str | None) -> list[str]:
    with write_session(engine_for(database_url)) as session:
        return [m.material_id for m in expire_due(session)]


@lab_task(name="forget old idempotency keys", run_name="forget API idempotency keys past retention")
def forget_keys(database_url: str | None) -> int:
    days = get_settings().idempotency_retention_days
    with write_session(engine_for(database_url)) as session:
        return forget_old_keys(session, older_than=utcnow() - timedelta(days=days))


@lab_task(name="flag overdue QC", run_name="flag overdue QC (after {turnaround_minutes} min)")
def flag_overdue_qc(database_url: str | None, turnaround_minutes: int) -> list[OverdueItem]:
    with read_session(engine_for(database_url)) as session:
        found = overdue_qc(session, turnaround=timedelta(minutes=turnaround_minutes))
    items = [
        OverdueItem(
            material=label(o.material_id),
            kind=o.kind,
            testing_since=f"{o.testing_since:%Y-%m-%d %H:%M} UTC",
            missing=o.missing,
        )
        for o in found
    ]
    if items:
        get_run_logger().warning(
            "QC overdue for %s", ", ".join(f"{i.material} ({', '.join(i.missing)})" for i in items)
        )
    create_table_artifact(
        key="overdue-qc",
        table=[i.model_dump() for i in items] or [{"material": "none overdue"}],
        description=f"Materials in QC testing longer than {turnaround_minutes / 1440:g} days "
        "with required results missing",
    )
    return items


@lab_task(name="verify custody chain", run_name="verify custody chain")
def verify_custody(database_url: str | None) -> ChainCheck:
    started = time.perf_counter()
    with read_session(engine_for(database_url)) as session:
        result = verify_chain(session)
    check = ChainCheck(
        ok=result.ok,
        events=result.events,
        summary=result.summary(),
        seconds=round(time.perf_counter() - started, 3),
    )
    create_markdown_artifact(
        key="custody-chain", markdown=f"**custody verify:** {check.summary} in {check.seconds} s"
    )
    if not result.ok:
        raise CustodyChainBroken(f"custody chain {result.summary()}")
    return check


@lab_task(name="sign custody checkpoint", run_name="sign custody checkpoint")
def sign_checkpoint(database_url: str | None, every: int | None) -> CheckpointMade | None:
    """Sign a checkpoint (the last one stands if nothing was appended); with ``every``, only
    once that many events were appended since the last one (the cheap, frequent check)."""
    key = checkpoint_key()
    with write_session(engine_for(database_url)) as session:
        if every is not None and not checkpoint_due(session, every=every):
            return None
        made = make_checkpoint(session, key=key)
        return CheckpointMade(id=made.id, tree_size=made.tree_size, root_hash=made.root_hash)


@lab_task(name="timestamp checkpoints", run_name="send pending checkpoints to the TSA")
def send_timestamps(database_url: str | None) -> TimestampsSent | None:
    """RFC 3161 timestamps for every checkpoint still without one (LIMS_TSA_URL); a TSA
    that is down is a warning, never a failed run: the checkpoints stay pending."""
    settings = get_checkpoint_settings()
    if not settings.tsa_url:
        return None
    run = timestamp_pending(
        engine_for(database_url), url=settings.tsa_url, timeout=settings.tsa_timeout_seconds
    )
    for problem in run.problems:
        get_run_logger().warning("timestamp pending: %s", problem)
    return TimestampsSent(stamped=run.stamped, pending=run.pending)


@flow(name="lab-maintenance", flow_run_name="lab maintenance", persist_result=False)
def lab_maintenance(
    qc_turnaround: Duration | None = None, database_url: str | None = None
) -> MaintenanceReport:
    """Expire what is past its expiry, forget API idempotency keys past their retention,
    flag overdue QC, re-verify the custody chain, sign a checkpoint over it."""
    minutes = (
        int(qc_turnaround.canonical)
        if qc_turnaround is not None
        else int(QC_TURNAROUND.total_seconds() // 60)
    )
    expired = expire(database_url)
    overdue = flag_overdue_qc(database_url, minutes)
    custody = verify_custody(database_url)
    checkpoint = sign_checkpoint(database_url, None) if custody.events else None
    return MaintenanceReport(
        expired=expired,
        idempotency_keys_forgotten=forget_keys(database_url),
        overdue_qc=overdue,
        custody=custody,
        checkpoint=checkpoint,
        timestamps=send_timestamps(database_url),
    )


@flow(name="custody-checkpoint", flow_run_name="custody checkpoint if due", persist_result=False)
def custody_checkpoint(database_url: str | None = None) -> CheckpointMade | None:
    """Sign a custody checkpoint if LIMS_CHECKPOINT_EVERY events were appended since the last."""
    made = sign_checkpoint(database_url, get_checkpoint_settings().checkpoint_every)
    if made is not None:
        send_timestamps(database_url)
    return made
