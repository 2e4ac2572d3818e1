"""Key paging (lims.paging.keyset_page) against real databases: forwards and backwards
through ties, descending, filters, and cursors that were edited by hand."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from lims.db import read_session
from lims.paging import SortKey, decode_cursor, encode_cursor, keyset_page
from lims.parties.models import Patient
from tests.conftest import World

ID = SortKey(col(Patient.id), lambda p: p.id)
REF = SortKey(col(Patient.identifier_2), lambda p: p.identifier_2)


def _walk(s: Session, *, keys: tuple[SortKey, ...], descending: bool, limit: int) -> list[int]:
    """Every patient id, page by page forwards, checking each page backwards too."""
    seen: list[int] = []
    after = None
    pages = []
    while True:
        page = keyset_page(
            select(Patient), s, keys=keys, descending=descending, limit=limit, after=after
        )
        pages.append([p.id for p in page])
        seen += [p.id for p in page]
        if page.next_cursor is None:
            break
        after = page.next_cursor
        # Back from the next page's start is this page again.
        next_page = keyset_page(
            select(Patient), s, keys=keys, descending=descending, limit=limit, after=after
        )
        back = keyset_page(
            select(Patient),
            s,
            keys=keys,
            descending=descending,
            limit=limit,
            before=next_page.previous_cursor,
        )
        assert [p.id for p in back] == pages[-1]
    return seen


def test_pages_cover_every_row_once_in_order_both_ways(engine: Engine, world: World) -> None:
    with read_session(engine) as s:
        everyone = list(s.exec(select(Patient)).all())
        assert len(everyone) >= 3
        by_id = sorted(p.id or 0 for p in everyone)
        assert _walk(s, keys=(ID,), descending=False, limit=2) == by_id
        assert _walk(s, keys=(ID,), descending=True, limit=2) == by_id[::-1]
        by_ref = [p.id for p in sorted(everyone, key=lambda p: (p.identifier_2, p.id))]
        assert _walk(s, keys=(REF, ID), descending=False, limit=1) == by_ref
        first = keyset_page(select(Patient), s, keys=(ID,), limit=len(everyone))
        assert first.next_cursor is None and first.previous_cursor is None


def test_a_cursor_that_is_not_ours_starts_at_the_first_page(engine: Engine, world: World) -> None:
    assert decode_cursor(encode_cursor([3, "P-1"]), width=2) == [3, "P-1"]
    for bad in ("", "!!!", "bm9wZQ", encode_cursor([3]), "A" * 600):
        assert decode_cursor(bad, width=2) is None, bad
    # An int where a string was written, or a bool for an int, is not ours either.
    assert decode_cursor(encode_cursor([True]), width=1) is None
    with read_session(engine) as s:
        plain = keyset_page(select(Patient), s, keys=(ID,), limit=2)
        edited = keyset_page(select(Patient), s, keys=(ID,), limit=2, after="bm9wZQ")
        assert [p.id for p in edited] == [p.id for p in plain]
