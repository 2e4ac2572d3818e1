"""RFC 3161 timestamps for checkpoints: a time-stamping authority (LIMS_TSA_URL) signs the
SHA-256 of a checkpoint's signed bytes, so its time does not rest on the lab's word alone.

A TSA that is down never blocks: the checkpoint is made and signed anyway, and stays
pending until the maintenance flow (or ``lims custody checkpoint``) sends it again. The
request is sent outside any transaction; only the answer is written, in a short one.
The answer is kept whole (DER TimeStampResp); auditors check it with
``openssl ts -verify`` (docs/custody.md). Here it is checked for a granted status and for
carrying this checkpoint's message imprint and the request's nonce.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from lims.custody.checkpoint import signed_digest
from lims.custody.models import CustodyCheckpoint, CustodyTimestamp
from lims.db import read_session, utcnow, write_session

# AlgorithmIdentifier for SHA-256 (2.16.840.1.101.3.4.2.1) with NULL parameters.
_SHA256_ALGORITHM = bytes.fromhex("300d06096086480165030402010500")


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _read(data: bytes, at: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, offset after) of the DER element at ``at``."""
    tag, first = data[at], data[at + 1]
    at += 2
    if first & 0x80:
        count = first & 0x7F
        length, at = int.from_bytes(data[at : at + count], "big"), at + count
    else:
        length = first
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[at : at + length], at + length


def imprint(digest: bytes) -> bytes:
    return _der(0x30, _SHA256_ALGORITHM + _der(0x04, digest))


def timestamp_request(digest: bytes, nonce: int) -> bytes:
    """A DER TimeStampReq (version 1, SHA-256 imprint, nonce, certReq true)."""
    return _der(0x30, _integer(1) + imprint(digest) + _integer(nonce) + b"\x01\x01\xff")


class TsaRefused(ValueError):
    """The TSA answered, but not with a timestamp of what was asked."""


def check_response(response: bytes, digest: bytes, nonce: int) -> None:
    """Raise TsaRefused unless the answer grants a token over ``digest`` with ``nonce``."""
    try:
        tag, body, _ = _read(response)
        status_tag, status, after = _read(body)
        _, value, _ = _read(status)
    except (IndexError, ValueError) as exc:
        raise TsaRefused(f"not a TimeStampResp: {exc}") from None
    if tag != 0x30 or status_tag != 0x30 or int.from_bytes(value, "big") not in (0, 1):
        raise TsaRefused(f"the TSA did not grant the timestamp (status {value.hex()})")
    token = body[after:]
    if not token:
        raise TsaRefused("the TSA granted the request but sent no token")
    if imprint(digest) not in token or _integer(nonce) not in token:
        raise TsaRefused("the token is not over this checkpoint (imprint or nonce differs)")


def request_timestamp(url: str, digest: bytes, *, timeout: float) -> bytes:
    """Ask the TSA at ``url``; the checked DER answer."""
    nonce = secrets.randbits(63)
    request = urllib.request.Request(
        url,
        data=timestamp_request(digest, nonce),
        headers={"Content-Type": "application/timestamp-query"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        response = answer.read()
    check_response(response, digest, nonce)
    return response


@dataclass(frozen=True)
class TimestampRun:
    stamped: list[int]
    pending: list[int]
    problems: list[str]


def pending_checkpoints(session: Session) -> list[CustodyCheckpoint]:
    """Checkpoints without a timestamp, oldest first."""
    stamped = select(CustodyTimestamp.checkpoint_id)
    return list(
        session.exec(
            select(CustodyCheckpoint)
            .where(col(CustodyCheckpoint.id).not_in(stamped))
            .order_by(col(CustodyCheckpoint.id))
        ).all()
    )


def timestamp_pending(engine: Engine, *, url: str, timeout: float = 5.0) -> TimestampRun:
    """Send every pending checkpoint to the TSA; what failed stays pending for next time."""
    with read_session(engine) as session:
        todo = [(c.id, signed_digest(c)) for c in pending_checkpoints(session)]
    stamped: list[int] = []
    pending: list[int] = []
    problems: list[str] = []
    for checkpoint_id, digest in todo:
        assert checkpoint_id is not None
        try:
            response = request_timestamp(url, digest, timeout=timeout)
        except (OSError, urllib.error.URLError, TsaRefused) as exc:
            pending.append(checkpoint_id)
            problems.append(f"checkpoint {checkpoint_id}: {exc}")
            continue
        with write_session(engine) as session:
            session.add(
                CustodyTimestamp(
                    checkpoint_id=checkpoint_id,
                    tsa_url=url,
                    response=response,
                    stamped_at=utcnow(),
                )
            )
        stamped.append(checkpoint_id)
    return TimestampRun(stamped=stamped, pending=pending, problems=problems)
