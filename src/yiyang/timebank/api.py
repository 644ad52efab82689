"""Time-bank routes: volunteer profiles, pairings, a volunteer's hours, spending and donating.
Thin: the work is in service.py."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from yiyang.access import accounts
from yiyang.access.actor import Actor
from yiyang.access.deps import ActorDep, Clock, ClockDep
from yiyang.access.policy import DataCategory, visible_residents
from yiyang.access.roles import ADMIN_ROLE
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.deps import IdPath, SessionDep
from yiyang.errors import Forbidden, Invalid
from yiyang.timebank import schemas, service

router = APIRouter(prefix="/api/timebank", tags=["time bank"])


@router.put(
    "/volunteers/{user_id}/profile",
    response_model=schemas.ProfileRead,
    openapi_extra=no_resident_data("a volunteer's own profile: skills, area, availability"),
)
def save_profile(
    user_id: IdPath, body: schemas.ProfileBody, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ProfileRead:
    request = service.ProfileRequest(body.area_id, tuple(body.skills), tuple(body.availability), body.active)
    return schemas.ProfileRead.of(service.save_profile(session, actor, user_id, request, clock()))


@router.get(
    "/volunteers/{user_id}/profile",
    response_model=schemas.ProfileRead,
    openapi_extra=no_resident_data("a volunteer's own profile: skills, area, availability"),
)
def read_profile(user_id: IdPath, session: SessionDep, actor: ActorDep) -> schemas.ProfileRead:
    if actor.user_id != user_id and not actor.is_admin:
        raise Forbidden(
            "timebank.profile.forbidden", "只能查看自己的志愿者档案 (you may only see your own profile)"
        )
    return schemas.ProfileRead.of(service.get_profile(session, user_id))


@router.get(
    "/me",
    response_model=schemas.HoursRead,
    openapi_extra=resident_data(DataCategory.care_services, many=True),
)
def my_hours(session: SessionDep, actor: ActorDep, clock: ClockDep) -> schemas.HoursRead:
    """The caller's balance, totals by kind, latest ledger lines and current pairings: the paired
    elders listed are those the caller may see as a volunteer, whatever other role they hold."""
    volunteer = service.as_volunteer(actor)
    assert volunteer.user_id is not None
    account = service.own_account(session, volunteer, clock())
    visible = visible_residents(session, volunteer, category=DataCategory.care_services, now=clock())
    return schemas.HoursRead.of(
        service.hours_summary(session, account.id),
        service.statement(session, account.id, limit=100),
        list(service.pairings_of(session, volunteer.user_id, visible=visible)),
    )


@router.post(
    "/spend", response_model=schemas.PostedRead, openapi_extra=no_resident_data("the volunteer's own hours")
)
def spend(
    body: schemas.SpendBody, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.PostedRead:
    posted = service.spend(session, actor, body.minutes, body.key, body.memo, clock())
    return _posted(session, actor, posted, clock)


@router.post(
    "/donate",
    response_model=schemas.PostedRead,
    openapi_extra=no_resident_data("the volunteer's own hours, given to another volunteer"),
)
def donate(
    body: schemas.DonateBody, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.PostedRead:
    posted = service.donate(session, actor, body.minutes, body.key, body.to_user_id, clock())
    return _posted(session, actor, posted, clock)


def _posted(session: Session, actor: Actor, posted: service.Posted, clock: Clock) -> schemas.PostedRead:
    account = service.own_account(session, actor, clock())
    return schemas.PostedRead(
        transaction_id=posted.transaction.id,
        kind=posted.transaction.kind,
        replayed=posted.replayed,
        balance_minutes=service.balance(session, account.id),
    )


@router.post(
    "/pairings",
    response_model=schemas.PairingRead,
    status_code=201,
    openapi_extra=resident_data(DataCategory.care_services),
)
def create_pairing(
    body: schemas.PairingCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.PairingRead:
    """小老助老: staff pair a volunteer with an elder."""
    return schemas.PairingRead.of(
        service.pair(session, actor, body.volunteer_user_id, body.resident_id, clock())
    )


@router.post(
    "/pairings/{pairing_id}/end",
    response_model=schemas.PairingRead,
    openapi_extra=resident_data(DataCategory.care_services),
)
def end_pairing(
    pairing_id: IdPath, body: schemas.PairingEnd, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.PairingRead:
    return schemas.PairingRead.of(service.end_pairing(session, actor, pairing_id, body.reason, clock()))


@router.post(
    "/expire",
    response_model=schemas.ExpireResult,
    openapi_extra=no_resident_data("hours past their validity, expired by an administrator"),
)
def expire(
    body: schemas.ExpireBody, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ExpireResult:
    """Expire hours past their validity now (the timed job does this too). It posts for every
    volunteer of the deployment, so only an administrator without an area runs it."""
    if not actor.is_admin:
        raise Forbidden("timebank.admin_only", "仅管理员可执行此操作 (administrators only)")
    # accounts decides "an administrator without an area" for account administration; the same rule.
    if not accounts.whole_deployment(actor.acting_as({ADMIN_ROLE})):
        raise Forbidden(
            "timebank.expire.deployment_admin",
            "时间过期作用于全区所有志愿者，仅限不限辖区的管理员执行 "
            "(expiry runs for every volunteer of the deployment: only an administrator without an area)",
        )
    if body.validity_days is not None and body.validity_days < service.MIN_VALIDITY_DAYS:
        raise Invalid(
            "timebank.validity_days.minimum",
            f"有效期不得短于 {service.MIN_VALIDITY_DAYS} 天 "
            f"(the validity may not be shorter than {service.MIN_VALIDITY_DAYS} days)",
            minimum=service.MIN_VALIDITY_DAYS,
        )
    return schemas.ExpireResult(expired_minutes=service.expire(session, clock(), body.validity_days))
