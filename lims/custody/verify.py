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

With ``--checkpoint CHECKPOINT.json`` (repeatable) a whole export is also checked against
signed checkpoints (RFC 9162 Merkle tree heads), so a truncated or rewritten ledger is
refused; given a dossier (one item's events with inclusion proofs) each event is checked
against the dossier's checkpoint. docs/custody.md describes every format and message.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

DOSSIER_FORMAT = "lims-custody-dossier/1"
GENESIS_HASH = "0" * 64


def canonical_bytes(event: dict[str, Any]) -> bytes:
    """The exact bytes an event's hash is computed over."""
    body = {k: v for k, v in event.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def event_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


# RFC 9162 Merkle tree hashing and proof checks (generation: lims.custody.merkle).
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not prove what it claims (the message says which check failed)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _lsb(x: int) -> bool:
    return bool(x & 1)


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root that ``proof`` leads to from ``leaf``; ProofError if the
    proof cannot belong to leaf ``index`` of a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            if not _lsb(fn):
                while not _lsb(fn) and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless ``proof`` shows ``leaf`` at ``index`` in the tree ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("the inclusion proof does not lead to the checkpoint's root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2: raise ProofError unless the tree ``first_root`` of ``first`` leaves
    is the prefix of the tree ``second_root`` of ``second`` leaves."""
    if not 0 < first <= second:
        raise ProofError(f"consistency needs 0 < first <= second, got {first}, {second}")
    if first == second:
        if proof:
            raise ProofError("equal sizes take an empty consistency proof")
        if first_root != second_root:
            raise ProofError("two different roots for the same tree size: the ledger forked")
        return
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        raise ProofError("empty consistency proof")
    fn, sn = first - 1, second - 1
    while _lsb(fn):
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than needed")
        if _lsb(fn) or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not _lsb(fn):
                while not _lsb(fn) and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than needed")
    if fr != first_root:
        raise ProofError("the consistency proof does not lead to the older checkpoint's root")
    if sr != second_root:
        raise ProofError("the consistency proof does not lead to the newer checkpoint's root")


# Checkpoints: the signed bytes and the signature check.
CHECKPOINT_FORMAT = "lims-custody-checkpoint/1"
_SPKI_ED25519_PREFIX = bytes.fromhex("302a300506032b6570032100")


def signed_bytes(
    *, tree_size: int, root_hash: str, last_hash: str, made_at: str, key_id: str
) -> bytes:
    """The exact bytes the lab's key signs: five LF-terminated ASCII lines."""
    return (
        f"{CHECKPOINT_FORMAT}\n"
        f"tree_size {tree_size}\n"
        f"root_hash {root_hash}\n"
        f"last_hash {last_hash}\n"
        f"made_at {made_at}\n"
        f"key_id {key_id}\n"
    ).encode("ascii")


def key_id_of(raw_public_key: bytes) -> str:
    """The first 16 hex digits of SHA-256 over the 32 raw public-key bytes."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def raw_public_key(pem: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key in PEM (SubjectPublicKeyInfo)."""
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 44 or not der.startswith(_SPKI_ED25519_PREFIX):
        raise ProofError("the public key is not an Ed25519 SubjectPublicKeyInfo PEM")
    return der[len(_SPKI_ED25519_PREFIX) :]


def check_checkpoint(checkpoint: dict[str, Any], public_key_pem: str) -> None:
    """Raise ProofError unless ``checkpoint`` is well formed and signed by that key."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ProofError(
            f"checkpoint format is {checkpoint.get('format')!r}, not {CHECKPOINT_FORMAT}"
        )
    fields = ("tree_size", "root_hash", "last_hash", "made_at", "key_id", "signature")
    missing = [f for f in fields if f not in checkpoint]
    if missing:
        raise ProofError(f"checkpoint lacks {', '.join(missing)}")
    size = checkpoint["tree_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ProofError(f"checkpoint tree_size {size!r} is not a positive integer")
    raw = raw_public_key(public_key_pem)
    if key_id_of(raw) != checkpoint["key_id"]:
        raise ProofError(
            f"checkpoint key_id {checkpoint['key_id']} is not the key given ({key_id_of(raw)})"
        )
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        raise ProofError(
            "cannot check the checkpoint's Ed25519 signature: the 'cryptography' package is "
            "not installed (pip install cryptography); nothing was accepted"
        ) from None
    message = signed_bytes(
        tree_size=size,
        root_hash=str(checkpoint["root_hash"]),
        last_hash=str(checkpoint["last_hash"]),
        made_at=str(checkpoint["made_at"]),
        key_id=str(checkpoint["key_id"]),
    )
    try:
        signature = bytes.fromhex(str(checkpoint["signature"]))
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise ProofError("the checkpoint's signature does not verify with the lab's key") from None


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
        if self.broken_seq is None:
            return f"BROKEN: {self.problem}"
        return f"BROKEN at event {self.broken_seq}: {self.problem}"


def verify_events(
    events: Iterable[dict[str, Any]],
    *,
    partial: bool = False,
    each: Callable[[dict[str, Any], bytes], None] | None = None,
) -> VerifyResult:
    """Check sequence, links and hashes; stop at the first broken event.

    ``partial`` accepts a first event that does not start at seq 1 (an export --since);
    ``each`` is given every verified event with its canonical bytes.
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
        data = canonical_bytes(event)
        recomputed = hashlib.sha256(data).hexdigest()
        if event.get("hash") != recomputed:
            result.problem = f"hash mismatch: stored {event.get('hash')}, recomputed {recomputed}"
            result.broken_seq = seq
            return result
        if result.first_seq is None:
            result.first_seq = seq
        result.last_seq = seq
        result.events += 1
        if each is not None:
            each(event, data)
        prev = recomputed
        expected_seq = seq + 1
    result.last_hash = prev
    return result


def read_jsonl(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"line {number} is not valid JSON: {exc}") from None


def _key_for(checkpoint: dict[str, Any], pinned: str | None, notes: list[str]) -> str:
    if pinned is not None:
        return pinned
    notes.append(
        f"key taken from the checkpoint itself (key id {checkpoint.get('key_id')}): compare it "
        "with the lab's published key (lims custody public-key), or pass --key"
    )
    return str(checkpoint.get("public_key", ""))


def verify_against_checkpoints(
    events: Iterable[dict[str, Any]], checkpoints: list[dict[str, Any]], *, key: str | None
) -> VerifyResult:
    """Check a whole export's chain, then its Merkle tree against each signed checkpoint."""
    result = VerifyResult()
    ordered = sorted(checkpoints, key=lambda c: c.get("tree_size", 0))
    for cp in ordered:
        try:
            check_checkpoint(cp, _key_for(cp, key, result.notes))
        except ProofError as exc:
            result.problem = f"checkpoint {cp.get('id')}: {exc}"
            return result
    sizes = {cp["tree_size"] for cp in ordered}
    roots: dict[int, tuple[str, str]] = {}  # size -> (Merkle root, chain hash of event size)
    stack: list[tuple[int, bytes]] = []  # the perfect subtrees so far, as (height, hash)

    def add(event: dict[str, Any], data: bytes) -> None:
        node = (0, leaf_hash(data))
        while stack and stack[-1][0] == node[0]:
            node = (node[0] + 1, node_hash(stack.pop()[1], node[1]))
        stack.append(node)
        if event["seq"] in sizes:
            root = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                root = node_hash(left, root)
            roots[event["seq"]] = (root.hex(), str(event["hash"]))

    notes, result = result.notes, verify_events(events, each=add)
    result.notes[:0] = notes
    if not result.ok:
        return result
    good = 0
    for cp in ordered:
        size, name = cp["tree_size"], f"checkpoint {cp.get('id')} ({cp['tree_size']} events)"
        if size > result.events:
            result.problem = (
                f"truncated: the export ends at seq {result.last_seq or 0} but {name} covers "
                f"events 1-{size}; events {result.events + 1}-{size} are missing"
            )
            result.broken_seq = result.events + 1
            return result
        if roots.get(size) != (cp["root_hash"], cp["last_hash"]):
            result.problem = (
                f"rewritten: events 1-{size} do not match the root of {name}; the first "
                f"difference lies in events {good + 1}-{size}"
                + (f" (events 1-{good} match an earlier checkpoint)" if good else "")
            )
            result.broken_seq = good + 1
            return result
        good = size
        result.notes.append(f"events 1-{size} match {name}, made {cp.get('made_at')}")
    return result


def verify_dossier(dossier: dict[str, Any], *, key: str | None) -> VerifyResult:
    """Check a dossier: its checkpoint's signature, then every event's bytes and proof."""
    result = VerifyResult()
    if dossier.get("format") != DOSSIER_FORMAT:
        result.problem = f"not a dossier: format {dossier.get('format')!r}"
        return result
    cp = dossier.get("checkpoint") or {}
    try:
        check_checkpoint(cp, _key_for(cp, key, result.notes))
        root = bytes.fromhex(cp["root_hash"])
    except (ProofError, ValueError) as exc:
        result.problem = f"checkpoint: {exc}"
        return result
    size = cp["tree_size"]
    listed = dossier.get("event_seqs", [])
    present = [e.get("seq") for e in dossier.get("events", [])]
    for seq in listed:
        if seq not in present:
            result.problem, result.broken_seq = "listed in the dossier but missing", seq
            return result
    for entry in dossier.get("events", []):
        seq = entry.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            result.problem, result.broken_seq = f"an entry has no integer seq: {seq!r}", None
            return result
        result.broken_seq = seq
        data = str(entry.get("canonical", "")).encode("utf-8")
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            result.problem = "canonical bytes are not JSON"
            return result
        if event.get("seq") != seq or entry.get("leaf_index") != seq - 1 or seq not in listed:
            result.problem = f"canonical bytes, leaf_index or listing disagree on seq {seq}"
            return result
        if canonical_bytes(event) != data:
            result.problem = "the event's bytes are not in canonical form"
            return result
        if hashlib.sha256(data).hexdigest() != entry.get("hash"):
            result.problem = "the canonical bytes do not hash to the event's chain hash"
            return result
        try:
            proof = [bytes.fromhex(h) for h in entry.get("proof", [])]
            verify_inclusion(seq - 1, size, leaf_hash(data), proof, root)
        except (ProofError, ValueError) as exc:
            result.problem = f"inclusion proof refused: {exc}"
            return result
        result.events += 1
        result.first_seq = result.first_seq or seq
        result.last_seq, result.last_hash = seq, str(entry.get("hash"))
    result.broken_seq = None
    result.notes.append(
        f"{result.events} events of {dossier['subject']['kind']} {dossier['subject']['id']} "
        f"are in checkpoint {cp.get('id')} ({size} events, root {cp['root_hash'][:16]}, "
        f"made {cp.get('made_at')})"
    )
    return result


def _is_dossier(path: str) -> bool:
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().strip()
    if first == "{":  # a dossier as written (indented); an export line is a whole object
        return True
    try:
        return json.loads(first).get("format") == DOSSIER_FORMAT
    except (json.JSONDecodeError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lims.custody.verify",
        description="Verify a custody export (JSON Lines) or a dossier offline.",
    )
    parser.add_argument("file", help="custody.jsonl (lims custody export) or a dossier JSON")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="CHECKPOINT.json",
        help="a saved signed checkpoint; the export must then be whole (repeatable)",
    )
    parser.add_argument("--key", metavar="PUBLIC.pem", help="the lab's public key to pin")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    key = None
    if args.key:
        with open(args.key, encoding="ascii") as handle:
            key = handle.read()
    if _is_dossier(args.file):
        with open(args.file, encoding="utf-8") as handle:
            result = verify_dossier(json.load(handle), key=key)
    elif args.checkpoint:
        checkpoints = []
        for name in args.checkpoint:
            with open(name, encoding="utf-8") as handle:
                checkpoints.append(json.load(handle))
        result = verify_against_checkpoints(read_jsonl(args.file), checkpoints, key=key)
    else:
        result = verify_events(read_jsonl(args.file), partial=True)
    for note in result.notes:
        print(note)
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
