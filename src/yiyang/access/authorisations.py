"""Family authorisations (数据授权): a resident lets a family member act for them. No HTTP; nothing
commits.

An authorisation is what gives a family member's account its scope (``Actor.acts_for``): the
resident's whole record, as the resident sees it, for as long as it is in force. So only the
resident, or staff entering the signed authorisation form (``consent.PAPER_FORM_ROLES``, with the
resident in scope, never through an emergency opening), may record one; a family member already
authorised may not extend it to someone else. The resident, the staff of the form, or the family
member themself (giving it up) may revoke it. Reads, grants and revocations are audited through
the policy (``resident_authorisation``, identity). Checks read the table at each request, so a
revocation or an expiry counts from the very next request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yiyang.access import service
from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.consent import form_staff
from yiyang.access.models import ResidentAuthorisation, User
from yiyang.access.policy import DataCategory, Purpose, authorize, is_system
from yiyang.access.roles import Role
from yiyang.errors import Conflict, Invalid, NotFound
from yiyang.residents.service import get_active_resident

WHAT = "resident_authorisation"
RECORDER_FORBIDDEN = "authorisation.recorder.forbidden"
# 与老人关系: what the signed form asks.
KINSHIPS = {
    "spouse": "配偶",
    "child": "子女",
    "child_in_law": "儿媳/女婿",
    "grandchild": "孙子女/外孙子女",
    "sibling": "兄弟姐妹",
    "other_relative": "其他亲属",
    "guardian": "监护人",
}


def in_force(authorisation: ResidentAuthorisation, now: dt.datetime) -> bool:
    """As ``service.authorisation_in_force`` asks it in SQL: begun, not ended, not revoked."""
    a = authorisation
    return a.revoked_at is None and a.valid_from <= now and (a.valid_until is None or a.valid_until > now)


def _recorder(session: Session, actor: Actor, resident_id: int, *, action: str, now: dt.datetime) -> Actor:
    """The resident as they are; anyone else only through a staff grant that enters signed forms."""
    if is_system(actor) or (actor.has_role(Role.resident) and actor.resident_id == resident_id):
        return actor
    return form_staff(
        session, actor, resident_id, action=action, now=now, resource_type=WHAT, reason=RECORDER_FORBIDDEN,
        message="只有本人或录入签字授权书的工作人员可以设置家属授权 "
        "(only the resident, or staff entering the signed form, authorise a family member)",
    )  # fmt: skip


def authorisations_of(
    session: Session, actor: Actor, resident_id: int, *, now: dt.datetime
) -> Sequence[tuple[ResidentAuthorisation, User]]:
    """Every authorisation the resident has given, newest first, with the family member's account."""
    get_active_resident(session, resident_id)
    authorize(session, actor, resident_id, category=DataCategory.identity, what=WHAT, now=now)
    return session.execute(
        select(ResidentAuthorisation, User)
        .join(User, User.id == ResidentAuthorisation.grantee_id)
        .where(ResidentAuthorisation.resident_id == resident_id)
        .order_by(ResidentAuthorisation.id.desc())
    ).all()  # type: ignore[return-value]


def authorise(
    session: Session,
    actor: Actor,
    resident_id: int,
    grantee_username: str,
    kinship: str,
    *,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    now: dt.datetime,
) -> ResidentAuthorisation:
    """Let the account named ``grantee_username`` act for the resident; it is given the family
    member's role when it has none (the role alone reaches no one)."""
    get_active_resident(session, resident_id)
    recorder = _recorder(session, actor, resident_id, action="create", now=now)
    authorize(
        session, recorder, resident_id, category=DataCategory.identity, what=WHAT, action="create", now=now,
        glass=False,
    )  # fmt: skip
    if kinship not in KINSHIPS:
        raise Invalid("authorisation.kinship", f"与老人关系须为 {', '.join(KINSHIPS)} (unknown kinship)")
    grantee = service.find_user(session, grantee_username)
    if grantee is None:
        raise NotFound("user.not_found", "账号不存在 (no such account)")
    if not grantee.active:
        raise Conflict("user.inactive", "该账号已停用 (this account is deactivated)")
    if grantee.resident_id == resident_id:
        raise Invalid(
            "authorisation.self", "不能授权给本人的账号 (a resident does not authorise their own account)"
        )
    start = valid_from or now
    held = session.scalar(
        select(ResidentAuthorisation.id).where(
            ResidentAuthorisation.resident_id == resident_id,
            ResidentAuthorisation.grantee_id == grantee.id,
            ResidentAuthorisation.revoked_at.is_(None),
            or_(ResidentAuthorisation.valid_until.is_(None), ResidentAuthorisation.valid_until > start),
        )
    )
    if held is not None:
        raise Conflict(
            "authorisation.exists", "该家属已有有效授权 (this family member is already authorised)", id=held
        )
    if all(grant.role is not Role.family_member for grant in service.active_grants(session, grantee.id)):
        service.grant_role(session, grantee, Role.family_member, granted_by=actor.user_id, now=now)
    return service.authorise_family_member(
        session, resident_id, grantee, kinship, valid_from=start, valid_until=valid_until,
        recorded_by=actor.user_id,
    )  # fmt: skip


def revoke(
    session: Session, actor: Actor, authorisation_id: int, *, now: dt.datetime
) -> ResidentAuthorisation:
    """End an authorisation now: by the resident, staff entering the signed form, or the family
    member giving it up. Kept, with when it ended."""
    authorisation = session.get(ResidentAuthorisation, authorisation_id)
    if authorisation is None:
        raise NotFound("authorisation.not_found", "授权不存在 (no such authorisation)")
    resident_id = authorisation.resident_id
    giving_up = actor.user_id is not None and actor.user_id == authorisation.grantee_id
    who = actor if giving_up else _recorder(session, actor, resident_id, action="update", now=now)
    if giving_up:  # their own authorisation, in force or not: audited as such
        record_access(
            session, actor, action="update", resource_type=WHAT, resident_id=resident_id,
            field_group=DataCategory.identity.value, purpose=Purpose.care.value, at=now,
        )  # fmt: skip
    else:
        authorize(
            session, who, resident_id, category=DataCategory.identity, what=WHAT, action="update", now=now,
            glass=False,
        )  # fmt: skip
    if authorisation.revoked_at is not None:
        raise Conflict("authorisation.revoked", "该授权已撤销 (this authorisation was already revoked)")
    authorisation.revoked_at = now
    session.flush()
    return authorisation
