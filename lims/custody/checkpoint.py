"""Signed checkpoints over the custody ledger, and the proofs that an auditor checks
against them (inclusion of an event, consistency of two checkpoints).

A checkpoint is a read of the ledger, signed: it changes no lab record, so it appends no
custody event (one would also make every checkpoint out of date the moment it was made).
Its table is append-only like the events.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from lims.custody.keys import key_id, public_pem
from lims.custody.ledger import HEAD_ID, format_time, iter_events
from lims.custody.merkle import MerkleTree, leaf_hash
from lims.custody.models import CustodyCheckpoint, CustodyHead, CustodyTimestamp
from lims.custody.verify import CHECKPOINT_FORMAT, canonical_bytes, signed_bytes, verify_events
from lims.db import utcnow
from lims.errors import InvalidInput, NotFound, RuleViolation


def _head(session: Session) -> tuple[int, str]:
    head = session.get(CustodyHead, HEAD_ID)
    if head is None:
        raise NotFound("the custody ledger has no head row")
    return head.seq, head.hash


def ledger_tree(session: Session, *, size: int | None = None) -> MerkleTree:
    """The Merkle tree over events 1..size (the head's seq if None)."""
    size = _head(session)[0] if size is None else size
    if size == 0:
        return MerkleTree([])
    return MerkleTree(leaf_hash(canonical_bytes(e)) for e in iter_events(session, until_seq=size))


def latest_checkpoint(session: Session) -> CustodyCheckpoint | None:
    """The checkpoint over the most events (the newest among equals)."""
    return session.exec(
        select(CustodyCheckpoint)
        .order_by(col(CustodyCheckpoint.tree_size).desc(), col(CustodyCheckpoint.id).desc())
        .limit(1)
    ).first()


def get_checkpoint(session: Session, checkpoint_id: int) -> CustodyCheckpoint:
    found = session.get(CustodyCheckpoint, checkpoint_id)
    if found is None:
        raise NotFound(f"no custody checkpoint {checkpoint_id}")
    return found


def checkpoint_due(session: Session, *, every: int) -> bool:
    """Whether ``every`` or more events were appended since the last checkpoint (two reads)."""
    size = session.execute(sa_select(func.max(CustodyCheckpoint.tree_size))).scalar() or 0
    return _head(session)[0] - int(size) >= every


def _verified_tree(
    session: Session, *, size: int, last_hash: str, latest: CustodyCheckpoint | None
) -> MerkleTree:
    """The tree over events 1..size, built while the chain is verified; refused when the
    chain is broken or the tree does not extend the newest signed checkpoint."""
    # The lab's signature vouches for the ledger: signing rows as they are would put that
    # signature on a ledger someone edited behind the triggers (a dossier from it would
    # then verify), so the chain and the history of signed heads are checked first.
    leaves: list[bytes] = []
    result = verify_events(
        iter_events(session, until_seq=size), each=lambda _e, data: leaves.append(leaf_hash(data))
    )
    if not result.ok:
        raise RuleViolation(f"custody chain broken, no checkpoint signed: {result.problem}")
    if result.last_seq != size or result.last_hash != last_hash:
        raise RuleViolation(
            f"custody chain ends at seq {result.last_seq} but the head says {size}: "
            "no checkpoint signed"
        )
    tree = MerkleTree(leaves)
    if latest is not None and latest.tree_size <= size:
        if tree.root(latest.tree_size).hex() != latest.root_hash:
            raise RuleViolation(
                f"the ledger's first {latest.tree_size} events no longer give the root "
                f"signed in checkpoint {latest.id}: events were rewritten; no checkpoint signed"
            )
    elif latest is not None:
        raise RuleViolation(
            f"the ledger has {size} events but checkpoint {latest.id} signed "
            f"{latest.tree_size}: events were removed; no checkpoint signed"
        )
    return tree


def make_checkpoint(
    session: Session, *, key: Ed25519PrivateKey, at: datetime | None = None
) -> CustodyCheckpoint:
    """Sign the tree head of the ledger as it is; the last one if nothing was appended."""
    size, last_hash = _head(session)
    if size == 0:
        raise InvalidInput("the custody ledger is empty: nothing to checkpoint")
    latest = latest_checkpoint(session)
    kid = key_id(key)
    if latest is not None and latest.tree_size == size and latest.key_id == kid:
        return latest
    tree = _verified_tree(session, size=size, last_hash=last_hash, latest=latest)
    root = tree.root().hex()
    made_at = format_time(at or utcnow())
    message = signed_bytes(
        tree_size=size, root_hash=root, last_hash=last_hash, made_at=made_at, key_id=kid
    )
    checkpoint = CustodyCheckpoint(
        tree_size=size,
        root_hash=root,
        last_hash=last_hash,
        made_at=datetime.fromisoformat(made_at),
        key_id=kid,
        signature=key.sign(message).hex(),
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def checkpoint_json(
    checkpoint: CustodyCheckpoint, *, public_key: str, timestamp: CustodyTimestamp | None = None
) -> dict[str, Any]:
    """The checkpoint as auditors save it (docs/custody.md, "Checkpoints")."""
    stamp = {}
    if timestamp is not None:
        stamp["timestamp"] = {
            "tsa_url": timestamp.tsa_url,
            "stamped_at": format_time(timestamp.stamped_at),
            "digest": signed_digest(checkpoint).hex(),
            "response": base64.b64encode(timestamp.response).decode("ascii"),
        }
    return {
        "format": CHECKPOINT_FORMAT,
        "id": checkpoint.id,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "last_hash": checkpoint.last_hash,
        "made_at": format_time(checkpoint.made_at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "public_key": public_key,
        **stamp,
    }


def signed_digest(checkpoint: CustodyCheckpoint) -> bytes:
    """SHA-256 of the checkpoint's signed bytes (what an RFC 3161 timestamp is over)."""
    message = signed_bytes(
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash,
        last_hash=checkpoint.last_hash,
        made_at=format_time(checkpoint.made_at),
        key_id=checkpoint.key_id,
    )
    return hashlib.sha256(message).digest()


def checkpoint_document(
    session: Session, checkpoint: CustodyCheckpoint, *, public_key: str
) -> dict[str, Any]:
    """checkpoint_json with the checkpoint's RFC 3161 timestamp, if it has one yet."""
    stamp = session.exec(
        select(CustodyTimestamp).where(col(CustodyTimestamp.checkpoint_id) == checkpoint.id)
    ).first()
    return checkpoint_json(checkpoint, public_key=public_key, timestamp=stamp)


def inclusion(
    session: Session, *, seq: int, checkpoint: CustodyCheckpoint, tree: MerkleTree | None = None
) -> dict[str, Any]:
    """Event ``seq``'s canonical bytes and its inclusion proof against ``checkpoint``."""
    if not 1 <= seq <= checkpoint.tree_size:
        raise InvalidInput(
            f"event {seq} is not covered by checkpoint {checkpoint.id} "
            f"(events 1-{checkpoint.tree_size})",
            field="seq",
        )
    tree = tree or ledger_tree(session, size=checkpoint.tree_size)
    event = next(iter_events(session, since_seq=seq, until_seq=seq))
    return {
        "seq": seq,
        "leaf_index": seq - 1,
        "hash": event["hash"],
        "canonical": canonical_bytes(event).decode("utf-8"),
        "proof": [h.hex() for h in tree.inclusion_proof(seq - 1, checkpoint.tree_size)],
    }


def consistency(
    session: Session, *, first: CustodyCheckpoint, second: CustodyCheckpoint
) -> dict[str, Any]:
    """The consistency proof that ``first``'s tree is a prefix of ``second``'s."""
    if first.tree_size > second.tree_size:
        first, second = second, first
    tree = ledger_tree(session, size=second.tree_size)
    return {
        "first": {"id": first.id, "tree_size": first.tree_size, "root_hash": first.root_hash},
        "second": {"id": second.id, "tree_size": second.tree_size, "root_hash": second.root_hash},
        "proof": [h.hex() for h in tree.consistency_proof(first.tree_size, second.tree_size)],
    }


__all__ = ["checkpoint_json", "consistency", "inclusion", "make_checkpoint", "public_pem"]
