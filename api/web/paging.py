"""Links between the pages of a list the web shows in id order (lims.paging.page_by_id):
the first page and the next one. Key-sorted lists (patients, orders) have portal._pager."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from lims.paging import Listing, decode_cursor

# Rows on one page of the web's id-ordered lists (recalls, deliveries, contacts).
PAGE_ROWS = 50


def web_cursor(cursor: str) -> str | None:
    """The cursor of a page link, or None (the first page) for one this list did not make:
    a person who edits or truncates a link gets the list, not an error page (the API, whose
    loops must not silently start over, refuses it)."""
    return cursor if decode_cursor(cursor, width=1) is not None else None


def id_pager(
    path: str, params: dict[str, str], listing: Listing[Any], cursor: str | None
) -> dict[str, str | None]:
    """The first-page and next-page links of ``listing``, keeping the filters in ``params``."""
    kept = {k: v for k, v in params.items() if v}

    def link(**more: str) -> str:
        query = urlencode({**kept, **more})
        return f"{path}?{query}" if query else path

    return {
        "first": link() if cursor else None,
        "previous": None,
        "next": link(cursor=listing.next_cursor) if listing.next_cursor else None,
    }
