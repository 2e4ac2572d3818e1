"""The ``lims`` command: database upgrade, the demo (through the flows), custody checks,
user accounts, serving the app."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.tree import Tree
from sqlalchemy import Engine

from cli.serve import serve
from cli.users import app as users_app
from lims.db import make_engine, read_session, write_session
from lims.identity.codes import format_material_id
from lims.materials.lineage import lineage_graph
from lims.materials.models import Material
from lims.materials.service import get_material, remaining
from lims.settings import get_settings
from lims.steps.conservation import verify_conservation
from lims.units import Quantity, QuantityKind

app = typer.Typer(
    help="LIMS for adipose-derived stem-cell hair-restoration products.", no_args_is_help=True
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="user")
custody_app = typer.Typer(help="The custody and audit ledger.", no_args_is_help=True)
app.add_typer(custody_app, name="custody")
# Wide enough that lineage lines do not wrap when the output is a file or a CI log.
console = Console(width=None if Console().is_terminal else 140)


def _engine():
    url = get_settings().database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations to LIMS_DATABASE_URL and load the SOP versions in force."""
    from lims import migrate
    from lims.sops.service import sync_catalog

    engine = _engine()
    migrate.upgrade(engine)
    with write_session(engine) as session:
        added = sync_catalog(session)
    console.print(
        f"database at revision {migrate.current_revision(engine)}; "
        f"{len(added)} SOP version(s) added"
    )


@db_app.command("backup")
def db_backup(
    out: Path = typer.Argument(..., help="the backup file to write (e.g. lims-2026-12-03.dump)"),
) -> None:
    """Back up LIMS_DATABASE_URL while the lab keeps working (PostgreSQL: pg_dump custom
    format; SQLite: the online backup API). docs/operations.md gives retention and PITR."""
    from lims.errors import LimsError
    from lims.operations.backup import backup

    try:
        made = backup(_engine(), to=out)
    except LimsError as exc:
        console.print(f"[red]backup failed:[/red] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    console.print(
        f"{made.backend} backup {made.path}: {made.bytes} bytes in {made.seconds:.2f} s",
        highlight=False,
    )


