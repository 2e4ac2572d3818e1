"""A real uvicorn server on a free loopback port, for tests that speak HTTP."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from sqlalchemy import Engine

from api.app import KEEP_ALIVE_SECONDS, create_app


@contextmanager
def live_server(engine: Engine) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            limit_concurrency=200,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test server did not start"
    # One answer before the test's first request: a fresh server's first answer (its
    # middleware stack is built then) once took 11 s on a CI machine busy with the rest of
    # the suite, longer than httpx's default 5 s timeout.
    httpx.get(f"http://127.0.0.1:{port}/health", timeout=60).raise_for_status()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
