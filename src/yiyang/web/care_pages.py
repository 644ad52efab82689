"""Staff pages for closed-loop care: "my work" for each staff role, and the overdue lists.

Thin: each page calls the care services with the signed-in actor (scope is enforced there) and
renders a template. The overdue chart is an SVG drawn on the server, so the page needs no script.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Literal
from xml.sax.saxutils import escape

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from yiyang.access.deps import ClockDep
from yiyang.access.policy import DataCategory
from yiyang.access.roles import ROLES
from yiyang.access.routes import resident_data
from yiyang.care import overdue
from yiyang.care.schedule import RULES
from yiyang.db import china_day
from yiyang.deps import MAX_ID, SessionDep
from yiyang.i18n import pick_language, translate
from yiyang.web.actor import WebActorDep
from yiyang.web.pages import render

router = APIRouter(include_in_schema=False)
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get(
    "/care/my-work",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.identity, many=True),
)
def my_work_page(request: Request, session: SessionDep, actor: WebActorDep, clock: ClockDep) -> HTMLResponse:
    now = clock()
    rows = overdue.my_work(session, actor, now=now)
    # The list holds the soonest due only; the totals count all of it (a team's panel has thousands).
    counts = overdue.my_work_counts(session, actor, now=now)
    roles = [ROLES[g.role] for g in actor.grants]
    groups: dict[str, list] = {"overdue": [], "due": [], "scheduled": []}
    for item, name in rows:
        groups.setdefault(item.status.value, []).append(
            {"item": item, "name": name, "rule": RULES.get(item.rule)}
        )
    return render(
        request, "care/my_work.html", roles=roles, groups=groups, counts=counts, today=china_day(now),
        total=sum(counts.values()),
    )  # fmt: skip


@router.get(
    "/care/overdue",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.identity, many=True),
)
def overdue_page(
    request: Request, session: SessionDep, actor: WebActorDep, clock: ClockDep,
    by: Literal["community", "team", "owner"] = "community", owner_user_id: OptionalId = None,
    team_id: OptionalId = None, community_id: OptionalId = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:  # fmt: skip
    now = clock()
    lang = pick_language(request.query_params.get("lang"), request.cookies.get("lang"))  # as the page's text
    counts = overdue.overdue_counts(session, actor, by=by, now=now)
    size = 50
    listing = overdue.overdue_list(
        session, actor, now=now, owner_user_id=owner_user_id, team_id=team_id, community_id=community_id,
        limit=size, offset=(page - 1) * size,
    )  # fmt: skip
    filters = "&".join(
        f"{k}={v}"
        for k, v in (("owner_user_id", owner_user_id), ("team_id", team_id), ("community_id", community_id))
        if v
    )
    chart = Markup(overdue_svg(counts, lang=lang))  # noqa: S704 - labels escaped in overdue_svg
    return render(
        request, "care/overdue.html", counts=counts, chart=chart, by=by, listing=listing, rules=RULES, page=page,
        pages=max(1, (listing.total + size - 1) // size), filters=filters,
    )  # fmt: skip


def overdue_svg(counts: Sequence[overdue.OverdueCount], *, lang: str = "zh-CN", width: int = 760) -> str:
    """Horizontal bars of overdue work per group (escalated part darker), top 20."""
    shown = list(counts)[:20]
    bar_h, gap, label_w = 18, 6, 200
    height = max(1, len(shown)) * (bar_h + gap) + 24
    peak = max((c.overdue for c in shown), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(translate("care.overdue.chart", lang))}">']  # fmt: skip
    if not shown:
        parts.append(
            f'<text x="4" y="16" font-size="13">{escape(translate("care.overdue.none", lang))}</text>'
        )
    for index, count in enumerate(shown):
        y = 4 + index * (bar_h + gap)
        full = (width - label_w - 60) * count.overdue / peak
        late = (width - label_w - 60) * count.escalated / peak
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="12" text-anchor="end">{escape(count.label)}</text>'
        )
        parts.append(f'<rect x="{label_w}" y="{y}" width="{full:.1f}" height="{bar_h}" fill="#e67e22"/>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{late:.1f}" height="{bar_h}" fill="#a04000"/>')
        parts.append(
            f'<text x="{label_w + full + 4:.1f}" y="{y + 13}" font-size="12">{count.overdue:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def days_late(due_by: dt.date, today: dt.date) -> int:
    return (today - due_by).days
