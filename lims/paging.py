"""One page of a list: what a list query returns, whoever shows it (API, web page, flow).

Two ways to page. By offset (the API's lists, still taken): simple, but the database walks
every row before the offset, so page 400 of a clinic's orders costs 400 pages; the API's
lists also answer a cursor (page_by_id). By key ("the 50
after planned use X, order id Y"): each page starts from an index entry, so the last page
costs what the first does; the web pages use it. A cursor is that key, opaque to the
reader (base64url of JSON) and checked on the way back in: a cursor that does not decode
is ignored and the list starts at its first page, as a hand-edited link would expect."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, tuple_

from lims.errors import InvalidInput

T = TypeVar("T")
# The most rows one page may hold; a larger limit is cut to it.
MAX_PAGE = 500
MAX_CURSOR = 512  # characters; a longer one is not one this module made


class Listing(list[T]):
    """Up to ``limit`` items (a list). Offset paging: ``next_offset`` is None on the last
    page. Key paging: ``next_cursor`` / ``previous_cursor`` are None at either end."""

    def __init__(
        self,
        items: Iterable[T],
        *,
        limit: int,
        offset: int,
        next_offset: int | None,
        next_cursor: str | None = None,
        previous_cursor: str | None = None,
    ) -> None:
        super().__init__(items)
        self.limit = limit
        self.offset = offset
        self.next_offset = next_offset
        self.next_cursor = next_cursor
        self.previous_cursor = previous_cursor

    def shown_as(self, items: Iterable[Any]) -> Listing[Any]:
        """The same page (its position and links) holding other items, e.g. rows made
        from these."""
        return Listing(
            items,
            limit=self.limit,
            offset=self.offset,
            next_offset=self.next_offset,
            next_cursor=self.next_cursor,
            previous_cursor=self.previous_cursor,
        )


def page_of(query: Any, session: Any, *, limit: int, offset: int) -> Listing[Any]:
    """Run an ordered query for one page (one extra row says whether another page exists)."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    rows = list(session.exec(query.offset(offset).limit(limit + 1)).all())
    more = len(rows) > limit
    return Listing(
        rows[:limit], limit=limit, offset=offset, next_offset=offset + limit if more else None
    )


def page_by_id(
    query: Any,
    session: Any,
    *,
    id_column: Any,
    limit: int,
    offset: int = 0,
    cursor: str | None = None,
    newest_first: bool = False,
    id_of: Callable[[Any], int] = lambda row: row.id,
) -> Listing[Any]:
    """One page of ``query`` in id order (the API's lists): from ``offset``, or after the
    row a ``cursor`` (an earlier page's ``next_cursor``) names, which costs the same on
    page 400 as on page 1 and does not shift when rows are added. A cursor this module did
    not make is refused (InvalidInput), not read as the first page: an integrator's loop
    must not silently start over. ``newest_first`` walks the ids downwards; ``id_of``
    reads the id off a row that is not a model (a joined tuple, a ledger event's seq)."""
    limit = max(1, min(limit, MAX_PAGE))
    if cursor is not None:
        mark = decode_cursor(cursor, width=1)
        if mark is None or type(mark[0]) is not int:
            raise InvalidInput(
                "not a cursor of this list: pass a next_cursor it answered", field="cursor"
            )
        query = query.where(id_column < mark[0] if newest_first else id_column > mark[0])
        offset = 0
    order = id_column.desc() if newest_first else id_column
    rows = list(session.exec(query.order_by(order).offset(offset).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Listing(
        rows,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more and cursor is None else None,
        next_cursor=encode_cursor([id_of(rows[-1])]) if more else None,
    )


@dataclass(frozen=True, slots=True)
class SortKey:
    """One column a list is sorted by, and how to read its value off a result row."""

    column: Any
    value: Callable[[Any], Any]


def encode_cursor(values: Sequence[Any]) -> str:
    """The opaque cursor for a row's sort-key values (ints, strings, times)."""
    tagged = [
        ["t", v.isoformat()] if isinstance(v, datetime) else ["i" if isinstance(v, int) else "s", v]
        for v in values
    ]
    raw = json.dumps(tagged, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, width: int) -> list[Any] | None:
    """The values a cursor holds, or None when it is absent or not one of ours."""
    if not cursor or len(cursor) > MAX_CURSOR:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tagged = json.loads(raw)
        if not isinstance(tagged, list) or len(tagged) != width:
            return None
        values: list[Any] = []
        for tag, value in tagged:
            if tag == "t":
                values.append(datetime.fromisoformat(value))
            elif (tag == "i" and type(value) is int) or (tag == "s" and isinstance(value, str)):
                values.append(value)
            else:
                return None
        return values
    except (binascii.Error, ValueError, TypeError):
        return None


def keyset_page(
    query: Any,
    session: Any,
    *,
    keys: Sequence[SortKey],
    descending: bool = False,
    limit: int,
    after: str | None = None,
    before: str | None = None,
) -> Listing[Any]:
    """One page of an unordered query sorted by ``keys`` (the last one unique, e.g. the id),
    starting after the row ``after`` names or ending before the row ``before`` names."""
    limit = max(1, min(limit, MAX_PAGE))
    columns = [k.column for k in keys]
    start = decode_cursor(after, width=len(keys))
    end = decode_cursor(before, width=len(keys)) if start is None else None
    backwards = end is not None
    mark = start if start is not None else end
    if mark is not None:
        row = tuple_(*columns)
        pairs = zip(columns, mark, strict=True)
        bound = tuple_(*(bindparam(None, v, type_=c.type) for c, v in pairs))
        # Forwards past the mark in the sort's direction; backwards the other way.
        query = query.where(row < bound if descending != backwards else row > bound)
    reverse = descending != backwards
    query = query.order_by(*(c.desc() if reverse else c.asc() for c in columns))
    rows = list(session.exec(query.limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()

    def cursor(row: Any) -> str:
        return encode_cursor([k.value(row) for k in keys])

    has_next = (more and not backwards) or backwards
    has_previous = (more and backwards) or (start is not None)
    return Listing(
        rows,
        limit=limit,
        offset=0,
        next_offset=None,
        next_cursor=cursor(rows[-1]) if rows and has_next else None,
        previous_cursor=cursor(rows[0]) if rows and has_previous else None,
    )
