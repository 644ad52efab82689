"""Revealing a masked personal field (查看完整身份证号/电话): for roles that need it, with a
stated reason, through the policy's scope check, and always audited.

ID numbers and phones are shown masked everywhere (``110105********002X``, ``138****5678``). A
person whose work needs the whole value asks for it with a reason; the answer is one value, and
the audit trail keeps who, which resident, which field, when and why. Refusals are audited too.

Which roles may reveal what (scope, i.e. which residents, is ``policy.authorize``'s decision):

- ID number: family doctors (signing a contract, a referral), civil-affairs and health officers
  (subsidy and entitlement files), and the resident or an authorised family member.
- Phone: everyone who calls or visits the resident in their work (family doctors, nurses, health
  managers, station staff, grid workers, officers), and the resident or a family member.

Volunteers and district administrators may not: a volunteer reaches an elder through the
platform, and administering the system does not need anyone's number.
"""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata

from sqlalchemy.orm import Session

from yiyang.access import policy
from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.audit import record_access
from yiyang.access.models import AuditAction, AuditOutcome
from yiyang.access.redaction import redact_pii
from yiyang.access.roles import Role
from yiyang.errors import Forbidden, Invalid
from yiyang.residents.service import get_active_resident


class RevealableField(enum.StrEnum):
    id_number = "id_number"
    phone = "phone"


_CARE_ROLES = frozenset(
    {
        Role.family_doctor, Role.nurse, Role.health_manager, Role.station_staff, Role.social_worker,
        Role.grid_worker, Role.civil_affairs_officer, Role.health_officer,
    }
)  # fmt: skip
_SELF = frozenset({Role.resident, Role.family_member})
REVEAL_ROLES: dict[RevealableField, frozenset[Role]] = {
    RevealableField.id_number: frozenset(
        {Role.family_doctor, Role.civil_affairs_officer, Role.health_officer}
    )
    | _SELF,
    RevealableField.phone: _CARE_ROLES | _SELF,
}
REASON_MIN, REASON_MAX = 2, 200


def reveal_grant(actor: Actor, field: RevealableField) -> RoleGrant | None:
    """The actor's first grant whose role may reveal ``field``, or None."""
    allowed = REVEAL_ROLES[field]
    return next((grant for grant in actor.grants if grant.role in allowed), None)


def clean_reason(reason: str) -> str:
    """The stated reason as kept in the audit trail: one line, no ID numbers or phones in it."""
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in reason)
    text = " ".join(redact_pii(text).split())
    if len(text) < REASON_MIN:
        raise Invalid("access.reveal.reason", "请说明查看原因 (state why you need the full value)")
    return text[:REASON_MAX]


def reveal(
    session: Session,
    actor: Actor,
    resident_id: int,
    field: RevealableField,
    reason: str,
    *,
    now: dt.datetime | None = None,
) -> str | None:
    """The unmasked value of one field, audited as ``reveal`` with its reason.

    Refusals raise ``Forbidden`` after writing a denied audit row into ``session``: the caller
    commits the session before answering, so the refusal is kept.
    """
    stated = clean_reason(reason)
    resident = get_active_resident(session, resident_id)
    grant = reveal_grant(actor, field)
    if grant is None:
        record_access(
            session, actor, action=AuditAction.reveal, resource_type="resident", resident_id=resident_id,
            field_group=field.value, purpose=policy.Purpose.care.value, outcome=AuditOutcome.denied,
            reason=f"角色无权查看 (role may not reveal {field.value}): {stated}"[:REASON_MAX], at=now,
        )  # fmt: skip
        raise Forbidden(
            "access.reveal.role",
            "您的角色无权查看完整信息 (your role may not reveal this field)",
            field=field.value,
        )
    # Scope (is this resident one of the actor's?) and consent are the policy's decision, taken
    # on the grants that may reveal this field only: never a volunteer's pairing (or another
    # role's scope) lending its reach to a role that may reveal.
    revealer = actor.acting_as(REVEAL_ROLES[field])
    policy.authorize(
        session, revealer, resident_id, category=policy.DataCategory.identity, what=f"resident.{field.value}",
        action=AuditAction.reveal.value, now=now,
    )  # fmt: skip
    value = resident.id_number if field is RevealableField.id_number else resident.phone
    record_access(
        session, actor, action=AuditAction.reveal, resource_type="resident", resident_id=resident_id,
        field_group=field.value, purpose=policy.Purpose.care.value, reason=stated, grant=grant, at=now,
    )  # fmt: skip
    return value
