"""The clinic's webhook endpoints and e-mail contacts in the portal, over the same services
as /api/v1/clinic/webhooks (lims.notifications.service): register (the signing secret is
shown once, on the page that answers), list, rotate the secret, enable or disable, send a
test ping, the delivery log with redelivery; e-mail contacts and their language."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from api.security import EngineDep
from api.web import i18n
from api.web.forms import Problems
from api.web.i18n import N_
from api.web.i18n import gettext as _
from api.web.paging import PAGE_ROWS, id_pager, web_cursor
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, write_session
from lims.errors import LimsError
from lims.notifications import service
from lims.notifications.events import EVENT_TYPES, PING
from lims.parties.models import Role, User
from lims.settings import get_notification_settings

router = APIRouter(include_in_schema=False)
# The events a clinic can subscribe to, in its words (a new event type shows by its code).
EVENT_NAMES = {
    "order.status_changed": N_("An order's status changed"),
    "dose.state_changed": N_("A dose's state changed"),
    "material.quarantined": N_("A material was quarantined"),
    "recall.opened": N_("A lot was recalled"),
    "recall.closed": N_("A recall was closed"),
    "webhook.disabled": N_("An endpoint was disabled"),
}
SUBSCRIBABLE = [(e, EVENT_NAMES.get(e, e)) for e in EVENT_TYPES if e != PING]


def _list(
    request: Request,
    engine: EngineDep,
    user: User,
    *,
    problems: Problems | None = None,
    form: dict[str, object] | None = None,
    new_secret: str | None = None,
    status_code: int = 200,
) -> Response:
    with read_session(engine) as session:
        endpoints = service.endpoints_of(session, actor=user)
    return page(
        request,
        "portal_webhooks.html",
        status_code=status_code,
        user=user,
        endpoints=endpoints,
        events=SUBSCRIBABLE,
        problems=problems or Problems(),
        form=form or {},
        new_secret=new_secret,
    )


@router.get("/portal/webhooks", response_class=HTMLResponse)
def webhooks(request: Request, engine: EngineDep, user: WebUser) -> Response:
    require_role(user, Role.CLINIC)
    return _list(request, engine, user)


@router.post("/portal/webhooks", response_class=HTMLResponse)
def register(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    csrf: Annotated[str, Form()],
    url: Annotated[str, Form(max_length=500)] = "",
    description: Annotated[str, Form(max_length=200)] = "",
    events: Annotated[list[str] | None, Form()] = None,
) -> Response:
    require_role(user, Role.CLINIC)
    check_csrf(request, csrf)
    i18n.use(i18n.language_of(request))
    form: dict[str, object] = {"url": url, "description": description, "events": events or []}
    problems = Problems()
    if not url.strip():
        problems.add(_("Enter the address the lab should send events to"), "url")
        return _list(request, engine, user, problems=problems, form=form, status_code=422)
    try:
        with write_session(engine) as session:
            endpoint = service.register_endpoint(
                session,
                actor=user,
                url=url.strip(),
                events_wanted=events or [],
                description=description or None,
                settings=get_notification_settings(),
            )
            secret = endpoint.secret
    except LimsError as exc:
        problems.add(exc.message, "url" if exc.field in (None, "url") else exc.field)
        return _list(request, engine, user, problems=problems, form=form, status_code=422)
    return _list(request, engine, user, new_secret=secret)


def _endpoint(
    request: Request,
    engine: EngineDep,
    user: User,
    endpoint_id: int,
    *,
    new_secret: str | None = None,
    cursor: str = "",
) -> Response:
    with read_session(engine) as session:
        endpoint = service.endpoint_for(session, actor=user, endpoint_id=endpoint_id)
        log = service.deliveries_of(
            session, actor=user, endpoint_id=endpoint_id, limit=PAGE_ROWS, cursor=web_cursor(cursor)
        )
    return page(
        request,
        "portal_webhook.html",
        user=user,
        endpoint=endpoint,
        log=log,
        pages=id_pager(f"/portal/webhooks/{endpoint_id}", {}, log, cursor),
        new_secret=new_secret,
    )


@router.get("/portal/webhooks/{endpoint_id}", response_class=HTMLResponse)
def endpoint_page(
    request: Request, engine: EngineDep, user: WebUser, endpoint_id: int, cursor: str = ""
) -> Response:
    require_role(user, Role.CLINIC)
    return _endpoint(request, engine, user, endpoint_id, cursor=cursor)


@router.post("/portal/webhooks/{endpoint_id}/rotation", response_class=HTMLResponse)
def rotate(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    endpoint_id: int,
    csrf: Annotated[str, Form()],
) -> Response:
    require_role(user, Role.CLINIC)
    check_csrf(request, csrf)
    with write_session(engine) as session:
        endpoint = service.rotate_secret(
            session, actor=user, endpoint_id=endpoint_id, settings=get_notification_settings()
        )
        secret = endpoint.secret
    return _endpoint(request, engine, user, endpoint_id, new_secret=secret)


def _act(request: Request, endpoint_id: int, done: str, error: LimsError | None) -> Response:
    where = f"/portal/webhooks/{endpoint_id}"
    return (
        redirect_with(where, errors=[error.message])
        if error
        else redirect_with(where, message=done)
    )


@router.post("/portal/webhooks/{endpoint_id}/enabled", response_class=HTMLResponse)
def enable(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    endpoint_id: int,
    csrf: Annotated[str, Form()],
    enabled: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    require_role(user, Role.CLINIC)
    check_csrf(request, csrf)
    i18n.use(i18n.language_of(request))
    on = enabled == "true"
    with write_session(engine) as session:
        service.set_enabled(session, actor=user, endpoint_id=endpoint_id, enabled=on)
    return _act(request, endpoint_id, _("Endpoint enabled") if on else _("Endpoint disabled"), None)


@router.post("/portal/webhooks/{endpoint_id}/ping", response_class=HTMLResponse)
def ping(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    endpoint_id: int,
    csrf: Annotated[str, Form()],
) -> Response:
    require_role(user, Role.CLINIC)
    check_csrf(request, csrf)
    i18n.use(i18n.language_of(request))
    try:
        with write_session(engine) as session:
            service.ping(session, actor=user, endpoint_id=endpoint_id)
    except LimsError as exc:
        return _act(request, endpoint_id, "", exc)
    return _act(request, endpoint_id, _("Test ping queued: it appears in the log below"), None)


@router.post(
    "/portal/webhooks/{endpoint_id}/deliveries/{delivery_id}/redelivery",
    response_class=HTMLResponse,
)
def redeliver(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    endpoint_id: int,
    delivery_id: int,
    csrf: Annotated[str, Form()],
) -> Response:
    require_role(user, Role.CLINIC)
    check_csrf(request, csrf)
    i18n.use(i18n.language_of(request))
    try:
        with write_session(engine) as session:
            service.redeliver(session, actor=user, delivery_id=delivery_id)
    except LimsError as exc:
        return _act(request, endpoint_id, "", exc)
    return _act(request, endpoint_id, _("Queued to be sent again"), None)


def _contacts(
    request: Request,
    engine: EngineDep,
    user: User,
    problems: Problems | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
    cursor: str = "",
) -> Response:
    with read_session(engine) as session:
        contacts = service.contacts_listed(
            session, actor=user, limit=PAGE_ROWS, cursor=web_cursor(cursor)
        )
    return page(
        request,
        "portal_contacts.html",
        status_code=status_code,
        user=user,
        contacts=contacts,
        pages=id_pager("/portal/contacts", {}, contacts, cursor),
        problems=problems or Problems(),
        form=form or {},
    )


@router.get("/portal/contacts", response_class=HTMLResponse)
def contacts(request: Request, engine: EngineDep, user: WebUser, cursor: str = "") -> Response:
    require_role(user, Role.CLINIC)
    return _contacts(request, engine, user, cursor=cursor)


@router.post("/portal/contacts", response_class=HTMLResponse)
def add_contact(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    csrf: Annotated[str, Form()],
    email: Annotated[str, Form(max_length=254)] = "",
    language: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    require_role(user, Role.CLINIC)
    check_csrf(request, csrf)
    i18n.use(i18n.language_of(request))
    form = {"email": email, "language": language}
    problems = Problems()
    if not email.strip():
        problems.add(_("Enter the e-mail address"), "email")
    if language not in ("en", "ja"):
        problems.add(_("Choose the language of the e-mails"), "language")
    if problems:
        return _contacts(request, engine, user, problems, form, 422)
    try:
        with write_session(engine) as session:
            service.add_contact(session, actor=user, email=email, language=language)
    except LimsError as exc:
        problems.add(exc.message, "email" if exc.field in (None, "email") else "language")
        return _contacts(request, engine, user, problems, form, 422)
    return redirect_with("/portal/contacts", message=_("Contact added"))
