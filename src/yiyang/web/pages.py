"""Staff pages. Thin: each page calls services and renders a template."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from yiyang.deps import IdPath, ResidentIdPath, SessionDep
from yiyang.errors import NotFound
from yiyang.geo.models import Area
from yiyang.i18n import pick_language, translate, translator
from yiyang.residents import service
from yiyang.residents.identity import age_on, mask_id_number, mask_phone
from yiyang.sources.models import ImportRun

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    chosen = request.query_params.get("lang")
    lang = pick_language(chosen, request.cookies.get("lang"))
    response = TEMPLATES.TemplateResponse(
        request, template,
        {"t": translator(lang), "lang": lang, "display": _display(lang, context.pop("area_names", {})), **context},
        status_code=status_code,
    )  # fmt: skip
    if chosen == lang:
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax")
    return response


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
            return value.strftime("%Y-%m-%d %H:%M")
        return str(value)

    return display


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/residents", status_code=303)


@router.get("/residents", response_class=HTMLResponse)
def residents_page(
    request: Request,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    size = 25
    total, rows = service.search_residents(session, q or None, limit=size, offset=(page - 1) * size)
    communities = _area_names(session, {r.community_id for r in rows if r.community_id})
    today = dt.date.today()
    items = [
        {"resident": r, "age": age_on(r.birth_date, today) if r.birth_date else None,
         "community": communities.get(r.community_id, "—")}
        for r in rows
    ]  # fmt: skip
    return render(request, "residents.html", q=q or "", total=total, items=items, page=page, pages=(total + size - 1) // size)


@router.get("/residents/{resident_id}", response_class=HTMLResponse)
def profile_page(request: Request, resident_id: ResidentIdPath, session: SessionDep) -> HTMLResponse:
    try:
        resident = service.get_active_resident(session, resident_id)
    except NotFound as error:
        return render(request, "not_found.html", status_code=404, message=error.message)
    facts = service.profile_facts(session, resident)
    codes = [f.value for f in facts if f.attribute in ("community_code", "grid_code") and f.value]
    area_names = dict(session.execute(select(Area.code, Area.name).where(Area.code.in_(codes))).all()) if codes else {}
    return render(
        request, "profile.html", resident=resident,
        age=age_on(resident.birth_date, dt.date.today()) if resident.birth_date else None,
        community=_area_names(session, {resident.community_id}).get(resident.community_id, "—"),
        facts=facts, conditions=service.conditions_of(session, resident.id),
        observations=service.observations_of(session, resident.id, limit=20),
        sources=service.source_records_of(session, resident.id), history=service.fact_history(session, resident.id),
        area_names=area_names, **tier_panel(session, resident.id),
    )  # fmt: skip


@router.get("/reviews", response_class=HTMLResponse)
def reviews_page(request: Request, session: SessionDep) -> HTMLResponse:
    total, reviews = service.open_reviews(session, limit=50)
    pairs = [(r, service.get_resident(session, r.resident_id), service.get_resident(session, r.candidate_id)) for r in reviews]
    return render(request, "reviews.html", total=total, pairs=pairs)


@router.post("/reviews/{review_id}")
def decide_review_page(
    review_id: IdPath, session: SessionDep, decision: Annotated[str, Form(pattern="^(same|different)$")]
) -> RedirectResponse:
    service.decide_review(session, review_id, same_person=decision == "same", by="web")
    return RedirectResponse("/reviews", status_code=303)


@router.get("/imports", response_class=HTMLResponse)
def imports_page(request: Request, session: SessionDep) -> HTMLResponse:
    runs = session.execute(select(ImportRun).order_by(ImportRun.id.desc()).limit(100)).scalars().all()
    return render(request, "imports.html", runs=runs)


def tier_panel(session: SessionDep, resident_id: int) -> dict[str, Any]:
    from yiyang.web.tier_pages import profile_context  # tier_pages imports render from here

    return profile_context(session, resident_id)


def _area_names(session: SessionDep, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    return dict(session.execute(select(Area.id, Area.name).where(Area.id.in_(wanted))).all())
