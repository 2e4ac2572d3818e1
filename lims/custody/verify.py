"""Verify a custody ledger: the database's or an exported JSON Lines file, offline.

Standard library only, so an auditor can run ``python -m lims.custody.verify custody.jsonl``
on any machine with Python, or re-implement it from this description in any language:

Canonical form of an event: the JSON object of all its fields except ``hash``, with keys
sorted, no insignificant whitespace (separators ``,`` and ``:``), non-ASCII characters
written as themselves, encoded as UTF-8. Field values are only strings, integers, booleans,
null, lists and objects (decimals and times are strings; times are ISO 8601 UTC with
microseconds and a ``Z``). ``hash`` is the lowercase hex SHA-256 of the canonical form.
The chain: event ``seq`` 1 has ``prev_hash`` of 64 zeros; each next event has ``seq`` one
higher and ``prev_hash`` equal to the previous event's ``hash``.

An export made with ``--since`` starts mid-chain; its first event's ``prev_hash`` is then
taken on trust (printed), and everything after it is checked.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_bytes(event: dict[str, Any]) -> bytes:
    """The exact bytes an event's hash is computed over."""
    body = {k: v for k, v in event.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def event_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


@dataclass
class VerifyResult:
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str = GENESIS_HASH
    problem: str | None = None
    broken_seq: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        if self.ok:
            span = f"seq {self.first_seq}-{self.last_seq}" if self.events else "empty ledger"
            return f"OK: {self.events} events verified ({span}), head {self.last_hash[:16]}"
        return f"BROKEN at event {self.broken_seq}: {self.problem}"


def verify_events(events: Iterable[dict[str, Any]], *, partial: bool = False) -> VerifyResult:
    """Check sequence, links and hashes; stop at the first broken event.

    ``partial`` accepts a first event that does not start at seq 1 (an export --since).
    """
    result = VerifyResult()
    expected_seq: int | None = None
    prev = GENESIS_HASH
    for event in events:
        seq = event.get("seq")
        if not isinstance(seq, int):
            result.problem, result.broken_seq = f"event has no integer seq: {seq!r}", None
            return result
        if expected_seq is None:
            if seq != 1 and not partial:
                result.problem, result.broken_seq = f"ledger starts at seq {seq}, not 1", seq
                return result
            if seq != 1:
                prev = str(event.get("prev_hash"))
                result.notes.append(f"partial export: first event {seq} links to {prev}")
        elif seq != expected_seq:
            kind = "gap" if seq > expected_seq else "repeat or reorder"
            result.problem = f"sequence {kind}: expected {expected_seq}, found {seq}"
            result.broken_seq = seq
            return result
        if event.get("prev_hash") != prev:
            result.problem = "prev_hash does not match the previous event's hash"
            result.broken_seq = seq
            return result
        recomputed = event_hash(event)
        if event.get("hash") != recomputed:
            result.problem = f"hash mismatch: stored {event.get('hash')}, recomputed {recomputed}"
            result.broken_seq = seq
            return result
        if result.first_seq is None:
            result.first_seq = seq
        result.last_seq = seq
        result.events += 1
        prev = recomputed
        expected_seq = seq + 1
    result.last_hash = prev
    return result


def read_jsonl(path: str) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"line {number} is not valid JSON: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lims.custody.verify custody.jsonl", file=sys.stderr)
        return 2
    result = verify_events(read_jsonl(args[0]), partial=True)
    for note in result.notes:
        print(note)
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
