"""The web's id-ordered lists (contacts here; recalls and a webhook's delivery log use the
same pager) show a page of rows with a link to the next and back to the first, and a
hand-edited cursor shows the first page, not an error page."""

from __future__ import annotations

import html
import re

from sqlalchemy import Engine

from api.web.paging import PAGE_ROWS
from lims.db import write_session
from lims.notifications.service import add_contact
from tests.api.conftest import Api
from tests.builders import Lab
from tests.conftest import World
from tests.web.test_portal import _signed_in

ROW = re.compile(r"desk-(\d{3})@ginza\.example")


def test_contacts_page_by_page(engine: Engine, world: World, api: Api) -> None:
    extra = 5
    with write_session(engine) as s:
        desk = Lab.start(engine, world).user(s, world.clinic_user_id)
        for n in range(PAGE_ROWS + extra):
            add_contact(s, actor=desk, email=f"desk-{n:03d}@ginza.example")
    client = _signed_in(api, "ginza-desk")
    first = client.get("/portal/contacts")
    assert first.status_code == 200, first.text
    shown = ROW.findall(first.text)
    assert shown == [f"{n:03d}" for n in range(PAGE_ROWS)]  # oldest first
    assert "First page" not in first.text
    following = re.search(r'href="(/portal/contacts\?cursor=[^"]+)" rel="next"', first.text)
    assert following, first.text
    second = client.get(html.unescape(following.group(1)))
    assert ROW.findall(second.text) == [f"{n:03d}" for n in range(PAGE_ROWS, PAGE_ROWS + extra)]
    assert 'rel="next"' not in second.text
    back = re.search(r'href="(/portal/contacts)">First page', second.text)
    assert back and ROW.findall(client.get(back.group(1)).text) == shown
    edited = client.get("/portal/contacts?cursor=bm9wZQ")
    assert edited.status_code == 200 and ROW.findall(edited.text) == shown
