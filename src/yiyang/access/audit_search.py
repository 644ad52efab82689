"""Reading the audit trail (审计查询): officers search and export it, a resident sees who
accessed their own record. Every such read is itself audited.

- District administrators without an area search the whole trail, including events that name
  no resident.
- Health and civil-affairs officers, and administrators with an area, search events about the
  residents ``policy.visible_residents`` gives those roles (their jurisdiction), never events
  without a resident, never residents only another role they hold reaches.
- A resident sees the accesses to their own record; a family member those of the residents who
  authorise them. They see the role, organisation, what, when and purpose: not staff names, not
  free-text reasons (which may speak of other people), not other residents' events.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import xlsxwriter
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from yiyang.access import policy
from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.audit import record_access
from yiyang.access.models import AuditAction, AuditEvent, AuditOutcome
from yiyang.access.roles import ROLES, Role
from yiyang.errors import Forbidden
from yiyang.geo.models import Organisation
from yiyang.residents.models import Resident

OFFICER_ROLES = (Role.health_officer, Role.civil_affairs_officer)
MAX_EXPORT_ROWS = 100_000
AUDIT_RESOURCE = "audit_event"


@dataclass(frozen=True, slots=True)
class AuditQuery:
    resident_id: int | None = None
    user_id: int | None = None
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    action: AuditAction | None = None
    outcome: AuditOutcome | None = None


def _refuse(
    session: Session, actor: Actor, action: AuditAction, resident_id: int | None, now: dt.datetime | None
):
    """Audit a refused read of the trail (the caller commits it) and raise."""
    record_access(
        session, actor, action=action, resource_type=AUDIT_RESOURCE, resident_id=resident_id,
        purpose="audit", outcome=AuditOutcome.denied, reason="角色无权查看审计日志 (role may not read the audit trail)",
        at=now,
    )  # fmt: skip
    return Forbidden("access.audit.role", "您的角色无权查看审计日志 (your role may not read the audit trail)")


def _officer_grant(actor: Actor) -> tuple[RoleGrant | None, bool]:
    """The grant an audit search relies on, and whether it covers the whole trail: only a
    district administrator without an area reads it whole."""
    for grant in actor.grants:
        if grant.role is Role.district_admin and grant.area_id is None:
            return grant, True
    for grant in actor.grants:
        if grant.role is Role.district_admin or grant.role in OFFICER_ROLES:
            return grant, False
    return None, False


def _filtered(
    session: Session, actor: Actor, query: AuditQuery, whole_trail: bool, now: dt.datetime | None
) -> Select:
    stmt = select(AuditEvent)
    if not whole_trail:
        # Events about the residents the audit-reading roles reach, never another role's
        # (a volunteer's pairing), and never events naming no resident.
        readers = actor.acting_as({Role.district_admin, *OFFICER_ROLES})
        visible = policy.visible_residents(session, readers, category=policy.DataCategory.identity, now=now)
        stmt = stmt.where(AuditEvent.resident_id.in_(select(Resident.id).where(visible)))
    conditions: list[ColumnElement[bool]] = []
    if query.resident_id is not None:
        conditions.append(AuditEvent.resident_id == query.resident_id)
    if query.user_id is not None:
        conditions.append(AuditEvent.user_id == query.user_id)
    if query.since is not None:
        conditions.append(AuditEvent.occurred_at >= query.since)
    if query.until is not None:
        conditions.append(AuditEvent.occurred_at < query.until)
    if query.action is not None:
        conditions.append(AuditEvent.action == query.action)
    if query.outcome is not None:
        conditions.append(AuditEvent.outcome == query.outcome)
    return stmt.where(*conditions)


def _authorised_search(
    session: Session, actor: Actor, query: AuditQuery, action: AuditAction, now: dt.datetime | None
) -> tuple[Select, RoleGrant]:
    grant, whole_trail = _officer_grant(actor)
    if grant is None:
        raise _refuse(session, actor, action, query.resident_id, now)
    return _filtered(session, actor, query, whole_trail, now), grant


def search_events(
    session: Session,
    actor: Actor,
    query: AuditQuery,
    *,
    limit: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[int, Sequence[AuditEvent]]:
    """A page of events, newest first, and how many match; the search itself is audited."""
    stmt, grant = _authorised_search(session, actor, query, AuditAction.read, now)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = (
        session.execute(
            stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset)
        )
        .scalars()
        .all()
    )
    record_access(
        session, actor, action=AuditAction.read, resource_type=AUDIT_RESOURCE, resident_id=query.resident_id,
        purpose="audit", grant=grant, at=now,
    )  # fmt: skip
    return total, rows


# --- export -------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    ("id", "编号 id"), ("occurred_at", "时间 occurred at (UTC)"), ("user_id", "用户编号 user id"),
    ("actor_name", "用户 user"), ("role", "角色 role"), ("organisation_id", "机构编号 organisation id"),
    ("resident_id", "居民编号 resident id"), ("action", "操作 action"), ("resource_type", "对象 resource"),
    ("field_group", "数据类别 field group"), ("purpose", "目的 purpose"), ("outcome", "结果 outcome"),
    ("reason", "原因 reason"), ("request_id", "请求编号 request id"), ("row_hash", "哈希 row hash"),
)  # fmt: skip


def _cell(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value  # a spreadsheet must not run a cell as a formula
    return value.value if hasattr(value, "value") else value


def export_events(
    session: Session, actor: Actor, query: AuditQuery, *, now: dt.datetime | None = None
) -> list[tuple[object, ...]]:
    """The matching events (oldest first, at most MAX_EXPORT_ROWS) as rows of cells; audited as export."""
    stmt, grant = _authorised_search(session, actor, query, AuditAction.export, now)
    events = session.execute(stmt.order_by(AuditEvent.id).limit(MAX_EXPORT_ROWS)).scalars()
    rows = [tuple(_cell(getattr(event, name)) for name, _ in EXPORT_COLUMNS) for event in events]
    record_access(
        session, actor, action=AuditAction.export, resource_type=AUDIT_RESOURCE, resident_id=query.resident_id,
        purpose="audit", grant=grant, at=now,
    )  # fmt: skip
    return rows


def as_csv(rows: Iterable[tuple[object, ...]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens the Chinese headings right."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow([heading for _, heading in EXPORT_COLUMNS])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def as_xlsx(rows: Iterable[tuple[object, ...]]) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = workbook.add_worksheet("audit")
    bold = workbook.add_format({"bold": True})
    sheet.write_row(0, 0, [heading for _, heading in EXPORT_COLUMNS], bold)
    for index, row in enumerate(rows, start=1):
        sheet.write_row(index, 0, ["" if cell is None else cell for cell in row])
    sheet.freeze_panes(1, 0)
    workbook.close()
    return buffer.getvalue()


# --- a resident's own view -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One access to a resident's record as the resident sees it."""

    occurred_at: dt.datetime
    action: str
    what: str
    field_group: str | None
    purpose: str | None
    outcome: str
    role: str | None
    role_label: str | None
    organisation: str | None