@db_app.command("restore")
def db_restore(
    backup_file: Path = typer.Argument(..., help="a file written by lims db backup"),
) -> None:
    """Restore a backup into LIMS_DATABASE_URL, which must be a fresh, empty database; then
    verify the custody chain, every signed checkpoint (with LIMS_CHECKPOINT_KEY, the lab's
    key) and conservation. Exit 1 if the restore cannot be trusted."""
    from lims.custody.keys import checkpoint_key, public_pem
    from lims.errors import LimsError
    from lims.operations.backup import check_restored, restore

    engine = _engine()
    try:
        restore(engine, source=backup_file)
    except LimsError as exc:
        console.print(f"[red]restore refused:[/red] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    with read_session(engine) as session:
        checked = check_restored(session, public_key=public_pem(checkpoint_key()))
    console.print(checked.summary(), highlight=False)
    for problem in checked.problems:
        console.print(f"  [red]{problem}[/red]", highlight=False)
    if not checked.ok:
        raise typer.Exit(code=1)


@app.command()
def demo(
    if_empty: bool = typer.Option(
        False, "--if-empty", help="Only when the database holds no material yet."
    ),
) -> None:
    """Run the lab pipeline end to end through the Prefect flows (Prefect's ephemeral server
    unless PREFECT_API_URL is set): two patients from two clinics and a donor, a rejected
    SVF, a lot on hold, doses ordered, allocated, dispatched and received, a refused
    dispatch. Print a summary, the first donation's lineage and the custody check."""
    import os

    from lims import migrate
    from lims.demo import database_is_empty
    from lims.settings import DemoRefused, refuse_demo_data

    try:
        refuse_demo_data()
    except DemoRefused as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(code=1) from None
    engine = _engine()
    migrate.upgrade(engine)  # a fresh machine: the flows need the schema
    if if_empty and not database_is_empty(engine):
        console.print("database already holds materials; demo data not loaded")
        return
    # Prefect's run logs go to its server (and UI); on this console they would garble the
    # progress display. Set before Prefect is first imported.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    from flows.demo import DemoFailed, print_summary, run_with_progress

    try:
        result = run_with_progress(console)
    except DemoFailed as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(code=1) from None
    print_summary(console, result)
    print_lineage(engine, result.donation)
    from lims.custody.ledger import verify_chain

    started = time.perf_counter()
    with read_session(engine) as session:
        verified = verify_chain(session)
    took = time.perf_counter() - started
    console.print(f"custody verify: {verified.summary()} in {took:.3f} s", highlight=False)
    if not verified.ok:
        raise typer.Exit(code=1)


def _label(m: Material) -> str:
    initial = Quantity.from_canonical(QuantityKind(m.quantity_kind), m.initial_canonical)
    extra = f" P{m.passage}" if m.passage is not None else ""
    return (
        f"[bold]{format_material_id(m.material_id)}[/bold] {m.kind}{extra} "
        f"[cyan]{m.state}[/cyan]  made {initial.canonical_str()}, "
        f"left {remaining(m).canonical_str()}"
    )


def print_lineage(engine: Engine, material_id: str) -> None:
    """Print the lineage tree below ``material_id`` with states and quantities."""
    with read_session(engine) as s:
        graph = lineage_graph(s, material=get_material(s, material_id), up=False)
        children = graph.children()
        tree = Tree(_label(graph.root))
        shown: set[int] = set()

        def grow(node: Tree, mid: int) -> None:
            for child in children.get(mid, []):
                m = graph.nodes[child]
                if child in shown:  # pooled material: drawn once, referred to after
                    node.add(f"{format_material_id(m.material_id)} (pooled, shown above)")
                    continue
                shown.add(child)
                grow(node.add(_label(m)), child)

        grow(tree, graph.root.id)  # type: ignore[arg-type]
        console.print("\nlineage from the donation:")
        console.print(tree)
        report = verify_conservation(s)
        status = "holds" if report.ok else "BROKEN"
        console.print(
            f"conservation {status} for {report.materials_checked} materials and "
            f"{report.steps_checked} steps"
        )
        for problem in report.problems:
            console.print(f"  [red]{problem}[/red]")


@custody_app.command("verify")
def custody_verify() -> None:
    """Recompute the hash chain; exit 1 and name the first broken event if it is broken."""
    from lims.custody.ledger import verify_chain

    started = time.perf_counter()
    with read_session(_engine()) as session:
        result = verify_chain(session)
    elapsed = time.perf_counter() - started
    console.print(f"custody verify: {result.summary()} in {elapsed:.3f} s", highlight=False)
    if not result.ok:
        raise typer.Exit(code=1)


@custody_app.command("export")
def custody_export(
    since: str = typer.Option(None, help="ISO 8601 time; events from then on (UTC if no zone)"),
) -> None:
    """Write the ledger as JSON Lines to standard output (verify with python -m
    lims.custody.verify FILE)."""
    import sys
    from datetime import UTC, datetime

    from lims.custody.ledger import export_jsonl

    start = None
    if since:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            console.print(f"--since {since!r} is not an ISO 8601 time", style="red")
            raise typer.Exit(code=2) from None
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    with read_session(_engine()) as session:
        for line in export_jsonl(session, since=start):
            sys.stdout.write(line + "\n")


def _write_json(data: object, out: Path | None) -> None:
    import json
    import sys

    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"written to {out}", highlight=False)


@custody_app.command("checkpoint")
def custody_checkpoint(
    out: Path = typer.Option(None, help="also save the checkpoint's JSON here"),
    if_due: bool = typer.Option(
        False, "--if-due", help="only if LIMS_CHECKPOINT_EVERY events were appended since"
    ),
) -> None:
    """Sign a checkpoint (Merkle tree head) over the ledger as it is now; with LIMS_TSA_URL,
    send it and any pending ones to the time-stamping authority (a TSA that is down leaves
    them pending, never fails the checkpoint)."""
    from lims.custody.checkpoint import checkpoint_document, checkpoint_due, make_checkpoint
    from lims.custody.keys import checkpoint_key, public_pem
    from lims.custody.tsa import timestamp_pending
    from lims.settings import get_checkpoint_settings

    settings = get_checkpoint_settings()
    key = checkpoint_key()
    engine = _engine()
    with write_session(engine) as session:
        if if_due and not checkpoint_due(session, every=settings.checkpoint_every):
            console.print("no checkpoint due")
            return
        made = make_checkpoint(session, key=key)
    if settings.tsa_url:
        run = timestamp_pending(engine, url=settings.tsa_url, timeout=settings.tsa_timeout_seconds)
        console.print(
            f"timestamps: {len(run.stamped)} stamped, {len(run.pending)} still pending",
            highlight=False,
        )
        for problem in run.problems:
            console.print(f"  [yellow]{problem}[/yellow]", highlight=False)
    with read_session(engine) as session:
        data = checkpoint_document(session, made, public_key=public_pem(key))
    console.print(
        f"checkpoint {data['id']}: {data['tree_size']} events, root {data['root_hash']}",
        highlight=False,
    )
    if out is not None:
        _write_json(data, out)


