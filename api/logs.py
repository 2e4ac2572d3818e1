"""The server's access log stays on whatever else configures logging.

Prefect configures logging when it is first imported (the first request that starts a
flow): its dictConfig names the ``uvicorn`` logger, and dictConfig resets every existing
child of a logger it names (no level, no handlers, propagating), so ``uvicorn.access``
went silent for the rest of the process. Prefect is pointed at a copy of its own
configuration without the ``uvicorn`` and ``fastapi`` entries (it runs no web server in
this process), so uvicorn's loggers are left as uvicorn set them.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import yaml

from api.headers import MaskSecretsInUrls

NOT_PREFECTS = ("uvicorn", "fastapi")


def _prefect_default_config() -> Path | None:
    spec = importlib.util.find_spec("prefect")  # found, not imported: it would configure
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "logging" / "logging.yml"
    return path if path.exists() else None


def keep_access_log() -> None:
    """Point Prefect (before its first import) at its logging configuration minus the
    server loggers, and mask secrets in uvicorn's access lines."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, MaskSecretsInUrls) for f in access.filters):
        access.addFilter(MaskSecretsInUrls())
    if os.environ.get("PREFECT_LOGGING_SETTINGS_PATH"):
        return  # the operator's own logging configuration for Prefect
    source = _prefect_default_config()
    if source is None:
        return
    text = source.read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    for name in NOT_PREFECTS:
        config.get("loggers", {}).pop(name, None)
    # A file of this process's own (0600, a name nobody can guess or plant beforehand):
    # Prefect hands it to logging.config.dictConfig, which can import and call code, so a
    # shared, predictable path in /tmp would let another local user run code as the LIMS.
    handle, name = tempfile.mkstemp(prefix="lims-prefect-logging-", suffix=".yml")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(yaml.safe_dump(config, sort_keys=False))
    target = Path(name)
    atexit.register(target.unlink, missing_ok=True)
    os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(target)
