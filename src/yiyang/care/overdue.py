"""Overdue lists (逾期清单) per owner, team and community, "my work", and the XLSX export.

Every list is filtered in its query by ``visible_residents`` (care services), so an actor sees
only the residents in their scope; counts for the chart are grouped in the database. Clinical work
(``CLINICAL_PROGRAMMES``, ``CLINICAL_SOURCES``) also needs ``clinical`` visible for its resident: the
row is left out otherwise, from the list, its total, the counts and the export alike.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

from openpyxl import Workbook
from sqlalchemy import ColumnElement, and_, case, func, not_, or_, select
from sqlalchemy.orm import Session

from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.policy import DataCategory, Purpose, visible_residents
from yiyang.care.models import OPEN_STATUSES, WorkItem, WorkStatus
from yiyang.care.schedule import CLINICAL_PROGRAMMES, CLINICAL_SOURCES, RULES
from yiyang.care.service import actor_organisations
from yiyang.db import china_day
from yiyang.geo.models import Area, Organisation
from yiyang.residents.models import Resident


def clinical_work() -> ColumnElement[bool]:
    """Work items that show clinical data (the one test of it, in SQL; ``source_type`` may be NULL)."""
    return or_(
        WorkItem.programme.in_(sorted(CLINICAL_PROGRAMMES)),
        and_(WorkItem.source_type.is_not(None), WorkItem.source_type.in_(sorted(CLINICAL_SOURCES))),
    )


def _work_scope(session: Session, actor: Actor, now: dt.datetime) -> ColumnElement[bool]:
    """Work the actor may see: care services visible, and clinical work only where clinical is visible too.

    Leaving the row out (rather than masking its programme) because an overdue chronic or mental-
    disorder follow-up is itself health data, whatever its label says.
    """
    return and_(
        visible_residents(session, actor, category=DataCategory.care_services, now=now),
        or_(
            not_(clinical_work()), visible_residents(session, actor, category=DataCategory.clinical, now=now)
        ),
    )


@dataclass(frozen=True, slots=True)
class OverdueRow:
    item: WorkItem
    resident_name: str
    community_id: int | None
    days_overdue: int


@dataclass(frozen=True, slots=True)
class OverduePage:
    total: int
    rows: list[OverdueRow]


def _filters(
    owner_user_id: int | None, team_id: int | None, community_id: int | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if owner_user_id is not None:
        where.append(WorkItem.owner_user_id == owner_user_id)
    if team_id is not None:
        where.append(WorkItem.owner_organisation_id == team_id)
    if community_id is not None:
        where.append(Resident.community_id == community_id)
    return where


def _named_scope(session: Session, actor: Actor, now: dt.datetime) -> ColumnElement[bool]:
    """Rows naming their resident: the work (``_work_scope``) and the name (identity) must both be visible."""
    return and_(
        _work_scope(session, actor, now),
        visible_residents(session, actor, category=DataCategory.identity, now=now),
    )


def overdue_list(
    session: Session, actor: Actor, *, now: dt.datetime, owner_user_id: int | None = None, team_id: int | None = None,
    community_id: int | None = None, limit: int = 50, offset: int = 0,
) -> OverduePage:  # fmt: skip
    """Overdue work, the longest overdue first, in the actor's scope."""
    scope = _named_scope(session, actor, now)
    where = [WorkItem.status == WorkStatus.overdue, scope, *_filters(owner_user_id, team_id, community_id)]
    base = select(WorkItem, Resident.name, Resident.community_id).join(
        Resident, Resident.id == WorkItem.resident_id
    )
    total = (
        session.scalar(
            select(func.count())
            .select_from(WorkItem)
            .join(Resident, Resident.id == WorkItem.resident_id)
            .where(*where)
        )
        or 0
    )
    today = china_day(now)
    rows = [
        OverdueRow(item, name, community, (today - item.due_by).days)
        for item, name, community in session.execute(
            base.where(*where).order_by(WorkItem.due_by, WorkItem.id).limit(limit).offset(offset)
        ).all()
    ]
    return OverduePage(total, rows)


@dataclass(frozen=True, slots=True)
class OverdueCount:
    key: int | None
    label: str
    overdue: int
    escalated: int


