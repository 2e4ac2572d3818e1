"""The CLI runs the demo from a fresh database file (the scenario itself is tested in
tests/flows/test_demo.py)."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from lims.auth.service import sign_in
from lims.db import make_engine, read_session, write_session
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.parties.queries import find_user
from lims.qc.models import Deviation, DonorEligibility
from lims.settings import Settings
from lims.signatures.passwords import AuthenticationFailed
from lims.steps.conservation import verify_conservation


def test_cli_upgrade_and_demo_on_a_fresh_file(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "LIMS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        # The demo runs its flows on Prefect's ephemeral server: a throw-away home, no
        # PREFECT_API_URL (unset, not empty), no analytics.
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    lims = [sys.executable, "-m", "cli.main"]
    up = subprocess.run(
        [*lims, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert up.returncode == 0, up.stderr
    from lims.migrate import head_revision

    assert f"revision {head_revision()}" in up.stdout
    demo = subprocess.run([*lims, "demo"], env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    out = demo.stdout
    # The first donation's lineage: the fat is used up, doses went out, one waits.
    assert "lipoaspirate CONSUMED" in out
    assert "dose RECEIVED_AT_CLINIC" in out
    assert "dose ADMINISTERED" in out and "dose DEALLOCATED" in out
    assert "conservation holds" in out
    # The scenario: a rejected SVF, a lot on hold, the refused dispatch, every flow run.
    assert "QC_FAILED" in out and "REJECTED by Yui Tanaka" in out
    assert "ON_HOLD (on hold: DV-" in out
    assert "refused as it should be" in out and "DispatchRefused" in out
    # The clinic's end: quarantine released by QA, a vial returned, a wrong-patient scan.
    assert "received at 12 degC, quarantined with a deviation; RELEASED for use by QA" in out
    assert "returned to its lot by QA" in out and "left 26 vials" in out
    assert "do not administer: wrong patient" in out
    assert "34/34" in out and "34 flow runs in" in out
    assert "custody verify: OK:" in out
    # What the flows left in the database.
    engine = make_engine(env["LIMS_DATABASE_URL"])
    with read_session(engine) as s:
        states = Counter((m.kind, m.state) for m in s.exec(select(Material)).all())
        assert states[("aape_lot", "RELEASED")] == 2 and states[("aape_lot", "ON_HOLD")] == 1
        assert states[("dose", "RECEIVED_AT_CLINIC")] == 2 and states[("dose", "LABELED")] == 0
        assert states[("dose", "ADMINISTERED")] == 1 and states[("dose", "DEALLOCATED")] == 1
        assert states[("svf", "REJECTED")] == 1
        assert [d.eligible for d in s.exec(select(DonorEligibility)).all()] == [True]
        assert Counter(o.status for o in s.exec(select(DoseOrder)).all()) == {
            "RECEIVED": 3,
            "CANCELLED": 1,
        }
        # The held lot's deviation stays open; the excursion's was closed by QA's release.
        open_or_closed = [d.closed_at is None for d in s.exec(select(Deviation)).all()]
        assert sorted(open_or_closed) == [False, True]
        assert verify_conservation(s).ok
    engine.dispose()
    skip = subprocess.run(
        [*lims, "demo", "--if-empty"], env=env, capture_output=True, text=True, timeout=120
    )
    assert "demo data not loaded" in skip.stdout


def test_settings_refuse_unsafe_production_defaults() -> None:
    strong: dict[str, Any] = {"argon2_time_cost": 3, "argon2_memory_kib": 65536}
    with pytest.raises(ValueError, match="LIMS_SECRET_KEY"):
        Settings(environment="production", database_url="postgresql+psycopg://x/y", **strong)
    with pytest.raises(ValueError, match="PostgreSQL"):
        Settings(environment="production", secret_key="s" * 40, **strong)
    with pytest.raises(ValueError, match="OWASP"):
        Settings(
            environment="production",
            secret_key="s" * 40,
            database_url="postgresql+psycopg://x/y",
            argon2_memory_kib=1024,
        )
    with pytest.raises(ValueError, match="at least 32"):
        Settings(secret_key="short")
    with pytest.raises(ValueError, match="ISBT 128 FIN"):
        Settings(facility_code="x1")
    ok = Settings(
        environment="production",
        secret_key="s" * 40,
        database_url="postgresql+psycopg://x/y",
        **strong,
    )
    assert ok.environment == "production"


def test_cli_user_accounts(tmp_path: Path) -> None:
    env = {**os.environ, "LIMS_DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}"}
    lims = [sys.executable, "-m", "cli.main"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*lims, *args], env=env, capture_output=True, text=True, timeout=120)

    assert run("db", "upgrade").returncode == 0
    made = run(
        "user", "add", "root", "Ada Admin", "--role", "admin", "--password", "an admin passphrase"
    )
    assert made.returncode == 0 and "user root (admin) created" in made.stdout
    short = run("user", "add", "bob", "Bob", "--role", "qa", "--password", "short")
    assert short.returncode == 1 and "at least 12 characters" in short.stdout
    nowhere = run(
        "user",
        "add",
        "desk",
        "Desk",
        "--role",
        "clinic",
        "--clinic",
        "NOPE",
        "--password",
        "a clinic passphrase",
    )
    assert nowhere.returncode == 2 and "no clinic NOPE" in nowhere.stderr
    again = run("user", "password", "root", "--password", "another admin passphrase")
    assert again.returncode == 0
    # A leaver: deactivated from the command line, the account can no longer sign in.
    gone = run("user", "deactivate", "root")
    assert gone.returncode == 0 and "root deactivated" in gone.stdout
    assert run("user", "deactivate", "nobody").returncode == 2
    engine = make_engine(env["LIMS_DATABASE_URL"])
    with read_session(engine) as s:
        user = find_user(s, username="root")
        assert user is not None and not user.active and user.token_version >= 1
    with pytest.raises(AuthenticationFailed), write_session(engine) as s:
        sign_in(s, username="root", password="another admin passphrase", client="127.0.0.9")
    engine.dispose()
