"""Staff pages for tiers and assessments: the capture form, lists by tier, the district's tier mix.

Thin: each page calls services and renders a template. ``profile_context`` supplies the tier
panel the resident profile includes (``tiers/_profile_tier.html``). The tier-mix chart is an
SVG drawn here on the server, so the page needs no script.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.access.policy import DataCategory, Purpose
from yiyang.access.routes import resident_data
from yiyang.assessments import service as assessments
from yiyang.assessments.instruments import INSTRUMENTS, Instrument, get_instrument
from yiyang.assessments.scoring import CAPABILITY_DOMAINS, CARE_RISK_EVENTS, Item, ItemKind
from yiyang.db import CHINA_TZ, china_day
from yiyang.deps import ResidentIdPath, SessionDep
from yiyang.errors import DomainError, Forbidden, Invalid, NotFound
from yiyang.geo.models import Area, AreaLevel
from yiyang.residents import service as residents
from yiyang.residents.identity import age_on
from yiyang.residents.models import Resident
from yiyang.tiers import service as tiers
from yiyang.tiers.care_plans import ACTIVITIES, GOALS, without_rules
from yiyang.tiers.models import CarePlanStatus
from yiyang.tiers.rules import Tier
from yiyang.web.actor import WebActorDep
from yiyang.web.pages import _now, refused, render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
TIER_COLOURS = {Tier.red: "#c0392b", Tier.yellow: "#d4a017", Tier.green: "#2e8b57"}


# -- the profile's tier panel -------------------------------------------------------------------


def profile_context(session: Session, actor: Actor, resident_id: int, *, now: dt.datetime) -> dict[str, Any]:
    """What ``tiers/_profile_tier.html`` shows: tier and reasons, the open plan, recent assessments.

    The caller has authorized the resident's clinical data. A reason drawn from an alert, and what a
    plan adds for it, are sensor data: shown only as ``GET /api/residents/{id}/tier`` and
    ``/care-plans`` show them (``tiers.shown_reasons``, ``tiers.sensor_hidden_rules``); the tier stays."""
    view = tiers.tier_of(session, resident_id)
    if view is not None:
        view = replace(view, reasons=tiers.shown_reasons(session, actor, resident_id, view.reasons, now=now))
    plans = [
        p for p in tiers.care_plans_of(session, resident_id, limit=10) if p.status != CarePlanStatus.revoked
    ]
    plan = plans[0] if plans else None
    plan_goals: list[str] = []
    plan_activities: list[str] = []
    if plan is not None:
        hidden = tiers.sensor_hidden_rules(session, actor, resident_id, [plan], now=now)
        plan_goals, plan_activities, _ = without_rules(
            Tier(plan.tier), plan.goals, plan.activities, [str(a) for a in plan.addresses], hidden
        )
    history = tiers.tier_history(session, resident_id, limit=5)
    return {
        "tier_panel": {
            "resident_id": resident_id,
            "view": view,
            "plan": plan,
            "plan_goals": plan_goals,
            "plan_activities": plan_activities,
            "goals": GOALS,
            "activities": ACTIVITIES,
            "history": history,
            "assessments": assessments.assessments_of(session, resident_id, limit=10),
            "instruments": INSTRUMENTS,
            # the form is the team's (``assessments.as_recorder``): others are not offered it
            "may_record": assessments.may_record(actor),
        }
    }


# -- capture ------------------------------------------------------------------------------------


_CLINICAL = resident_data(DataCategory.clinical)


@router.get("/residents/{resident_id}/assessments/new", response_class=HTMLResponse, openapi_extra=_CLINICAL)
def new_assessment_page(
    request: Request,
    resident_id: ResidentIdPath,
    session: SessionDep,
    actor: WebActorDep,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
) -> HTMLResponse:
    now = _now(request)
    try:
        # The form is for recording: offered as the POST decides, to the team's roles only.
        recorder = assessments.as_recorder(session, actor, resident_id, now=now)
        policy.authorize(
            session, recorder, resident_id, category=DataCategory.clinical, what="assessment", now=now
        )
    except Forbidden as error:
        return refused(request, error, resident_id)
    except NotFound as error:
        return render(request, "not_found.html", status_code=404, message=error.message)
    try:
        resident = residents.get_active_resident(session, resident_id)
        chosen = get_instrument(instrument) if instrument else None
    except DomainError as error:
        return render(request, "not_found.html", status_code=404, message=error.message)
    name = _name_if_allowed(session, recorder, resident_id, now)
    if chosen is None:
        return render(
            request, "tiers/choose_instrument.html", resident=resident, name=name,
            instruments=INSTRUMENTS.values(),
        )  # fmt: skip
    return _form(
        request, resident, name, chosen, values={}, errors=[], prefill=_prefill(session, resident_id, chosen)
    )


@router.post(
    "/residents/{resident_id}/assessments/new", response_class=HTMLResponse, response_model=None,
    openapi_extra=_CLINICAL,
)  # fmt: skip
async def record_assessment_page(
    request: Request,
    resident_id: ResidentIdPath,
    session: SessionDep,
    actor: WebActorDep,
    instrument: Annotated[str, Query(max_length=32)],
) -> HTMLResponse | RedirectResponse:
    now = _now(request)
    try:
        # A clinician's act (as ``POST /api/residents/{id}/assessments``): the team grant decides
        # scope and consent, not another role the person holds.
        recorder = assessments.as_recorder(session, actor, resident_id, now=now)
        policy.authorize(
            session, recorder, resident_id, category=DataCategory.clinical, what="assessment", action="create",
            now=now,
        )  # fmt: skip
    except Forbidden as error:
        return refused(request, error, resident_id)
    except NotFound as error:
        return render(request, "not_found.html", status_code=404, message=error.message)
    try:
        resident = residents.get_active_resident(session, resident_id)
        chosen = get_instrument(instrument)
    except DomainError as error:
        return render(request, "not_found.html", status_code=404, message=error.message)
    form = await request.form()
    values = {key: str(value) for key, value in form.multi_items() if isinstance(value, str)}
    assessed_at = _parse_local(values.get("assessed_at", ""))
    try:
        answers = answers_from_form(chosen.items, form.multi_items())
        if assessed_at is None:
            raise DomainError(
                "assessment.assessed_at.missing", "请填写评估时间 (the assessment time is required)"
            )
        capture = assessments.AssessmentCapture(
            instrument=chosen.code, answers=answers, assessed_at=assessed_at, assessor=values.get("assessor", ""),
            options={o.code: values[f"option.{o.code}"] for o in chosen.options if values.get(f"option.{o.code}")},
        )  # fmt: skip
        assessments.record_assessment(session, resident.id, capture, recorded_by=actor.username)
    except DomainError as error:
        session.rollback()
        errors = error.detail.get("errors") or [
            {"code": error.code, "message": error.message, "item": error.detail.get("item")}
        ]
        name = _name_if_allowed(session, recorder, resident.id, now)
        return _form(
            request, resident, name, chosen, values=values, errors=errors, prefill={}, status_code=422
        )
    lang = request.query_params.get("lang")
    return RedirectResponse(
        f"/residents/{resident.id}{'?lang=' + lang if lang else ''}#tier", status_code=303
    )


def _name_if_allowed(session: Session, actor: Actor, resident_id: int, now: dt.datetime) -> str | None:
    """The resident's name is identity data, read on its own (audited) where the policy allows
    it; else the form names the resident by number only (``#id``)."""
    if not policy.permitted(
        session, actor, resident_id, category=DataCategory.identity, what="resident_name", now=now
    ):
        return None
    resident = session.get(Resident, resident_id)
    return resident.name if resident else None


# A count of care-risk events in the last 30 days: ASCII digits only (``str.isdigit`` also takes
# "²", which ``int`` refuses, and "２"), at most 31 as the form's field allows.
_COUNT = re.compile(r"[0-9]{1,2}")
MAX_EVENTS = 31


def answers_from_form(items: Sequence[Item], pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """Form fields back into answers: blanks left out (so the scorer names what is missing),
    care-risk events given as counts per kind, diagnoses as comma-separated codes. A count that
    is not a whole number from 0 to 31 is ``Invalid``, naming its item."""
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        if isinstance(value, str):
            fields.setdefault(key, []).append(value.strip())
    answers: dict[str, Any] = {}
    for item in items:
        if item.kind is ItemKind.codes and item.choices:
            events: list[str] = []
            for choice in item.choices:
                raw = (fields.get(f"{item.code}.{choice}") or [""])[0]
                if not raw:
                    continue
                if not _COUNT.fullmatch(raw) or int(raw) > MAX_EVENTS:
                    raise Invalid(
                        "assessment.count.invalid",
                        "次数须为 0 至 31 的整数 (a count must be a whole number from 0 to 31)",
                        item=item.code,
                    )
                events.extend([choice] * int(raw))
            if events or item.required:
                answers[item.code] = events
            continue
        raw = (fields.get(item.code) or [""])[0]
        if raw != "":
            answers[item.code] = raw
    return answers


def _parse_local(raw: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(raw.strip()) if raw.strip() else None
    except ValueError:
        return None


def _prefill(session: Session, resident_id: int, instrument: Instrument) -> dict[str, str]:
    """The capability assessment's diagnoses start from the registry's dementia diagnoses."""
    if instrument.code != assessments.CAPABILITY_INSTRUMENT:
        return {}
    codes = [
        c.code
        for c in residents.conditions_of(session, resident_id)
        if c.code[:3] in ("F00", "F01", "F02", "F03")
    ]
    return {"diagnoses": ", ".join(codes)} if codes else {}


def _form(
    request: Request,
    resident: Any,
    name: str | None,
    instrument: Instrument,
    *,
    values: dict[str, str],
    errors: list[dict[str, Any]],
    prefill: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    now = dt.datetime.now(CHINA_TZ).strftime("%Y-%m-%dT%H:%M")
    groups: list[tuple[str | None, list[Item]]] = []
    for item in instrument.items:
        if not groups or groups[-1][0] != item.domain:
            groups.append((item.domain, []))
        groups[-1][1].append(item)
    return render(
        request, "tiers/assessment_form.html", status_code=status_code, resident=resident, name=name,
        instrument=instrument,
        groups=groups, domains=CAPABILITY_DOMAINS, events=CARE_RISK_EVENTS, values={**prefill, **values},
        errors=errors, error_items={e.get("item") for e in errors if e.get("item")}, now=now, kinds=ItemKind,
    )  # fmt: skip


# -- lists and the mix chart --------------------------------------------------------------------


def counted(session: Session, actor, now: dt.datetime):  # type: ignore[no-untyped-def]
    """Residents an aggregate may count: for statistics, or in the actor's care lists."""
    return or_(
        policy.visible_residents(
            session, actor, category=DataCategory.clinical, purpose=Purpose.statistics, now=now
        ),
        policy.visible_residents(session, actor, category=DataCategory.clinical, now=now),
    )


@router.get(
    "/tiers",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.clinical, DataCategory.identity, many=True),
)
def tiers_page(
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    street: Annotated[str | None, Query(max_length=32)] = None,
    community: Annotated[str | None, Query(max_length=32)] = None,
    tier: Tier | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    lang = request.query_params.get("lang") or ""
    street_area = _area_by_code(session, street, AreaLevel.street)
    community_area = _area_by_code(session, community, AreaLevel.community)
    if (street and street_area is None) or (community and community_area is None):
        return render(request, "not_found.html", status_code=404, message="未找到该区划 (area not found)")
    if community_area is not None and street_area is None and community_area.parent_id:
        street_area = session.get(Area, community_area.parent_id)
    now = _now(request)
    mix = tiers.tier_mix(
        session, street_area.id if street_area else None, visible=counted(session, actor, now)
    )
    residents_page: dict[str, Any] | None = None
    if community_area is not None:
        visible = policy.named_residents(session, actor, category=DataCategory.clinical, now=now)
        total, rows = tiers.residents_by_tier(
            session, community_id=community_area.id, tier=tier, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
            visible=visible,
        )  # fmt: skip
        counts = next((m for m in mix if m.area_id == community_area.id), None)
        listed = tiers.listed_reasons(session, actor, rows, now=now)  # as ``GET /api/tiers``
        today = china_day(now)
        residents_page = {
            "total": total,
            "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
            "counts": counts,
            "rows": [
                {
                    "resident": resident,
                    "age": age_on(resident.birth_date, today) if resident.birth_date else None,
                    "tier": Tier(row.tier),
                    "changed_at": row.changed_at,
                    "reasons": reasons,
                }
                for (resident, row), reasons in zip(rows, listed, strict=True)
            ],
        }
    chart = Markup(tier_mix_svg(mix, lang="en" if lang == "en" else "zh-CN"))  # noqa: S704 - labels escaped in tier_mix_svg
    return render(
        request, "tiers/tiers.html", mix=mix, chart=chart, street=street_area, community=community_area, tier=tier,
        page=page, listing=residents_page, tiers=list(Tier), colours=TIER_COLOURS,
    )  # fmt: skip


@router.get("/tiers/chart.svg", openapi_extra=resident_data(DataCategory.clinical, many=True))
def tiers_chart(
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    street: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    street_area = _area_by_code(session, street, AreaLevel.street)
    if street and street_area is None:
        raise NotFound("area.not_found", "未找到该区划 (area not found)")
    lang = "en" if request.query_params.get("lang") == "en" else "zh-CN"
    visible = counted(session, actor, _now(request))
    svg = tier_mix_svg(
        tiers.tier_mix(session, street_area.id if street_area else None, visible=visible), lang=lang
    )
    return Response(svg, media_type="image/svg+xml")


def _area_by_code(session: Session, code: str | None, level: AreaLevel) -> Area | None:
    if not code:
        return None
    return session.execute(select(Area).where(Area.code == code, Area.level == level)).scalar_one_or_none()


def tier_mix_svg(rows: Sequence[tiers.TierMix], *, lang: str = "zh-CN", width: int = 760) -> str:
    """A 100% stacked bar per area (red / yellow / green), with counts and shares written out,
    so the chart reads without colour too. Labels are escaped: area names come from imports."""
    names = {
        Tier.red: ("红", "red"), Tier.yellow: ("黄", "yellow"), Tier.green: ("绿", "green"),
    }  # fmt: skip
    pick = 0 if lang == "zh-CN" else 1
    label_w, bar_h, gap, top = 190, 24, 10, 34
    bar_w = width - label_w - 20
    total_all = {tier: sum(getattr(row, tier.value) for row in rows) for tier in Tier}
    grand = sum(total_all.values())
    everything = [
        ("全部" if pick == 0 else "All", total_all[Tier.red], total_all[Tier.yellow], total_all[Tier.green])
    ]
    bars = everything + [
        ((row.name or ("未分配社区" if pick == 0 else "no community")), row.red, row.yellow, row.green)
        for row in rows
    ]
    height = top + len(bars) * (bar_h + gap) + 10
    title = "分级构成" if pick == 0 else "Tier mix"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="13">',
        f"<title>{escape(title)}</title>",
    ]
    x = label_w
    for tier in Tier:  # legend
        parts.append(f'<rect x="{x}" y="6" width="14" height="14" fill="{TIER_COLOURS[tier]}"/>')
        share = f" {total_all[tier]:,} ({_pct(total_all[tier], grand)})" if grand else ""
        parts.append(f'<text x="{x + 18}" y="18">{escape(names[tier][pick])}{share}</text>')
        x += 170
    for index, (label, red, yellow, green) in enumerate(bars):
        y = top + index * (bar_h + gap)
        total = red + yellow + green
        weight = ' font-weight="bold"' if index == 0 else ""
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end"{weight}>{escape(label[:14])}</text>'
        )
        if not total:
            parts.append(f'<rect x="{label_w}" y="{y}" width="{bar_w}" height="{bar_h}" fill="#eee"/>')
            continue
        offset = 0.0
        for tier, count in ((Tier.red, red), (Tier.yellow, yellow), (Tier.green, green)):
            if not count:
                continue
            w = bar_w * count / total
            parts.append(
                f'<rect x="{label_w + offset:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{TIER_COLOURS[tier]}">'
                f"<title>{escape(label)} {escape(names[tier][pick])} {count:,} ({_pct(count, total)})</title></rect>"
            )
            if w > 44:
                parts.append(
                    f'<text x="{label_w + offset + w / 2:.1f}" y="{y + 17}" text-anchor="middle" fill="#fff">{_pct(count, total)}</text>'
                )
            offset += w
    parts.append("</svg>")
    return "".join(parts)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "—"