@custody_app.command("public-key")
def custody_public_key() -> None:
    """Print the lab's checkpoint public key (PEM) for auditors to pin."""
    import sys

    from lims.custody.keys import checkpoint_key, public_pem

    sys.stdout.write(public_pem(checkpoint_key()))


@custody_app.command("proof")
def custody_proof(
    seq: int = typer.Option(None, help="inclusion proof of this event"),
    first: int = typer.Option(None, help="consistency proof from this checkpoint id"),
    checkpoint: int = typer.Option(None, help="checkpoint id (default: the latest)"),
    out: Path = typer.Option(None, help="write the JSON here instead of standard output"),
) -> None:
    """An event's inclusion proof (--seq) or two checkpoints' consistency proof (--first)."""
    from lims.custody.checkpoint import (
        checkpoint_json,
        consistency,
        get_checkpoint,
        inclusion,
        latest_checkpoint,
    )
    from lims.custody.keys import checkpoint_key, public_pem
    from lims.errors import LimsError

    if (seq is None) == (first is None):
        console.print("give exactly one of --seq or --first", style="red")
        raise typer.Exit(code=2)
    try:
        with read_session(_engine()) as session:
            target = (
                get_checkpoint(session, checkpoint) if checkpoint else latest_checkpoint(session)
            )
            if target is None:
                raise LimsError("no checkpoint yet: run lims custody checkpoint")
            if seq is not None:
                cp = checkpoint_json(target, public_key=public_pem(checkpoint_key()))
                data = {**inclusion(session, seq=seq, checkpoint=target), "checkpoint": cp}
            else:
                data = consistency(session, first=get_checkpoint(session, first), second=target)
    except LimsError as exc:
        console.print(str(exc), style="red", highlight=False)
        raise typer.Exit(code=1) from None
    _write_json(data, out)


@custody_app.command("dossier")
def custody_dossier(
    dose: str = typer.Option(None, help="a dose's material id"),
    order: str = typer.Option(None, help="an order number"),
    patient: str = typer.Option(None, help="a patient's chain-of-identity id"),
    lot: str = typer.Option(None, help="a lot's material id"),
    out: Path = typer.Option(None, help="the file to write (default: dossier-<id>.json)"),
) -> None:
    """One item's events and its lineage's, each with an inclusion proof against a signed
    checkpoint, in one JSON file (check it with python -m lims.custody.verify FILE)."""
    from lims.custody.dossier import build_dossier
    from lims.custody.keys import checkpoint_key
    from lims.errors import LimsError

    given = {
        k: v for k, v in {"dose": dose, "order": order, "patient": patient, "lot": lot}.items() if v
    }
    if len(given) != 1:
        console.print("give exactly one of --dose, --order, --patient, --lot", style="red")
        raise typer.Exit(code=2)
    [(kind, item)] = given.items()
    key = checkpoint_key()
    try:
        with write_session(_engine()) as session:
            if kind in ("dose", "lot"):
                item = get_material(session, item).material_id
            data = build_dossier(session, kind=kind, item=item, key=key)
    except LimsError as exc:
        console.print(str(exc), style="red", highlight=False)
        raise typer.Exit(code=1) from None
    target = out or Path(f"dossier-{item.replace(' ', '')}.json")
    _write_json(data, target)
    console.print(
        f"{len(data['events'])} events against checkpoint {data['checkpoint']['id']} "
        f"({data['checkpoint']['tree_size']} events)",
        highlight=False,
    )


app.command()(serve)


if __name__ == "__main__":
    app()
