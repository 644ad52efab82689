"""Two-way referral (双向转诊): community -> hospital and back, with a summary from the profile.

sent -> accepted -> completed (the receiver keeps the resident) or returned (下转: back to the
community with the receiver's notes, and a follow-up within 2 weeks for the team). An urgent
referral gets its 2-week follow-up when it is sent (基本公卫规范第三版 紧急转诊后2周内主动随访).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from yiyang.access.actor import Actor
from yiyang.access.models import ResidentRelationship
from yiyang.access.policy import DataCategory, authorize
from yiyang.care.contracts import by_of, contract_in_force, history
from yiyang.care.models import Referral, ReferralDirection, ReferralStatus, WorkKind
from yiyang.care.relationships import granting, kind_drawn_by
from yiyang.care.schedule import Programme
from yiyang.care.service import actor_organisations, create_work_item
from yiyang.db import china_day
from yiyang.errors import Conflict, Forbidden, Invalid, NotFound
from yiyang.geo.models import Organisation
from yiyang.residents.service import conditions_of, get_active_resident, observations_of

FOLLOW_UP_DAYS = 14
SOURCE_TYPE = "referral"  # the receiver's resident_relationship rows, while it holds the resident


def profile_summary(session: Session, resident_id: int) -> dict[str, Any]:
    """What the receiver needs: conditions, the latest observation of each kind, the tier and why.
    The receiver reads it as clinical data, so reasons drawn from an alert (sensor data) stay out;
    the tier they raised stays in."""
    from yiyang.tiers.service import is_sensor_reason, tier_of

    latest: dict[str, dict[str, Any]] = {}
    for obs in observations_of(session, resident_id, limit=50):
        if obs.code not in latest:
            latest[obs.code] = {
                "code": obs.code, "value": obs.value, "value2": obs.value2, "unit": obs.unit,
                "effective_at": obs.effective_at.isoformat(),
            }  # fmt: skip
    view = tier_of(session, resident_id)
    tier = None
    if view is not None:
        tier = {
            "tier": view.tier.value,
            "reasons": [r.rule.code for r in view.reasons if not is_sensor_reason(r)],
        }
    return {
        "conditions": [{"code": c.code, "display": c.display} for c in conditions_of(session, resident_id)],
        "observations": list(latest.values())[:10],
        "tier": tier,
    }


def get_referral(session: Session, referral_id: int) -> Referral:
    referral = session.get(Referral, referral_id)
    if referral is None:
        raise NotFound(
            "care.referral.not_found", "未找到该转诊 (referral not found)", referral_id=referral_id
        )
    return referral


def read_referral(session: Session, actor: Actor, referral_id: int, now: dt.datetime) -> Referral:
    referral = get_referral(session, referral_id)
    authorize(session, actor, referral.resident_id, category=DataCategory.clinical, what="referral", now=now)
    return referral


def _sender_org(session: Session, actor: Actor, resident_id: int, explicit: int | None) -> int:
    orgs = actor_organisations(actor)
    if explicit is not None:
        if session.get(Organisation, explicit) is None:
            raise NotFound("care.referral.sender", "未找到转出机构 (referring organisation not found)")
        if not (actor.is_admin or explicit in orgs):
            raise Forbidden(
                "care.referral.sender", "只能以本机构名义转诊 (refer only on behalf of your own organisation)"
            )
        return explicit
    contract = contract_in_force(session, resident_id)
    if contract is not None and (actor.is_admin or contract.team_id in orgs):
        return contract.team_id
    if orgs:
        return sorted(orgs)[0]
    raise Invalid("care.referral.sender", "请指明转出机构 (name the referring organisation)")


def send_referral(
    session: Session, actor: Actor, *, resident_id: int, to_organisation_id: int, reason: str, urgent: bool = False,
    direction: ReferralDirection = ReferralDirection.up, from_organisation_id: int | None = None,
    source_work_item_id: int | None = None, now: dt.datetime, schedule_follow_up: bool = True,
) -> Referral:  # fmt: skip
    get_active_resident(session, resident_id)
    authorize(
        session, actor, resident_id, category=DataCategory.clinical, what="referral", action="create", now=now
    )
    if session.get(Organisation, to_organisation_id) is None:
        raise NotFound("care.referral.receiver", "未找到接收机构 (receiving organisation not found)")
    sender = _sender_org(session, actor, resident_id, from_organisation_id)
    if sender == to_organisation_id:
        raise Invalid("care.referral.same", "转出与接收机构不能相同 (sender and receiver must differ)")
    referral = Referral(
        resident_id=resident_id, direction=direction, from_organisation_id=sender, to_organisation_id=to_organisation_id,
        urgent=urgent, reason=reason[:200], summary=profile_summary(session, resident_id), status=ReferralStatus.sent,
        source_work_item_id=source_work_item_id, created_by=by_of(actor), sent_at=now, status_changed_at=now,
    )  # fmt: skip
    session.add(referral)
    session.flush()
    history(session, "referral", referral.id, "sent", at=now, by=by_of(actor), to_status="sent")
    if urgent and schedule_follow_up:
        today = china_day(now)
        create_work_item(
            session, resident_id=resident_id, kind=WorkKind.referral_follow_up, programme=Programme.referral.value,
            rule="referral.urgent", due_from=today, due_by=today + dt.timedelta(days=FOLLOW_UP_DAYS), now=now,
            by=by_of(actor), owner_organisation_id=sender, source_type="referral", source_id=referral.id,
        )  # fmt: skip
    return referral


def _require_receiver(actor: Actor, referral: Referral) -> None:
    if not (actor.is_admin or referral.to_organisation_id in actor_organisations(actor)):
        raise Forbidden(
            "care.referral.receiver_only",
            "仅接收机构可处理该转诊 (only the receiving organisation may do this)",
        )


def _expect(referral: Referral, status: ReferralStatus) -> None:
    if referral.status is not status:
        raise Conflict("care.referral.status", "转诊状态不允许此操作 (the referral's status does not allow this)",
                       status=referral.status.value)  # fmt: skip


def _move(session: Session, actor: Actor, referral: Referral, to: ReferralStatus, frm: tuple[ReferralStatus, ...],
          now: dt.datetime, note: str | None = None) -> None:  # fmt: skip
    if referral.status not in frm:
        raise Conflict("care.referral.status", "转诊状态不允许此操作 (the referral's status does not allow this)",
                       status=referral.status.value)  # fmt: skip
    previous = referral.status.value
    referral.status = to
    referral.status_changed_at = now
    if note:
        referral.receiver_note = note[:2000]
    history(session, "referral", referral.id, to.value, at=now, by=by_of(actor), from_status=previous,
            to_status=to.value, note=note[:200] if note else None)  # fmt: skip


def accept_referral(session: Session, actor: Actor, referral_id: int, *, now: dt.datetime) -> Referral:
    """The receiver takes the resident: from now until it returns them it has scope over them."""
    referral = get_referral(session, referral_id)
    _require_receiver(actor, referral)  # what entitles the actor: the referral was sent to them
    _expect(referral, ReferralStatus.sent)

    def accept() -> Referral:
        session.add(
            ResidentRelationship(
                resident_id=referral.resident_id,
                kind=kind_drawn_by(actor, referral.to_organisation_id),
                organisation_id=referral.to_organisation_id,
                valid_from=now,
                source_type=SOURCE_TYPE,
                source_id=referral.id,
                created_at=now,
            )  # fmt: skip
        )
        _move(session, actor, referral, ReferralStatus.accepted, (ReferralStatus.sent,), now)
        return referral

    return granting(session, actor, referral.resident_id, accept, category=DataCategory.clinical,
                    what="referral", action="update", now=now)  # fmt: skip


def _end_relationship(session: Session, referral_id: int, now: dt.datetime) -> None:
    session.execute(
        update(ResidentRelationship)
        .where(
            ResidentRelationship.source_type == SOURCE_TYPE,
            ResidentRelationship.source_id == referral_id,
            ResidentRelationship.ended_at.is_(None),
        )
        .values(ended_at=now)
    )


def _accepted_for_receiver(session: Session, actor: Actor, referral_id: int, now: dt.datetime) -> Referral:
    """An accepted referral the actor's organisation received, once the policy allows the update."""
    referral = get_referral(session, referral_id)
    _require_receiver(actor, referral)
    _expect(referral, ReferralStatus.accepted)  # once returned, the receiver's scope has ended
    authorize(
        session,
        actor,
        referral.resident_id,
        category=DataCategory.clinical,
        what="referral",
        action="update",
        now=now,
    )
    return referral


def complete_referral(
    session: Session, actor: Actor, referral_id: int, *, note: str | None = None, now: dt.datetime
) -> Referral:
    referral = _accepted_for_receiver(session, actor, referral_id, now)
    _move(session, actor, referral, ReferralStatus.completed, (ReferralStatus.accepted,), now, note)
    session.flush()
    return referral


def return_referral(
    session: Session, actor: Actor, referral_id: int, *, note: str, now: dt.datetime
) -> Referral:
    """下转: back to the sender with notes; the sender's team follows up within 2 weeks."""
    referral = _accepted_for_receiver(session, actor, referral_id, now)
    _move(session, actor, referral, ReferralStatus.returned, (ReferralStatus.accepted,), now, note)
    _end_relationship(session, referral.id, now)  # back to the community: the receiver's scope ends
    today = china_day(now)
    create_work_item(
        session, resident_id=referral.resident_id, kind=WorkKind.referral_follow_up, programme=Programme.referral.value,
        rule="referral.returned", due_from=today, due_by=today + dt.timedelta(days=FOLLOW_UP_DAYS), now=now,
        by=by_of(actor), owner_organisation_id=referral.from_organisation_id, source_type="referral", source_id=referral.id,
    )  # fmt: skip
    session.flush()
    return referral