def _may_see_own_log(actor: Actor, resident_id: int) -> RoleGrant | None:
    for grant in actor.grants:
        if grant.role is Role.resident and actor.resident_id == resident_id:
            return grant
        if grant.role is Role.family_member and resident_id in actor.acts_for:
            return grant
    return None


def access_log(
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    limit: int = 50,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[int, list[AccessEntry]]:
    """Who accessed this resident's record, newest first: for the resident or an authorised family member."""
    grant = _may_see_own_log(actor, resident_id)
    if grant is None:
        record_access(
            session, actor, action=AuditAction.read, resource_type=AUDIT_RESOURCE, resident_id=resident_id,
            purpose="own_record", outcome=AuditOutcome.denied,
            reason="仅本人或获授权家属可查看 (only the resident or an authorised family member)", at=now,
        )  # fmt: skip
        raise Forbidden(
            "access.audit.own_record",
            "只有本人或获授权的家属可以查看访问记录 (only the resident or an authorised family member may see this)",
        )
    stmt = select(AuditEvent).where(AuditEvent.resident_id == resident_id)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    events = (
        session.execute(
            stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset)
        )
        .scalars()
        .all()
    )
    organisation_ids = {event.organisation_id for event in events if event.organisation_id is not None}
    names = dict(
        session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(organisation_ids))
        ).all()
    )
    entries = []
    for event in events:
        info = ROLES.get(Role(event.role)) if event.role in Role.__members__ else None
        entries.append(
            AccessEntry(
                occurred_at=event.occurred_at, action=event.action.value, what=event.resource_type,
                field_group=event.field_group, purpose=event.purpose, outcome=event.outcome.value, role=event.role,
                role_label=info.label if info else ("系统 (system)" if event.user_id is None else None),
                organisation=names.get(event.organisation_id),
            )
        )  # fmt: skip
    record_access(
        session, actor, action=AuditAction.read, resource_type=AUDIT_RESOURCE, resident_id=resident_id,
        purpose="own_record", grant=grant, at=now,
    )  # fmt: skip
    return total, entries
