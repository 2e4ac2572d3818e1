"""A delivery worker killed with SIGKILL in the middle of a send loses nothing: a real
subprocess worker is killed while the receiver holds its first request; after its claim runs
out, another worker delivers every event, in order, the interrupted one again with the same
webhook-id (at least once; the receiver deduplicates on it). SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import Engine
from standardwebhooks import Webhook

from lims.db import write_session
from lims.notifications import delivery, service
from lims.orders.service import cancel_order, order_for
from lims.parties.models import User
from lims.settings import NotificationSettings, get_settings
from tests.builders import Lab
from tests.conftest import World
from tests.notifications.receivers import WebhookReceiver
from tests.orders.test_queries import _place
from tests.reliability.conftest import database_url

ROOT = Path(__file__).resolve().parents[2]
CLAIM = 2.0


def test_killed_worker_loses_nothing(engine: Engine, world: World, tmp_path: Path) -> None:
    release = threading.Event()
    receiver = WebhookReceiver(hold_first=release).start()
    settings = NotificationSettings(webhook_allow_private_targets=True, claim_seconds=CLAIM)
    lab = Lab.start(engine, world)
    with write_session(engine) as s:
        desk = s.get(User, world.clinic_user_id)
        assert desk is not None
        endpoint = service.register_endpoint(s, actor=desk, url=receiver.url, settings=settings)
        numbers = [_place(s, desk, world.patient_coi, session_number=n) for n in (1, 2, 3)]
        tech = lab.user(s, world.tech_id)
        for number in numbers:
            cancel_order(s, order=order_for(s, actor=tech, number=number), actor=tech, reason="r")
        secret = endpoint.secret
    env = {
        **os.environ,
        "LIMS_DATABASE_URL": database_url(engine),
        "LIMS_SECRET_KEY": get_settings().secret_key,
        "LIMS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "LIMS_CLAIM_SECONDS": str(CLAIM),
        "LIMS_WEBHOOK_TIMEOUT_SECONDS": "60",
    }
    log = tmp_path / "worker.log"
    with log.open("ab") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "lims.notifications.worker", "--every", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not receiver.received:
            assert time.monotonic() < deadline and worker.poll() is None, log.read_text()
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)  # mid-send: the attempt was never recorded
        worker.wait(20)
    finally:
        if worker.poll() is None:
            worker.kill()
        release.set()
    assert len(receiver.received) == 1
    time.sleep(CLAIM + 0.2)  # the dead worker's claim runs out
    delivery.drain(engine, settings=settings)
    receiver.stop()
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 4 and ids[0] == ids[1] and len(set(ids)) == 3  # the first one twice
    orders = [Webhook(secret).verify(r.body, r.headers)["data"]["order"] for r in receiver.received]
    assert orders == [numbers[0], *numbers]
