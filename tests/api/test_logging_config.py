"""The logging configuration the API gives Prefect is the process's own file."""

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os
os.environ.pop("PREFECT_LOGGING_SETTINGS_PATH", None)
from api.logs import keep_access_log
keep_access_log()
print(os.environ["PREFECT_LOGGING_SETTINGS_PATH"])
"""


def _path_in_a_new_process() -> Path:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_LOGGING_SETTINGS_PATH"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def test_prefects_logging_file_is_private_and_not_predictable() -> None:
    # Prefect hands the file to logging.config.dictConfig, which can run code: a fixed
    # path in /tmp, reused when it already exists, let another local user plant one.
    first, second = _path_in_a_new_process(), _path_in_a_new_process()
    assert first != second
    assert not first.exists() and not second.exists()  # removed when the process ends
    os.environ.pop("PREFECT_LOGGING_SETTINGS_PATH", None)
    from api.logs import keep_access_log

    keep_access_log()
    mine = Path(os.environ["PREFECT_LOGGING_SETTINGS_PATH"])
    info = mine.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    assert "uvicorn" not in mine.read_text(encoding="utf-8").split("loggers:", 1)[-1]


def test_secrets_are_masked_in_access_lines_however_their_names_are_encoded() -> None:
    import logging

    from api.headers import MaskSecretsInUrls

    for url in (
        "/login?password=hunter2",
        "/login?pass%77ord=hunter2",  # refused as "password", so masked as one (review)
        "/login?PASSWORD=hunter2&next=/bench",
        "/api/v1/auth/token?username=a&api%5Fkey=hunter2",
        "/x?token+=hunter2",
    ):
        record = logging.LogRecord(
            "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"', ("1.2.3.4", "GET", url), None
        )
        MaskSecretsInUrls().filter(record)
        assert "hunter2" not in record.getMessage(), url
        assert "***" in record.getMessage()
    kept = "/api/v1/lab/materials?limit=5&state=RELEASED"
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, "%s", (kept,), None)
    MaskSecretsInUrls().filter(record)
    assert record.getMessage() == kept
