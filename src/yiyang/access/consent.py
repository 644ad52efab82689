"""Recording and revoking consent (知情同意), and reading its history. No HTTP; nothing commits.

Who may record a decision for a resident: the resident, a family member the resident authorised,
or a member of staff who has the resident in scope (from a signed paper form), the scope decided by
a staff grant other than a volunteer's (``recorder``), never through an emergency opening. A decision ends
the one in force for the same category, recipient class and purpose, so exactly one decision
(or none, and then the default of ``policy.DEFAULT_IMPLIED_CONSENT``) applies at any moment.
Checks read the table at query time: a revocation or an expiry counts from the next request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from yiyang.access.actor import Actor
from yiyang.access.consent_models import Consent, ConsentDecision, ConsentSource
from yiyang.access.denials import queue_denial
from yiyang.access.policy import DataCategory, Purpose, RecipientClass, authorize, is_system
from yiyang.access.roles import Audience, Role, role_info
from yiyang.errors import Conflict, Forbidden, Invalid, NotFound

# The roles that enter a signed paper form: every staff role but the volunteer's own.
PAPER_FORM_ROLES = frozenset(
    role for role in Role if role_info(role).audience is Audience.staff and role is not Role.volunteer
)
RECORDER_FORBIDDEN = "consent.recorder.forbidden"


def source_for(actor: Actor, resident_id: int) -> ConsentSource:
    """How a decision by this actor reaches the system: the resident, family, or a paper form."""
    if actor.has_role(Role.resident) and actor.resident_id == resident_id:
        return ConsentSource.resident
    if actor.has_role(Role.family_member) and resident_id in actor.acts_for:
        return ConsentSource.family_member
    return ConsentSource.paper_form


def recorder(session: Session, actor: Actor, resident_id: int, *, action: str, now: dt.datetime) -> Actor:
    """The actor whose grant decides a change to this resident's consent: the resident or an
    authorised family member as they are; anyone else only through their ``PAPER_FORM_ROLES``
    (staff entering the signed form), so a pairing as a volunteer never counts. Refused (audited)
    without such a grant."""
    if is_system(actor) or source_for(actor, resident_id) is not ConsentSource.paper_form:
        return actor
    return form_staff(
        session, actor, resident_id, action=action, now=now, resource_type="consent", reason=RECORDER_FORBIDDEN,
        message="只有本人、受托家属或录入签字同意书的工作人员可以设置授权 "
        "(only the resident, an authorised family member or staff entering the signed form record consent)",
    )  # fmt: skip


def form_staff(
    session: Session, actor: Actor, resident_id: int, *, action: str, now: dt.datetime, resource_type: str,
    reason: str, message: str,
) -> Actor:  # fmt: skip
    """The actor as staff entering a form the resident signed: only their ``PAPER_FORM_ROLES``
    grants, so a pairing as a volunteer never counts. Refused with ``reason`` (audited) without one."""
    staff = actor.acting_as(PAPER_FORM_ROLES)
    if staff.grants:
        return staff
    queue_denial(
        session, actor, action=action, resource_type=resource_type, resident_id=resident_id,
        field_group=DataCategory.identity.value, purpose=Purpose.care.value, reason=reason, at=now,
    )  # fmt: skip
    raise Forbidden(reason, message)


def record_consent(
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    category: DataCategory,
    recipient_class: RecipientClass,
    purpose: Purpose,
    decision: ConsentDecision,
    now: dt.datetime,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    source: ConsentSource | None = None,
    note: str | None = None,
) -> Consent:
    """Record one decision; the decision in force for the same key ends (superseded)."""
    authorize(
        session, recorder(session, actor, resident_id, action="create", now=now), resident_id,
        category=DataCategory.identity, what="consent", action="create", now=now, glass=False,
    )  # fmt: skip
    if recipient_class is RecipientClass.own:
        raise Invalid(
            "consent.recipient", "不能对本人设置授权 (no consent is needed for the resident's own access)"
        )
    start = _aware(valid_from) or now
    valid_until = _aware(valid_until)
    if valid_until is not None and valid_until <= start:
        raise Invalid("consent.period", "截止时间须晚于开始时间 (valid_until must be after valid_from)")
    for current in in_force(session, resident_id, now, category=category, recipient_class=recipient_class,
                            purpose=purpose):  # fmt: skip
        current.revoked_at = now
        current.revoked_by = actor.user_id
        current.ended_reason = "superseded"
    consent = Consent(
        resident_id=resident_id, category=category.value, recipient_class=recipient_class.value,
        purpose=purpose.value, decision=decision, valid_from=start, valid_until=valid_until,
        source=source or source_for(actor, resident_id), recorded_by=actor.user_id,
        note=note[:200] if note else None, created_at=now,
    )  # fmt: skip
    session.add(consent)
    session.flush()
    return consent


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """A time without a zone is taken as UTC, as the database stores it."""
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def get_consent(session: Session, consent_id: int) -> Consent:
    consent = session.get(Consent, consent_id)
    if consent is None:
        raise NotFound("consent.not_found", "未找到该授权记录 (consent not found)")
    return consent


def revoke_consent(session: Session, actor: Actor, consent_id: int, now: dt.datetime) -> Consent:
    """Withdraw a decision from now on; the row stays, with when and by whom."""
    consent = get_consent(session, consent_id)
    authorize(
        session, recorder(session, actor, consent.resident_id, action="update", now=now), consent.resident_id,
        category=DataCategory.identity, what="consent", action="update", now=now, glass=False,
    )  # fmt: skip
    if consent.revoked_at is not None and consent.revoked_at <= now:
        raise Conflict(
            "consent.revoked", "该授权已撤回或已被替代 (this consent was already revoked or replaced)"
        )
    consent.revoked_at = now
    consent.revoked_by = actor.user_id
    consent.ended_reason = "revoked"
    session.flush()
    return consent


def in_force(
    session: Session,
    resident_id: int,
    now: dt.datetime,
    *,
    category: DataCategory | None = None,
    recipient_class: RecipientClass | None = None,
    purpose: Purpose | None = None,
) -> Sequence[Consent]:
    stmt = select(Consent).where(
        Consent.resident_id == resident_id,
        or_(Consent.valid_until.is_(None), Consent.valid_until > now),
        or_(Consent.revoked_at.is_(None), Consent.revoked_at > now),
    )
    if category is not None:
        stmt = stmt.where(Consent.category == category.value)
    if recipient_class is not None:
        stmt = stmt.where(Consent.recipient_class == recipient_class.value)
    if purpose is not None:
        stmt = stmt.where(Consent.purpose == purpose.value)
    return session.execute(stmt.order_by(Consent.id)).scalars().all()


def consent_history(
    session: Session, actor: Actor, resident_id: int, now: dt.datetime, *, only_in_force: bool = False
) -> Sequence[Consent]:
    """Every decision the resident made, oldest first (or only those in force now)."""
    authorize(session, actor, resident_id, category=DataCategory.identity, what="consent", now=now)
    if only_in_force:
        return in_force(session, resident_id, now)
    return (
        session.execute(select(Consent).where(Consent.resident_id == resident_id).order_by(Consent.id))
        .scalars()
        .all()
    )


def consent_status(consent: Consent, now: dt.datetime) -> str:
    """active (in force), proposed (starts later), inactive (ended: revoked, superseded or expired)."""
    if consent.revoked_at is not None and consent.revoked_at <= now:
        return "inactive"
    if consent.valid_until is not None and consent.valid_until <= now:
        return "inactive"
    if consent.valid_from > now:
        return "proposed"
    return "active"


# --- merges ------------------------------------------------------------------------------------


def on_residents_merged(session: Session, event: Any) -> None:
    """A merged resident's consent decisions follow it to the survivor (noted for an unmerge).

    Two decisions may then be in force for one key; a deny wins, so the merge never widens what
    the person allowed.
    """
    merge = event.merge
    moved = session.execute(select(Consent.id).where(Consent.resident_id == merge.merged_id)).scalars().all()
    if moved:
        session.execute(update(Consent).where(Consent.id.in_(moved)).values(resident_id=merge.survivor_id))
    merge.moved = {**(merge.moved or {}), "consent_ids": list(moved)}
    session.flush()


def on_residents_unmerged(session: Session, event: Any) -> None:
    moved = (event.merge.moved or {}).get("consent_ids") or []
    if moved:
        session.execute(
            update(Consent).where(Consent.id.in_(moved)).values(resident_id=event.merge.merged_id)
        )
        session.flush()