def overdue_counts(session: Session, actor: Actor, *, by: str, now: dt.datetime) -> list[OverdueCount]:
    """Overdue work counted by ``community``, ``team`` or ``owner`` (user), most overdue first.

    Counts only the work the actor may see (``_work_scope``), so the chart never counts hidden rows.
    """
    scope = _work_scope(session, actor, now)
    column = {
        "community": Resident.community_id, "team": WorkItem.owner_organisation_id, "owner": WorkItem.owner_user_id,
    }[by]  # fmt: skip
    escalated = func.sum(case((WorkItem.escalation_level > 0, 1), else_=0))
    rows = session.execute(
        select(column, func.count(), escalated)
        .select_from(WorkItem)
        .join(Resident, Resident.id == WorkItem.resident_id)
        .where(WorkItem.status == WorkStatus.overdue, scope)
        .group_by(column)
        .order_by(func.count().desc())
    ).all()
    labels = _labels(session, by, [r[0] for r in rows if r[0] is not None])
    return [OverdueCount(key, labels.get(key, "—"), count, int(esc or 0)) for key, count, esc in rows]


def _labels(session: Session, by: str, keys: list[int]) -> dict[int, str]:
    if not keys:
        return {}
    if by == "community":
        return dict(session.execute(select(Area.id, Area.name).where(Area.id.in_(keys))).all())
    if by == "team":
        return dict(
            session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(keys))).all()
        )
    from yiyang.access.models import User

    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(keys))).all())


def _mine(session: Session, actor: Actor, now: dt.datetime) -> ColumnElement[bool] | None:
    """Open work the actor owns, their teams own, or that was escalated to them, in their scope."""
    orgs = sorted(actor_organisations(actor))
    mine: list[ColumnElement[bool]] = []
    if actor.user_id is not None:
        mine += [WorkItem.owner_user_id == actor.user_id, WorkItem.escalated_to_user_id == actor.user_id]
    if orgs:
        mine += [WorkItem.owner_organisation_id.in_(orgs), WorkItem.escalated_to_organisation_id.in_(orgs)]
    if not mine:
        return None
    return and_(WorkItem.status.in_(OPEN_STATUSES), or_(*mine), _named_scope(session, actor, now))


def my_work(
    session: Session, actor: Actor, *, now: dt.datetime, limit: int = 200
) -> Sequence[tuple[WorkItem, str]]:
    """Open work the actor owns, their teams own, or that was escalated to them, soonest due first."""
    where = _mine(session, actor, now)
    if where is None:
        return []
    return session.execute(
        select(WorkItem, Resident.name)
        .join(Resident, Resident.id == WorkItem.resident_id)
        .where(where)
        .order_by(WorkItem.due_by, WorkItem.id)
        .limit(limit)
    ).all()


def my_work_counts(session: Session, actor: Actor, *, now: dt.datetime) -> dict[str, int]:
    """How much of ``my_work`` there is by status, all of it: the list shows only the soonest due."""
    where = _mine(session, actor, now)
    if where is None:
        return {}
    rows = session.execute(
        select(WorkItem.status, func.count())
        .select_from(WorkItem)
        .join(Resident, Resident.id == WorkItem.resident_id)
        .where(where)
        .group_by(WorkItem.status)
    ).all()
    return {WorkStatus(status).value: count for status, count in rows}


# -- export -------------------------------------------------------------------------------------

HEADER = (
    "任务编号 (item)", "居民编号 (resident id)", "姓名 (name)", "社区 (community)", "任务类型 (kind)",
    "项目 (programme)", "依据 (rule)", "应完成日期 (due by)", "逾期天数 (days overdue)", "升级 (escalation)",
    "负责人 (owner user)", "负责团队 (owner team)",
)  # fmt: skip
EXPORT_LIMIT = 100_000


def overdue_xlsx(
    session: Session, actor: Actor, *, now: dt.datetime, owner_user_id: int | None = None, team_id: int | None = None,
    community_id: int | None = None,
) -> bytes:  # fmt: skip
    """The overdue list as an XLSX workbook (write-only, so a district's list streams)."""
    page = overdue_list(
        session, actor, now=now, owner_user_id=owner_user_id, team_id=team_id, community_id=community_id,
        limit=EXPORT_LIMIT,
    )  # fmt: skip
    record_access(session, actor, action="export", resource_type="work_item.overdue",
                  field_group=DataCategory.care_services.value, purpose=Purpose.care.value, at=now)  # fmt: skip
    communities = _labels(session, "community", list({r.community_id for r in page.rows if r.community_id}))
    teams = _labels(
        session,
        "team",
        list({r.item.owner_organisation_id for r in page.rows if r.item.owner_organisation_id}),
    )
    book = Workbook(write_only=True)
    sheet = book.create_sheet("逾期清单 overdue")
    sheet.append(list(HEADER))
    for row in page.rows:
        item = row.item
        rule = RULES.get(item.rule)
        sheet.append([
            item.id, item.resident_id, row.resident_name, communities.get(row.community_id, ""), item.kind.value,
            item.programme, rule.zh if rule else item.rule, item.due_by, row.days_overdue, item.escalation_level,
            item.owner_user_id, teams.get(item.owner_organisation_id, ""),
        ])  # fmt: skip
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
