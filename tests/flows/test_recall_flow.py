"""The lot-recall flow in Prefect's real engine: it sends the recall's notices (a webhook
receiver on loopback gets them, verified with standardwebhooks), reports what was recalled
and blocked and who was told, and says the recall is closable once every clinic
acknowledged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from sqlalchemy import Engine
from standardwebhooks import Webhook

from flows.common import label
from flows.recall import lot_recall
from lims.db import write_session
from lims.notifications import service
from lims.recalls.service import acknowledge
from lims.settings import NotificationSettings, get_notification_settings
from tests.builders import Lab
from tests.conftest import World
from tests.flows.conftest import run
from tests.notifications.receivers import WebhookReceiver
from tests.recalls.helpers import reached, recall


@pytest.fixture
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LIMS_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    get_notification_settings.cache_clear()
    yield
    get_notification_settings.cache_clear()


def test_the_recall_flow_tells_the_clinics_and_follows_acknowledgements(
    engine: Engine, world: World, db_url: str, loopback_allowed: None
) -> None:
    receiver = WebhookReceiver().start()
    try:
        lab = Lab.start(engine, world)
        r = reached(lab)
        with write_session(engine) as s:
            secret = service.register_endpoint(
                s,
                actor=lab.user(s, world.clinic_user_id),
                url=receiver.url,
                events_wanted=["recall.opened"],
                settings=NotificationSettings(webhook_allow_private_targets=True),
            ).secret
        number = recall(lab, r.lot)

        progress = run(
            lot_recall,
            request={"recall": number, "followed_by": "sato"},
            database_url=db_url,
        )
        (event,) = [Webhook(secret).verify(x.body, x.headers) for x in receiver.received]
        assert event["data"]["recall"] == number and event["data"]["doses"] == [r.ginza_dose]
        assert progress.recalled == [label(r.ginza_dose)]
        assert progress.blocked == [label(r.osaka_dose)]
        assert progress.pending_acknowledgement == ["GINZA", "OSAKA"]
        ginza = next(c for c in progress.clinics if c.clinic == "GINZA")
        assert ginza.told_at is not None and ginza.channels == ["webhook"]
        assert progress.closable is False
        with get_client(sync_client=True) as client:
            (artifact,) = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[f"recall-{number.lower()}"])
                ),
                limit=1,
                sort=ArtifactSort.CREATED_DESC,
            )
        assert label(r.osaka_dose) in str(artifact.data)

        for desk in (world.clinic_user_id, r.osaka_desk_id):
            with write_session(engine) as s:
                acknowledge(s, number=number, actor=lab.user(s, desk))
        again = run(
            lot_recall,
            request={"recall": number, "followed_by": "sato", "deliver": False},
            database_url=db_url,
        )
        assert again.pending_acknowledgement == [] and again.closable is True
        assert len(receiver.received) == 1  # each notice once
    finally:
        receiver.stop()


def test_an_unknown_recall_fails_the_run(engine: Engine, world: World, db_url: str) -> None:
    with pytest.raises(Exception, match="no recall RC-999999"):
        run(
            lot_recall,
            request={"recall": "RC-999999", "followed_by": "sato", "deliver": False},
            database_url=db_url,
        )
