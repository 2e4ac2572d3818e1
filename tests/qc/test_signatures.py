"""Part 11 signatures: password every time, meaning, binding, lockout, no plain passwords."""

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from lims.custody.models import CustodyEvent
from lims.db import read_session, write_session
from lims.errors import InvalidInput, RuleViolation
from lims.parties.models import User
from lims.signatures.models import Meaning
from lims.signatures.passwords import AccountLocked, AuthenticationFailed, set_password
from lims.signatures.service import sign, signatures_for
from lims.steps.service import InputBooking
from tests.builders import INTAKE_OK, PASSWORD, Lab
from tests.conftest import World


def _sign(
    engine: Engine,
    user_id: int,
    password: str,
    record_id: str,
    meaning: Meaning = Meaning.REVIEWED,
    record_type: str = "material",
) -> None:
    with write_session(engine) as s:
        user = s.get(User, user_id)
        assert user is not None
        sign(
            s,
            user=user,
            password=password,
            meaning=meaning,
            record_type=record_type,
            record_id=record_id,
        )


def test_signature_records_name_time_meaning_and_hash(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    lab.ensure_password(world.qa_id)
    _sign(engine, world.qa_id, PASSWORD, lipo)
    with read_session(engine) as s:
        (check,) = signatures_for(s, record_type="material", record_id=lipo)
        sig = check.signature
        assert (sig.printed_name, sig.meaning, sig.role) == ("Kenji Sato", "reviewed", "qa")
        assert len(sig.record_sha256) == 64 and sig.signed_at.tzinfo is not None
        assert check.valid
        user = s.get(User, world.qa_id)
        assert user is not None and user.password_hash is not None
        assert PASSWORD not in user.password_hash and user.password_hash.startswith("$argon2")
        event = s.exec(
            select(CustodyEvent).where(col(CustodyEvent.action) == "signature.applied")
        ).one()
        assert event.new is not None and event.new["record_sha256"] == sig.record_sha256
        assert PASSWORD not in str(event.new)


def test_changing_a_signed_record_breaks_the_binding_visibly(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    svf = lab.svf()
    lab.ensure_password(world.qa_id)
    with write_session(engine) as s:
        from lims.steps.models import Step

        step = s.exec(select(Step).where(col(Step.sop_code) == "SVF-SEP")).one()
        step_id = str(step.id)
    _sign(engine, world.qa_id, PASSWORD, step_id, record_type="step")
    _sign(engine, world.qa_id, PASSWORD, svf, meaning=Meaning.REVIEWED, record_type="batch_record")
    # Behind the application's back, someone edits the signed step's parameters.
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(
            text("UPDATE step SET parameters = :p WHERE id = :i"),
            {"p": '{"viability": "99 %"}', "i": int(step_id)},
        )
    with read_session(engine) as s:
        (step_check,) = signatures_for(s, record_type="step", record_id=step_id)
        (batch_check,) = signatures_for(s, record_type="batch_record", record_id=svf)
    assert not step_check.valid and "RECORD CHANGED SINCE SIGNING" in step_check.describe()
    assert not batch_check.valid  # the batch record includes the step that made it


def test_wrong_password_refused_counted_audited_and_locks(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    lab.ensure_password(world.qa_id)
    for attempt in range(1, 6):
        with pytest.raises(AuthenticationFailed) as err:
            _sign(engine, world.qa_id, "not the password", lipo)
        assert "user name or password is wrong" in str(err.value)
        assert not isinstance(err.value, AccountLocked)
        with read_session(engine) as s:
            user = s.get(User, world.qa_id)
            assert user is not None and user.failed_password_attempts == attempt
    with pytest.raises(AccountLocked, match="locked until"):
        _sign(engine, world.qa_id, PASSWORD, lipo)  # even the right password, while locked
    with read_session(engine) as s:
        actions = [e.action for e in s.exec(select(CustodyEvent)).all()]
        assert not signatures_for(s, record_type="material", record_id=lipo)
    assert actions.count("user.password_failed") == 4 and actions.count("user.locked") == 1
    with write_session(engine) as s:  # an administrator resets the password: unlocked
        user = s.get(User, world.qa_id)
        assert user is not None
        set_password(s, user=user, password="a brand new passphrase", actor=None)
    _sign(engine, world.qa_id, "a brand new passphrase", lipo)


def test_session_alone_is_not_enough_and_roles_and_meanings(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    with pytest.raises(AuthenticationFailed):  # no password set at all
        _sign(engine, world.tech_id, "", lipo)
    lab.ensure_password(world.auditor_id)
    with pytest.raises(RuleViolation, match="cannot sign"):
        _sign(engine, world.auditor_id, PASSWORD, lipo)
    lab.ensure_password(world.tech_id)
    with pytest.raises(InvalidInput, match="means one of"):
        _sign(engine, world.tech_id, PASSWORD, lipo, meaning="liked")  # type: ignore[arg-type]
    with write_session(engine) as s:
        user = s.get(User, world.tech_id)
        assert user is not None
        with pytest.raises(InvalidInput, match="at least 12"):
            set_password(s, user=user, password="short", actor=None)
        with pytest.raises(InvalidInput, match="user name"):
            set_password(s, user=user, password="tanaka-is-my-password", actor=None)


def test_intake_step_can_be_signed_as_performed(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    step = lab.step("LIPO-INTAKE", 4, inputs=[InputBooking(lipo)], parameters=INTAKE_OK).step
    lab.ensure_password(world.tech_id)
    _sign(engine, world.tech_id, PASSWORD, str(step.id), Meaning.PERFORMED, "step")
    with read_session(engine) as s:
        (check,) = signatures_for(s, record_type="step", record_id=str(step.id))
    assert check.valid and check.signature.meaning == "performed"


def test_a_refused_signature_undoes_the_transaction_but_keeps_the_count(
    engine: Engine, world: World
) -> None:
    """Work done earlier in the same transaction is rolled back with the wrong password,
    while the failure and its audit event are committed in that same transaction."""
    from lims.custody import ledger

    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    lab.ensure_password(world.qa_id)
    with read_session(engine) as s:
        events_before = len(s.exec(select(CustodyEvent)).all())
    with pytest.raises(AuthenticationFailed), write_session(engine) as s:
        qa = s.get(User, world.qa_id)
        assert qa is not None
        ledger.append(s, actor=qa, action="test.before_signing", entity="test", entity_id="1")
        sign(
            s,
            user=qa,
            password="not the password",
            meaning=Meaning.REVIEWED,
            record_type="material",
            record_id=lipo,
        )
    with read_session(engine) as s:
        actions = [e.action for e in s.exec(select(CustodyEvent)).all()]
        qa = s.get(User, world.qa_id)
        assert qa is not None and qa.failed_password_attempts == 1
        assert ledger.verify_chain(s).ok
    assert len(actions) == events_before + 1
    assert actions[-1] == "user.password_failed" and "test.before_signing" not in actions
