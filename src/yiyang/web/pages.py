"""Staff pages. Thin: each page checks access (``access.policy``), calls services and renders a template.

Every page takes the signed-in actor (``sign_in.WebActorDep``: a redirect to /login without one);
a refusal renders ``forbidden.html`` (403), and its audit row is kept (``access/denials.py``).
Any other error a page route lets through (a bad ``?page=0``, a service's ``DomainError``) is
answered by the app's handlers as ``error.html`` for a browser (``wants_page``), not as JSON.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlalchemy import select
from starlette.routing import Mount

from yiyang.access import break_glass, policy
from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.deps import get_clock
from yiyang.access.policy import DataCategory, FieldGroup
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.db import CHINA_TZ, china_day
from yiyang.deps import IdPath, ResidentIdPath, SessionDep
from yiyang.errors import DomainError, Forbidden, NotFound
from yiyang.geo.models import Area
from yiyang.i18n import pick_language, translate, translator
from yiyang.residents import service
from yiyang.residents.identity import age_on, mask_id_number, mask_phone
from yiyang.residents.models import LinkReview
from yiyang.sources.models import ImportRun
from yiyang.web.actor import WebActorDep, safe_next

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    chosen = request.query_params.get("lang")
    lang = pick_language(chosen, request.cookies.get("lang"))
    csrf = getattr(request.state, "csrf_token", None)
    response = TEMPLATES.TemplateResponse(
        request, template,
        {"t": translator(lang), "lang": lang, "display": _display(lang, context.pop("area_names", {})),
         "csrf_token": csrf, "csrf_field": lambda: _csrf_field(csrf), "language_href": _language_href(request),
         "viewer": getattr(request.state, "actor", None), **context},
        status_code=status_code,
    )  # fmt: skip
    if chosen == lang:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


def china_time(moment: dt.datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A stored moment (UTC; naive means UTC) as the people of the district read a clock: China
    time. A station told 02:00 for a 10:00 meal would come eight hours early."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(CHINA_TZ).strftime(pattern)


def _language_href(request: Request) -> Callable[[str], str]:
    """The same page in another language: its query kept (the search, the filters, sign-in's
    ``next``). A page answering a form (a POST) links back to the page the form was on, as its
    own address takes no GET."""
    if request.method == "GET":
        path, query = quote(request.url.path), request.url.query
    else:
        came_from = urlsplit(request.headers.get("referer", ""))
        same_site = not came_from.netloc or came_from.netloc == request.url.netloc
        path = safe_next(came_from.path) if same_site else safe_next(None)
        query = came_from.query if same_site and path == came_from.path else ""
        path = quote(path, safe="/%")  # a browser drops a tab in a link: "/\t/x" would be "//x"

    def href(lang: str) -> str:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "lang"]
        return f"{path}?{urlencode([*kept, ('lang', lang)])}"

    return href


def _csrf_field(token: str | None) -> Markup:
    if not token:
        return Markup("")
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(token))


def refused(request: Request, error: DomainError, resident_id: int | None = None) -> HTMLResponse:
    """A refusal as a page; a clinician refused one resident is offered break-the-glass."""
    actor: Actor | None = getattr(request.state, "actor", None)
    offer = resident_id if actor and any(policy.SCOPES[g.role].break_glass for g in actor.grants) else None
    return render(request, "forbidden.html", status_code=403, message=error.message, break_glass=offer)


def wants_page(request: Request) -> bool:
    """Whether an error goes back as a page rather than the API's JSON: the request reached a staff
    page (a route left out of the OpenAPI schema, outside /api and /fhir) and the client names
    text/html in its Accept, as a browser does; ``*/*`` alone (scripts, curl) keeps the JSON."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.include_in_schema:
        return False
    return not _under(request.url.path, ("/api", "/fhir")) and _asks_for_html(request)


def wants_missing_page(request: Request) -> bool:
    """Whether an address no route serves (``/residentz``) is answered with the not-found page: as
    for ``wants_page``, but no route matched, so the address alone tells; the API, FHIR and the
    mounts (``/static``) answer for themselves, with the JSON they always gave."""
    if request.scope.get("route") is not None:
        return False
    mounts = tuple(route.path for route in request.app.routes if isinstance(route, Mount))
    return not _under(request.url.path, ("/api", "/fhir", *mounts)) and _asks_for_html(request)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _asks_for_html(request: Request) -> bool:
    for offer in request.headers.get("accept", "").split(","):
        media, *params = (part.strip() for part in offer.split(";"))
        if media.lower() == "text/html":
            weights = [p.partition("=")[2] for p in params if p.replace(" ", "").lower().startswith("q=")]
            try:
                return not weights or float(weights[0]) > 0
            except ValueError:
                return True  # a malformed weight counts as the default, 1
    return False


def error_page(
    request: Request, status_code: int, message: str, *, problems: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    """An error on a staff page, in the site's layout: its message, the parameters at fault, a link
    back to the page the person came from on this site (else the resident search)."""
    heading = {403: "error.forbidden", 404: "error.not_found"}.get(status_code, "error.problem")
    came_from = urlsplit(request.headers.get("referer", ""))
    back = safe_next(None)
    if (not came_from.netloc or came_from.netloc == request.url.netloc) and came_from.path:
        path = safe_next(came_from.path)
        back = path + (f"?{came_from.query}" if path == came_from.path and came_from.query else "")
    response = render(
        request, "error.html", status_code=status_code, heading=heading, message=message,
        problems=problems or [], back=quote(back, safe="/%?&=+"),
    )  # fmt: skip
    response.headers.update(headers or {})
    return response


def _now(request: Request) -> dt.datetime:
    return get_clock(request)()


def _display(lang: str, area_names: dict[str, str]):  # type: ignore[no-untyped-def]
    def display(attribute: str, value: Any) -> str:
        if value is None or value == "":
            return "—"
        if attribute in ("community_code", "grid_code"):
            return f"{area_names[value]} ({value})" if value in area_names else str(value)
        if attribute == "id_number":
            return mask_id_number(value) or "—"  # revealed only through access control
        if attribute == "phone":
            return mask_phone(value) or "—"
        if attribute == "sex":
            return translate(f"sex.{value}", lang)
        if isinstance(value, bool):
            return translate(f"value.{str(value).lower()}", lang)
        if attribute in ("living_arrangement", "capability_level", "insurance_type"):
            return translate(f"value.{value}", lang)
        if isinstance(value, dt.datetime):
            return china_time(value)
        return str(value)

    return display


@router.get("/", openapi_extra=no_resident_data("redirect"))
def home() -> RedirectResponse:
    return RedirectResponse("/residents", status_code=303)


@router.get(
    "/residents", response_class=HTMLResponse, openapi_extra=resident_data(DataCategory.identity, many=True)
)
def residents_page(
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    q: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    size = 25
    now = _now(request)
    try:
        service.authorize_search(session, actor, q, now=now)  # by ID number or phone: who may see them
    except Forbidden as error:
        return refused(request, error)
    visible = policy.visible_residents(session, actor, category=DataCategory.identity, now=now)
    total, rows = service.search_residents(
        session, q or None, limit=size, offset=(page - 1) * size, visible=visible
    )
    communities = _area_names(session, {r.community_id for r in rows if r.community_id})
    # The column shows only when every row's profile shows the birth date (the template has one flag).
    shown = policy.listed_groups(session, actor, [r.id for r in rows], now=now)
    today = china_day(now)
    items = [
        {"resident": r, "age": age_on(r.birth_date, today) if r.birth_date else None,
         "community": communities.get(r.community_id, "—")}
        for r in rows
    ]  # fmt: skip
    return render(
        request,
        "residents.html",
        q=q or "",
        total=total,
        items=items,
        birth_dates=all(FieldGroup.registry in g for g in shown.values()),  # as every profile shows
        page=page,
        pages=(total + size - 1) // size,
    )


@router.get(
    "/residents/{resident_id}",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.identity),
)
def profile_page(
    request: Request, resident_id: ResidentIdPath, session: SessionDep, actor: WebActorDep
) -> HTMLResponse:
    now = _now(request)
    try:
        # A merged record is an empty shell pointing at the one it joined (its contracts moved there
        # too): say so first, rather than refuse it as out of scope and offer the glass.
        resident = service.get_active_resident(session, resident_id)
        groups = policy.authorize_profile(session, actor, resident_id, now=now)
    except NotFound as error:
        return render(
            request, "not_found.html", status_code=404, message=error.message,
            merged_into=error.detail.get("merged_into"),
        )  # fmt: skip
    except Forbidden as error:
        return refused(request, error, resident_id)
    attributes = {a for a, group in policy.ATTRIBUTE_GROUPS.items() if group in groups}
    facts = [f for f in service.profile_facts(session, resident) if f.attribute in attributes]
    codes = [f.value for f in facts if f.attribute in ("community_code", "grid_code") and f.value]
    area_names = (
        dict(session.execute(select(Area.code, Area.name).where(Area.code.in_(codes))).all()) if codes else {}
    )
    clinical = FieldGroup.clinical in groups
    shows = _registry_records(session, actor, resident_id, groups, now)
    return render(
        request, "profile.html", resident=resident,
        age=age_on(resident.birth_date, china_day(now)) if resident.birth_date else None,
        community=_area_names(session, {resident.community_id}).get(resident.community_id, "—"),
        facts=facts, clinical=clinical,
        conditions=service.conditions_of(session, resident.id) if clinical else [],
        observations=service.observations_of(session, resident.id, limit=20) if clinical else [],
        sources=service.source_records_of(session, resident.id) if "source_record" in shows else None,
        history=service.fact_history(session, resident.id) if "fact_history" in shows else [],
        area_names=area_names, **(tier_panel(session, actor, resident.id, now) if clinical else {"tier_panel": None}),
        **family_panel(session, actor, resident.id, now), done=request.query_params.get("done"),
    )  # fmt: skip


def _registry_records(
    session: SessionDep, actor: Actor, resident_id: int, groups: frozenset[FieldGroup], now: dt.datetime
) -> set[str]:
    """Which registry parts (source records, fact history) the profile shows: as
    ``GET /api/residents/{id}/sources`` and ``/history`` decide, by a role that keeps the registry
    with this resident in its scope (``require_registry``), not by the registry group another role
    brings (a family doctor here who administers another street). Each part shown is audited."""
    if FieldGroup.registry not in groups or not policy.may_work_registry(actor):
        return set()
    keeper = policy.require_registry(session, actor, what="source_record", resident_id=resident_id, now=now)
    return {
        what
        for what in ("source_record", "fact_history")
        if policy.permitted(session, keeper, resident_id, category=DataCategory.identity, what=what, now=now)
    }


@router.post(
    "/residents/{resident_id}/break-glass",
    openapi_extra=resident_data(DataCategory.clinical),
    response_model=None,
)
def break_glass_page(
    request: Request,
    resident_id: ResidentIdPath,
    session: SessionDep,
    actor: WebActorDep,
    reason: Annotated[str, Form(max_length=200)],
) -> HTMLResponse | RedirectResponse:
    try:
        break_glass.open_break_glass(session, actor, resident_id, reason, _now(request))
    except Forbidden as error:
        return refused(request, error)
    except DomainError as error:
        return render(
            request,
            "forbidden.html",
            status_code=error.status_code,
            message=error.message,
            break_glass=resident_id,
            reason=reason,  # the form comes back as typed, to be finished
        )
    return RedirectResponse(f"/residents/{resident_id}", status_code=303)


@router.get(
    "/reviews",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.identity, many=True, registry=True),
)
def reviews_page(request: Request, session: SessionDep, actor: WebActorDep) -> HTMLResponse:
    return _review_queue(request, session, actor, _now(request))


def _review_queue(
    request: Request, session: SessionDep, actor: Actor, now: dt.datetime, *, status_code: int = 200,
    problem: str | None = None,
) -> HTMLResponse:  # fmt: skip
    try:
        keeper = policy.require_registry(session, actor, what="link_review", now=now)
    except Forbidden as error:
        return refused(request, error)
    # Both residents of a pair in the registry role's scope, not in another role's (a volunteer's
    # pairing elsewhere): the page shows their birth dates and addresses.
    visible = policy.visible_residents(session, keeper, category=DataCategory.identity, now=now)
    total, reviews = service.open_reviews(session, limit=50, visible=visible)
    pairs = [
        (r, service.get_resident(session, r.resident_id), service.get_resident(session, r.candidate_id))
        for r in reviews
    ]
    return render(request, "reviews.html", status_code=status_code, total=total, pairs=pairs, problem=problem)


@router.post(
    "/reviews/{review_id}",
    openapi_extra=resident_data(DataCategory.identity, registry=True),
    response_model=None,
)
def decide_review_page(
    request: Request,
    review_id: IdPath,
    session: SessionDep,
    actor: WebActorDep,
    decision: Annotated[str, Form(pattern="^(same|different)$")],
) -> HTMLResponse | RedirectResponse:
    now = _now(request)
    review = session.get(LinkReview, review_id)
    try:
        keeper = policy.require_registry(session, actor, what="link_review", action="update", now=now)
        for resident_id in (review.resident_id, review.candidate_id) if review else ():
            policy.authorize(session, keeper, resident_id, category=DataCategory.identity, what="link_review",
                             action="update", now=now)  # fmt: skip
    except Forbidden as error:
        session.rollback()
        return refused(request, error)
    try:
        service.decide_review(session, review_id, same_person=decision == "same", by=actor.username)
    except DomainError as error:  # decided meanwhile by another keeper (two tabs, a double click)
        session.rollback()
        return _review_queue(
            request, session, actor, now, status_code=error.status_code, problem=error.message
        )
    return RedirectResponse("/reviews", status_code=303)


@router.get(
    "/imports",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.identity, many=True, registry=True),
)
def imports_page(request: Request, session: SessionDep, actor: WebActorDep) -> HTMLResponse:
    now = _now(request)
    try:
        keeper = policy.require_registry(session, actor, what="import_run", now=now)
    except Forbidden as error:
        return refused(request, error)
    runs = session.execute(select(ImportRun).order_by(ImportRun.id.desc()).limit(100)).scalars().all()
    record_access(session, keeper, action="read", resource_type="import_run", field_group="list", at=now)
    return render(request, "imports.html", runs=runs)


def tier_panel(session: SessionDep, actor: Actor, resident_id: int, now: dt.datetime) -> dict[str, Any]:
    from yiyang.web.tier_pages import profile_context  # tier_pages imports render from here

    return profile_context(session, actor, resident_id, now=now)


def family_panel(session: SessionDep, actor: Actor, resident_id: int, now: dt.datetime) -> dict[str, Any]:
    from yiyang.web.authorisation_pages import family_panel as panel  # it imports render from here

    return panel(session, actor, resident_id, now)


def _area_names(session: SessionDep, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    return dict(session.execute(select(Area.id, Area.name).where(Area.id.in_(wanted))).all())
