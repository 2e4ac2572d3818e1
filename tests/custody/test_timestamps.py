"""RFC 3161 timestamps from a real TSA on loopback (OpenSSL's ``ts -reply`` behind a small
HTTP handler): granted tokens verify with ``openssl ts -verify``; a TSA that is down
leaves the checkpoint made and pending, and the next run stamps it."""

from __future__ import annotations

import base64
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from lims.custody.checkpoint import checkpoint_document, make_checkpoint, signed_digest
from lims.custody.keys import public_pem
from lims.custody.tsa import (
    TsaRefused,
    check_response,
    pending_checkpoints,
    timestamp_pending,
)
from lims.db import read_session, write_session
from tests.conftest import World

KEY = Ed25519PrivateKey.generate()
CONFIG = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Test TSA
[tsa_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[tsa]
default_tsa = tsa_config
[tsa_config]
dir = .
serial = ./tsaserial
signer_cert = ./tsa.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(cwd: Path, *args: str, data: bytes | None = None) -> bytes:
    done = subprocess.run(
        ["openssl", *args], cwd=cwd, input=data, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture(scope="module")
def tsa_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tsa-") as name:
        d = Path(name)
        (d / "tsa.cnf").write_text(CONFIG, encoding="ascii")
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
        _openssl(
            d,
            "req",
            "-x509",
            *ec,
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=Test CA",
            "-extensions",
            "ca_ext",
            "-config",
            "tsa.cnf",
        )
        _openssl(
            d,
            "req",
            *ec,
            "-keyout",
            "tsa.key",
            "-out",
            "tsa.csr",
            "-subj",
            "/CN=Test TSA",
            "-config",
            "tsa.cnf",
        )
        _openssl(
            d,
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tsa.crt",
            "-days",
            "2",
            "-extfile",
            "tsa.cnf",
            "-extensions",
            "tsa_ext",
        )
        (d / "tsaserial").write_text("01\n", encoding="ascii")
        yield d


@pytest.fixture
def tsa(tsa_dir: Path) -> Iterator[str]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock, tempfile.TemporaryDirectory() as work:
                (Path(work) / "q.tsq").write_bytes(query)
                reply = _openssl(
                    tsa_dir,
                    "ts",
                    "-reply",
                    "-config",
                    "tsa.cnf",
                    "-queryfile",
                    str(Path(work) / "q.tsq"),
                    "-out",
                    str(Path(work) / "r.tsr"),
                )
                del reply
                body = (Path(work) / "r.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    server.shutdown()
    server.server_close()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/tsa"


def test_a_down_tsa_never_blocks_and_pending_ones_are_stamped_later(
    engine: Engine, world: World, tsa: str, tsa_dir: Path, tmp_path: Path
) -> None:
    with write_session(engine) as s:
        made = make_checkpoint(s, key=KEY)
    down = timestamp_pending(engine, url=_closed_port(), timeout=2)
    assert down.stamped == [] and down.pending == [made.id] and down.problems
    with read_session(engine) as s:
        assert [c.id for c in pending_checkpoints(s)] == [made.id]

    run = timestamp_pending(engine, url=tsa)
    assert run.stamped == [made.id] and run.pending == []
    assert timestamp_pending(engine, url=tsa).stamped == []  # nothing left pending
    with read_session(engine) as s:
        document = checkpoint_document(s, made, public_key=public_pem(KEY))
        digest = signed_digest(made)
    assert document["timestamp"]["digest"] == digest.hex()
    response = base64.b64decode(document["timestamp"]["response"])
    (tmp_path / "resp.tsr").write_bytes(response)
    shown = _openssl(
        tsa_dir,
        "ts",
        "-verify",
        "-digest",
        digest.hex(),
        "-in",
        str(tmp_path / "resp.tsr"),
        "-CAfile",
        "ca.crt",
        "-untrusted",
        "tsa.crt",
    )
    assert b"Verification: OK" in shown
    wrong = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-digest",
            "00" * 32,
            "-in",
            str(tmp_path / "resp.tsr"),
            "-CAfile",
            "ca.crt",
            "-untrusted",
            "tsa.crt",
        ],
        cwd=tsa_dir,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode != 0
    with pytest.raises(TsaRefused, match="imprint or nonce"):
        check_response(response, b"\x00" * 32, 1)


def test_lims_custody_checkpoint_with_a_tsa_down_then_up(
    engine: Engine, world: World, tsa: str, tmp_path: Path
) -> None:
    import json
    import sys

    from tests.custody.test_ledger import _cli_env

    env = {**_cli_env(engine), "LIMS_CHECKPOINT_KEY_FILE": str(tmp_path / "cp.pem")}

    def checkpoint(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "custody",
                "checkpoint",
                "--out",
                str(tmp_path / "cp.json"),
            ],
            env={**env, "LIMS_TSA_URL": url, "LIMS_TSA_TIMEOUT_SECONDS": "2"},
            capture_output=True,
            text=True,
            timeout=120,
        )

    down = checkpoint(_closed_port())
    assert down.returncode == 0, down.stdout + down.stderr  # the checkpoint is made anyway
    assert "0 stamped, 1 still pending" in down.stdout
    assert "timestamp" not in json.loads((tmp_path / "cp.json").read_text(encoding="utf-8"))
    up = checkpoint(tsa)
    assert up.returncode == 0 and "1 stamped, 0 still pending" in up.stdout, up.stdout
    saved = json.loads((tmp_path / "cp.json").read_text(encoding="utf-8"))
    assert saved["timestamp"]["tsa_url"] == tsa
