"""``lims user``: accounts for people (the first administrator, clinic desks, staff)."""

from __future__ import annotations

import typer
from rich.console import Console
from sqlmodel import col, select

from lims.db import make_engine, read_session, write_session
from lims.errors import LimsError
from lims.parties.models import Clinic, Role
from lims.parties.queries import find_user, users_with_clinics
from lims.parties.service import create_user
from lims.settings import get_settings
from lims.signatures.passwords import set_password

app = typer.Typer(help="User accounts.", no_args_is_help=True)
console = Console()


def _password(value: str | None) -> str:
    return value or typer.prompt("password", hide_input=True, confirmation_prompt=True)


@app.command("add")
def add(
    username: str,
    printed_name: str = typer.Argument(..., help="the name printed on signatures"),
    role: Role = typer.Option(..., help="technician, qa, clinic, auditor or admin"),
    clinic: str = typer.Option(None, help="clinic code, for a clinic account"),
    password: str = typer.Option(None, help="prompted for when not given"),
) -> None:
    """Create a user with a password (argon2-hashed; never stored as given)."""
    engine = make_engine(get_settings().database_url)
    try:
        with write_session(engine) as session:
            home = None
            if clinic:
                home = session.exec(
                    select(Clinic).where(col(Clinic.code) == clinic.upper())
                ).first()
                if home is None:
                    raise typer.BadParameter(f"no clinic {clinic}", param_hint="--clinic")
            user = create_user(
                session, username=username, printed_name=printed_name, role=role, clinic=home
            )
            set_password(session, user=user, password=_password(password), actor=None)
    except LimsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    console.print(f"user {user.username} ({role.value}) created")


@app.command("password")
def password(
    username: str, password: str = typer.Option(None, help="prompted for when not given")
) -> None:
    """Set a new password (also unlocks an account locked by wrong passwords)."""
    engine = make_engine(get_settings().database_url)
    try:
        with write_session(engine) as session:
            user = find_user(session, username=username)
            if user is None:
                raise typer.BadParameter(f"no user {username}")
            set_password(session, user=user, password=_password(password), actor=None)
    except LimsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    console.print(f"password of {username} set")


@app.command("deactivate")
def deactivate(username: str) -> None:
    """Deactivate an account (a leaver): its sign-in, tokens, sessions and API keys stop."""
    from lims.auth.service import deactivate_user

    engine = make_engine(get_settings().database_url)
    try:
        with write_session(engine) as session:
            user = find_user(session, username=username)
            if user is None:
                raise typer.BadParameter(f"no user {username}")
            deactivate_user(session, user=user, actor=None)
    except LimsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    console.print(f"{username} deactivated: no sign-in, token, session or API key works")


@app.command("list")
def list_users() -> None:
    """List the accounts: username, role, clinic, whether it can sign in (never a password)."""
    engine = make_engine(get_settings().database_url)
    with read_session(engine) as session:
        rows = users_with_clinics(session)
        lines = [
            f"{user.username:<24} {user.role:<10} {code or '-':<8} "
            f"{'active' if user.active else 'deactivated'}"
            f"{'' if user.password_hash else ', no password yet'}  {user.printed_name}"
            for user, code in rows
        ]
    console.print(f"{'username':<24} {'role':<10} {'clinic':<8} status  name", highlight=False)
    for line in lines:
        console.print(line, highlight=False, markup=False)
    console.print(f"{len(lines)} account(s)", highlight=False)
