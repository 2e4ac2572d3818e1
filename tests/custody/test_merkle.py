"""The Merkle tree against RFC 9162's own recursive definitions (MTH, PATH, PROOF),
on every size 1..64 and on random trees; a flipped bit in any proof hash is refused."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lims.custody.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, over the raw entries."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1."""
    if m == len(d):
        return [] if b else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def entries(n: int) -> list[bytes]:
    return [f"event {i}".encode() for i in range(n)]


def tree(d: list[bytes]) -> MerkleTree:
    return MerkleTree(leaf_hash(x) for x in d)


def flipped(h: bytes, bit: int) -> bytes:
    at = bit // 8
    return h[:at] + bytes([h[at] ^ (1 << (bit % 8))]) + h[at + 1 :]


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert MerkleTree([]).root() == EMPTY_ROOT == mth([])


def test_every_size_to_64_every_leaf_and_every_prefix() -> None:
    d = entries(64)
    t = tree(d)
    for n in range(1, 65):
        root = mth(d[:n])
        assert t.root(n) == root
        for i in range(n):
            proof = t.inclusion_proof(i, n)
            assert proof == path(i, d[:n])
            verify_inclusion(i, n, leaf_hash(d[i]), proof, root)
        for m in range(1, n + 1):
            proof = t.consistency_proof(m, n)
            assert proof == subproof(m, d[:n], True)
            verify_consistency(m, n, mth(d[:m]), root, proof)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=300), st.data())
def test_random_trees_match_the_rfc(d: list[bytes], data: st.DataObject) -> None:
    t = tree(d)
    n = data.draw(st.integers(1, len(d)))
    i = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(1, n))
    root = mth(d[:n])
    assert t.root(n) == root
    proof = t.inclusion_proof(i, n)
    assert proof == path(i, d[:n])
    verify_inclusion(i, n, leaf_hash(d[i]), proof, root)
    cproof = t.consistency_proof(m, n)
    assert cproof == subproof(m, d[:n], True)
    verify_consistency(m, n, mth(d[:m]), root, cproof)


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 200), st.data())
def test_a_flipped_bit_in_any_proof_hash_is_refused(n: int, data: st.DataObject) -> None:
    d = entries(n)
    t = tree(d)
    i = data.draw(st.integers(0, n - 1))
    proof = t.inclusion_proof(i, n)
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    bad = list(proof)
    bad[which] = flipped(bad[which], bit)
    with pytest.raises(ProofError):
        verify_inclusion(i, n, leaf_hash(d[i]), bad, t.root(n))
    m = data.draw(st.integers(1, n - 1))
    cproof = t.consistency_proof(m, n)
    if cproof:
        which = data.draw(st.integers(0, len(cproof) - 1))
        bad = list(cproof)
        bad[which] = flipped(bad[which], bit)
        with pytest.raises(ProofError):
            verify_consistency(m, n, t.root(m), t.root(n), bad)


def test_wrong_index_size_leaf_or_length_is_refused() -> None:
    d = entries(13)
    t = tree(d)
    root = t.root()
    proof = t.inclusion_proof(5)
    for index, size, leaf, p in [
        (6, 13, leaf_hash(d[5]), proof),
        (5, 13, leaf_hash(b"forged"), proof),
        (5, 13, leaf_hash(d[5]), proof[:-1]),
        (5, 13, leaf_hash(d[5]), [*proof, proof[0]]),
        (13, 13, leaf_hash(d[5]), proof),
    ]:
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, p, root)
    with pytest.raises(ProofError):
        verify_consistency(7, 13, t.root(6), root, t.consistency_proof(7))
    with pytest.raises(ProofError):
        verify_consistency(13, 13, t.root(12), root, [])
