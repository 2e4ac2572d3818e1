"""An RFC 9162 (Certificate Transparency 2.0) Merkle tree over the custody events.

Generation only: the hashing and the checks are in lims.custody.verify, the offline
verifier (one file, standard library only), so both use the same code.

Leaf ``i`` (0-based) is event ``seq = i + 1``; its hash is SHA-256(0x00 || the event's
canonical bytes), the same bytes the hash chain hashes (verify.canonical_bytes). An inner
node is SHA-256(0x01 || left || right). For ``n`` leaves the tree splits at the largest
power of two ``k < n``: the left subtree holds leaves [0, k), the right [k, n) (RFC 9162
2.1.1). Inclusion proofs (2.1.3) and consistency proofs (2.1.4) are lists of node hashes,
generated and checked by the RFC's algorithms.
"""

from __future__ import annotations

from collections.abc import Iterable

from lims.custody.verify import (
    EMPTY_ROOT,
    ProofError,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """The tree over a list of leaf hashes, with every complete subtree's root kept.

    A subtree of the RFC's tree is either a complete, aligned block of ``2**h`` leaves
    (kept in ``levels[h]``) or a complete left block joined to a smaller right part, so any
    node's hash, for any tree size up to ``len(leaves)``, costs O(log n) look-ups.
    """

    def __init__(self, leaves: Iterable[bytes]) -> None:
        level = list(leaves)
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self.levels.append(level)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            return self.levels[n.bit_length() - 1][start // n]
        k = _split(n)
        return node_hash(self._mth(start, start + k), self._mth(start + k, end))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} outside 0..{self.size}")

    def root(self, size: int | None = None) -> bytes:
        """The tree head of the first ``size`` leaves (all of them if None)."""
        size = self.size if size is None else size
        self._check_size(size)
        return self._mth(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 2.1.3.1: the audit path of leaf ``index`` in the tree of ``size``."""
        size = self.size if size is None else size
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:  # descend, collecting siblings root-first, then reverse
            k = _split(end - start)
            if index < start + k:
                path.append(self._mth(start + k, end))
                end = start + k
            else:
                path.append(self._mth(start, start + k))
                start += k
        return path[::-1]

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 9162 2.1.4.1: proof that the tree of ``first`` is a prefix of ``second``."""
        second = self.size if second is None else second
        self._check_size(second)
        if not 0 < first <= second:
            raise ValueError(f"consistency needs 0 < first <= second, got {first}, {second}")
        return self._subproof(first, 0, second, True)

    def _subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [self._mth(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, whole), self._mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._mth(start, start + k)]


__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]
