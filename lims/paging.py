"""One page of a list: what a list query returns, whoever shows it (API, web page, flow)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")
# The most rows one page may hold; a larger limit is cut to it.
MAX_PAGE = 500


class Listing(list[T]):
    """Up to ``limit`` items from ``offset`` on (a list); ``next_offset`` is None on the last
    page."""

    def __init__(
        self, items: Iterable[T], *, limit: int, offset: int, next_offset: int | None
    ) -> None:
        super().__init__(items)
        self.limit = limit
        self.offset = offset
        self.next_offset = next_offset


def page_of(query: Any, session: Any, *, limit: int, offset: int) -> Listing[Any]:
    """Run an ordered query for one page (one extra row says whether another page exists)."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    rows = list(session.exec(query.offset(offset).limit(limit + 1)).all())
    more = len(rows) > limit
    return Listing(
        rows[:limit], limit=limit, offset=offset, next_offset=offset + limit if more else None
    )
