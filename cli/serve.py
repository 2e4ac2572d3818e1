"""``lims serve``: the web pages and the API, in one process or in several behind one port.

Every guarantee a write has (its Idempotency-Key, the custody chain's lock, sign-in
throttling) lives in the database, so it holds across processes; what a process keeps
for itself is its request metrics, which several processes share through
prometheus-client's multiprocess directory so that /metrics reports them all."""

from __future__ import annotations

import os
import tempfile

import typer
from rich.console import Console

console = Console()


def worker_count(asked: int) -> int:
    """The processes to run: ``asked``, or one per core when 0."""
    return asked if asked > 0 else max(1, os.cpu_count() or 1)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = typer.Option(
        0, min=0, max=64, help="API processes behind the port; 0 (the default) = one per core"
    ),
) -> None:
    """Serve the web pages (bench, QA, clinic portal, audit), the HTTP API under /api/v1
    (OpenAPI at /docs), /health, /ready and /metrics; refuses to start on unsafe settings
    (production without a real secret, a checkpoint key or PostgreSQL)."""
    import uvicorn

    from lims.settings import get_checkpoint_settings, get_settings

    try:
        # Read (and, in development, generated into ./var) here, once, before any worker
        # starts: workers racing to generate a key would each sign with their own.
        get_settings()
        get_checkpoint_settings()
    except ValueError as exc:  # pydantic's ValidationError names every refused setting
        console.print(f"[red]refused to serve:[/red] {exc}")
        raise typer.Exit(1) from None

    from api.app import KEEP_ALIVE_SECONDS, SUPERVISOR_ENV

    count = worker_count(workers)
    if count > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Set before the workers import prometheus-client (they are spawned, not forked).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lims-metrics-")
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    uvicorn.run(
        "api.app:create_app" if count == 1 else "api.app:create_worker_app",
        factory=True,
        host=host,
        port=port,
        workers=count,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
