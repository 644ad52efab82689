"""Break the glass (紧急访问): a clinician opens one resident outside their scope, for a while.

The opening needs a reason and lasts ``policy`` ``break_glass_duration`` (``YIYANG_BREAK_GLASS_HOURS``,
4 h by default). While it is open, ``policy.authorize`` lets the clinician's care categories
through for that resident, consent included, and audits every use as ``break_glass``. Officers
review the openings afterwards (who, whom, why, when; justified or not). No HTTP; nothing commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.consent_models import BreakGlassAccess, BreakGlassVerdict
from yiyang.access.denials import queue_denial
from yiyang.access.models import AuditAction
from yiyang.access.policy import SCOPES, DataCategory, Draw, current_settings, scope_clause
from yiyang.errors import Conflict, Forbidden, Invalid, NotFound
from yiyang.residents.models import Resident

MIN_REASON = 10  # characters: "emergency" alone does not say why


def open_break_glass(
    session: Session, actor: Actor, resident_id: int, reason: str, now: dt.datetime
) -> BreakGlassAccess:
    grant = next((g for g in actor.grants if SCOPES[g.role].break_glass), None)
    if grant is None or actor.user_id is None:
        queue_denial(
            session, actor, action=AuditAction.break_glass, resource_type="break_glass", resident_id=resident_id,
            field_group=DataCategory.clinical.value, purpose="care", reason="access.break_glass.role", at=now,
        )  # fmt: skip
        raise Forbidden(
            "access.break_glass.role", "仅临床角色可紧急访问 (only clinical roles may break the glass)"
        )
    reason = " ".join(reason.split())
    if len(reason) < MIN_REASON:
        raise Invalid(
            "access.break_glass.reason",
            f"请说明紧急访问的理由（至少 {MIN_REASON} 字） (say why, at least {MIN_REASON} characters)",
        )
    if session.get(Resident, resident_id) is None:
        raise NotFound("resident.not_found", "未找到该居民 (resident not found)", resident_id=resident_id)
    opened = BreakGlassAccess(
        user_id=actor.user_id, actor_name=actor.username[:64], role=grant.role.value,
        organisation_id=grant.organisation_id, resident_id=resident_id, reason=reason[:200], opened_at=now,
        expires_at=now + current_settings().break_glass_duration,
    )  # fmt: skip
    session.add(opened)
    session.flush()
    # The free-text reason stays in break_glass_access (it may name the resident's situation);
    # the audit row points at it.
    record_access(
        session, actor, action=AuditAction.break_glass, resource_type="break_glass", resident_id=resident_id,
        field_group=DataCategory.clinical.value, purpose="care", reason=f"opened #{opened.id}", grant=grant, at=now,
    )  # fmt: skip
    return opened


def _reviewer_grants(actor: Actor):  # type: ignore[no-untyped-def]
    return [g for g in actor.grants if SCOPES[g.role].reviews_break_glass]


def _require_reviewer(session: Session, actor: Actor, now: dt.datetime) -> None:
    if not _reviewer_grants(actor):
        queue_denial(
            session, actor, action="read", resource_type="break_glass", resident_id=None,
            field_group="review", purpose="care", reason="access.role", at=now,
        )  # fmt: skip
        raise Forbidden(
            "access.break_glass.reviewer",
            "仅卫健、民政工作人员或管理员可审阅紧急访问 (only officers and administrators review break-the-glass)",
        )


def _reviewable(session: Session, actor: Actor, now: dt.datetime):  # type: ignore[no-untyped-def]
    clauses = [
        scope_clause(session, actor, g, now)
        for g in _reviewer_grants(actor)
        if SCOPES[g.role].draw is Draw.area
    ]
    return BreakGlassAccess.resident_id.in_(select(Resident.id).where(or_(*clauses)))


def list_break_glass(
    session: Session,
    actor: Actor,
    now: dt.datetime,
    *,
    unreviewed_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, Sequence[BreakGlassAccess]]:
    """Openings for residents in the reviewer's area, newest first."""
    _require_reviewer(session, actor, now)
    stmt = select(BreakGlassAccess).where(_reviewable(session, actor, now))
    if unreviewed_only:
        stmt = stmt.where(BreakGlassAccess.reviewed_at.is_(None))
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(
        stmt.order_by(BreakGlassAccess.opened_at.desc(), BreakGlassAccess.id.desc())
        .limit(limit)
        .offset(offset)
    ).scalars()
    return total, rows.all()


def review_break_glass(
    session: Session,
    actor: Actor,
    opening_id: int,
    verdict: BreakGlassVerdict,
    note: str | None,
    now: dt.datetime,
) -> BreakGlassAccess:
    _require_reviewer(session, actor, now)
    opening = session.execute(
        select(BreakGlassAccess).where(BreakGlassAccess.id == opening_id, _reviewable(session, actor, now))
    ).scalar_one_or_none()
    if opening is None:
        raise NotFound("break_glass.not_found", "未找到该紧急访问记录 (break-the-glass opening not found)")
    if opening.reviewed_at is not None:
        raise Conflict("break_glass.reviewed", "该紧急访问已审阅 (this opening was already reviewed)")
    if opening.user_id == actor.user_id:
        raise Forbidden("break_glass.own", "不能审阅本人的紧急访问 (nobody reviews their own opening)")
    opening.verdict = verdict
    opening.reviewed_by = actor.user_id
    opening.reviewed_at = now
    opening.review_note = " ".join(note.split())[:200] if note else None
    session.flush()
    return opening
