"""An auditor verifying the chain while the lab keeps writing must not get a false alarm.

``verify_chain`` used to read the events (in batches) and then the head. On PostgreSQL
(READ COMMITTED) each statement sees the latest commits, so an append committed between
the two reads made the head look ahead of the chain, and the verdict was "events were
removed from the end" -- a false tampering alarm (found by the soak in test_soak.py). It
now reads the head first and verifies up to it. This test makes the interleaving exact: a
real second writer commits a real append at the moment the verifier reads the head.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event

from lims.custody import ledger
from lims.db import read_session, write_session
from tests.builders import Lab
from tests.conftest import World
from tests.reliability.conftest import Row


def test_verify_while_another_writer_commits_is_not_a_false_alarm(
    engine: Engine, world: World, figures: Row
) -> None:
    Lab.start(engine, world).lipoaspirate()
    fired: list[bool] = []

    def append_elsewhere() -> None:
        with write_session(engine) as s:
            ledger.append(s, actor=None, action="test.concurrent", entity="test", entity_id="1")

    def between(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not fired and "FROM custody_head" in statement and "FOR UPDATE" not in statement:
            fired.append(True)
            writer = threading.Thread(target=append_elsewhere)
            writer.start()
            writer.join(timeout=30)

    event.listen(engine, "before_cursor_execute", between)
    try:
        with read_session(engine) as s:
            result = ledger.verify_chain(s)
    finally:
        event.remove(engine, "before_cursor_execute", between)
    assert fired, "the verifier never read the head"
    assert result.ok, result.summary()
    with read_session(engine) as s:
        assert ledger.verify_chain(s).ok
    figures.requests = 0
    figures.faults = 1
    figures.notes = "an append committed between the verifier's event and head reads"
