"""Merkle checkpoints at scale: tree building, proof generation, proof size, and offline
verification of a dossier and of a whole export against a signed checkpoint.

    .venv/bin/python -m bench.dossier [--events 1000000] [--dossier-events 100]

The events are bench.verify's (the same rotation of real event shapes, chained exactly as
``append`` chains them), held in memory: reading them from a database is what
bench/verify.py measures (about a minute per million events here) and is the same cost for
``ledger_tree`` as for ``verify_chain``. Timed here:

* leaf hashes and the tree (``MerkleTree``): what a checkpoint costs beyond reading;
* inclusion proofs (1,000 random events) and consistency proofs (100 random pairs);
* proof size: hashes per proof and bytes of a dossier entry;
* ``verify_dossier`` on a dossier of ``--dossier-events`` random events (signature check
  included), and ``verify_against_checkpoints`` over the whole export against two
  checkpoints, next to ``verify_events`` (the chain alone) over the same export.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import machine
from bench.verify import generate
from lims.custody.keys import key_id, public_pem
from lims.custody.merkle import MerkleTree, leaf_hash
from lims.custody.verify import (
    CHECKPOINT_FORMAT,
    GENESIS_HASH,
    signed_bytes,
    verify_against_checkpoints,
    verify_dossier,
    verify_events,
)


def checkpoint(tree: MerkleTree, events: list[dict[str, Any]], size: int, key: Any) -> dict:
    made_at = "2026-12-02T00:00:00.000000Z"
    fields = {
        "tree_size": size,
        "root_hash": tree.root(size).hex(),
        "last_hash": events[size - 1]["hash"],
        "made_at": made_at,
        "key_id": key_id(key),
    }
    return {
        "format": CHECKPOINT_FORMAT,
        "id": size,
        **fields,
        "signature": key.sign(signed_bytes(**fields)).hex(),
        "public_key": public_pem(key),
    }


def timed(label: str, fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    took = time.perf_counter() - started
    print(f"  {label}: {took:.3f} s", flush=True)
    return value, took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dossier", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dossier-events", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    n = args.events
    print(f"Merkle checkpoints at {n:,} events; {machine()}", flush=True)
    pairs, _ = timed("generate events", lambda: list(generate(n, 1, GENESIS_HASH, args.seed)))
    events = [e for e, _ in pairs]
    canon = [c for _, c in pairs]
    del pairs
    leaves, t_leaves = timed("leaf hashes", lambda: [leaf_hash(c) for c in canon])
    tree, t_tree = timed("tree levels", lambda: MerkleTree(leaves))
    rng = random.Random(args.seed)
    picks = [rng.randrange(n) for _ in range(1000)]
    proofs, t_incl = timed(
        "1,000 inclusion proofs", lambda: [tree.inclusion_proof(i) for i in picks]
    )
    sizes = sorted(rng.sample(range(1, n), 100))
    _, t_cons = timed("100 consistency proofs", lambda: [tree.consistency_proof(m) for m in sizes])
    key = Ed25519PrivateKey.generate()
    early, cp = checkpoint(tree, events, n // 2, key), checkpoint(tree, events, n, key)
    seqs = sorted(rng.sample(range(1, n + 1), args.dossier_events))
    entries = [
        {
            "seq": s,
            "leaf_index": s - 1,
            "hash": events[s - 1]["hash"],
            "canonical": canon[s - 1].decode("utf-8"),
            "proof": [h.hex() for h in tree.inclusion_proof(s - 1)],
        }
        for s in seqs
    ]
    dossier = {
        "format": "lims-custody-dossier/1",
        "subject": {"kind": "bench", "id": "random events"},
        "materials": [],
        "event_seqs": seqs,
        "checkpoint": cp,
        "events": entries,
    }
    dossier_bytes = len(json.dumps(dossier, indent=2).encode("utf-8"))
    result, t_dossier = timed(
        "verify_dossier", lambda: verify_dossier(dossier, key=cp["public_key"])
    )
    assert result.ok, result.summary()
    pem = cp["public_key"]
    r_chain, t_chain = timed("verify_events (chain alone)", lambda: verify_events(events))
    r_cp, t_cp = timed(
        "verify_against_checkpoints (2)",
        lambda: verify_against_checkpoints(events, [early, cp], key=pem),
    )
    assert r_chain.ok and r_cp.ok, r_cp.summary()
    hashes = sum(len(p) for p in proofs) / len(proofs)
    entry_bytes = sum(len(json.dumps(e)) for e in entries) / len(entries)
    print(
        f"\nRESULT events={n:,} leaves={t_leaves:.2f}s tree={t_tree:.2f}s "
        f"inclusion={t_incl * 1000 / len(picks):.3f}ms/proof ({hashes:.1f} hashes, "
        f"{hashes * 32:.0f} bytes raw) consistency={t_cons * 1000 / len(sizes):.3f}ms/proof "
        f"dossier({args.dossier_events} events, {dossier_bytes / 1024:.0f} KiB, "
        f"{entry_bytes:.0f} B/entry) verify={t_dossier * 1000:.1f}ms "
        f"export chain={t_chain:.2f}s export+checkpoints={t_cp:.2f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
