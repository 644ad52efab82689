"""Time bank steps: volunteer profiles, pairings (小老助老), and posting hours to the ledger.

``post`` is the one way minutes move. It is idempotent (a key per source: replaying a posting
returns the first one; the same key with different content is refused), balanced (entries sum to
zero), and never takes a volunteer's account below zero: the accounts being debited are locked
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are serialised), their balances summed
from their entries, and the posting refused if one would go negative. Nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import ColumnElement, case, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yiyang import events
from yiyang.access.accounts import administers_all
from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.denials import queue_denial
from yiyang.access.models import RelationshipKind, ResidentRelationship, RoleMembership, User
from yiyang.access.policy import DataCategory, Purpose, authorize
from yiyang.access.roles import Audience, Role, role_info
from yiyang.access.service import family_of
from yiyang.db import is_postgres
from yiyang.errors import Conflict, Forbidden, Invalid, NotFound
from yiyang.geo.models import Area
from yiyang.residents.models import Resident
from yiyang.residents.service import carry_back, carry_to_survivor, get_active_resident
from yiyang.timebank.ledger import (
    MIN_VALIDITY_DAYS,
    Posting,
    check_postings,
    expiring_from_totals,
    overdrawn,
)
from yiyang.timebank.models import (
    AccountKind,
    TimebankAccount,
    TimebankEntry,
    TimebankTransaction,
    TransactionKind,
    VolunteerPairing,
    VolunteerProfile,
)

PAIRING_SOURCE = "volunteer_pairing"  # resident_relationship.source_type of a pairing
PAIRING_FORBIDDEN = "timebank.pairing.forbidden"
DEFAULT_VALIDITY_DAYS = 3 * 365  # hours expire after three years unless a district says otherwise
SYSTEM_ACCOUNTS = (AccountKind.issuance, AccountKind.redeemed, AccountKind.pool, AccountKind.expired)
# The roles that arrange and end pairings: every staff role but the volunteer's own.
PAIRING_ROLES = frozenset(
    role for role in Role if role_info(role).audience is Audience.staff and role is not Role.volunteer
)


class TimebankSettings(BaseSettings):
    """The district's time-bank rules from the environment (prefix ``YIYANG_TIMEBANK_``)."""

    model_config = SettingsConfigDict(env_prefix="YIYANG_TIMEBANK_", env_file=".env", extra="ignore")

    # One validity for the daily job, the command and the API alike: a job running with a shorter
    # one than the district promises would take hours that are still good.
    validity_days: int = Field(default=DEFAULT_VALIDITY_DAYS, ge=MIN_VALIDITY_DAYS, le=36_500)


def configured_validity_days() -> int:
    """The district's validity of earned hours, in days (``YIYANG_TIMEBANK_VALIDITY_DAYS``)."""
    return TimebankSettings().validity_days


# -- volunteers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileRequest:
    area_id: int
    skills: tuple[str, ...] = ()
    availability: tuple[str, ...] = ()
    active: bool = True


def is_volunteer(session: Session, user_id: int) -> bool:
    return (
        session.scalar(
            select(RoleMembership.id).where(
                RoleMembership.user_id == user_id,
                RoleMembership.role == Role.volunteer,
                RoleMembership.revoked_at.is_(None),
            )
        )
        is not None
    )


def save_profile(
    session: Session, actor: Actor, user_id: int, request: ProfileRequest, now: dt.datetime
) -> VolunteerProfile:
    """A volunteer keeps their own profile; an administrator may keep anyone's."""
    if actor.user_id != user_id and not actor.is_admin:
        raise Forbidden(
            "timebank.profile.forbidden", "只能维护自己的志愿者档案 (you may only edit your own profile)"
        )
    if session.get(User, user_id) is None:
        raise NotFound("user.not_found", "用户不存在 (no such user)")
    if not is_volunteer(session, user_id):
        raise Invalid(
            "timebank.not_volunteer", "该用户不是志愿者 (this user does not hold the volunteer role)"
        )
    if session.get(Area, request.area_id) is None:
        raise NotFound("area.not_found", "辖区不存在 (no such area)")
    profile = session.get(VolunteerProfile, user_id)
    if actor.user_id != user_id:
        # The profile is the volunteer's provider row: an administrator over an area keeps those
        # of their area, as its providers, and moves none in or out of it.
        areas = [request.area_id] + ([profile.area_id] if profile is not None else [])
        if not administers_all(session, actor, areas):
            raise Forbidden(
                "timebank.profile.scope",
                "只能维护您管理辖区内的志愿者档案 (you may edit only volunteer profiles of the area you administer)",
            )
    if profile is None:
        profile = VolunteerProfile(user_id=user_id, created_at=now)
        session.add(profile)
    profile.area_id = request.area_id
    profile.skills = sorted(set(request.skills))
    profile.availability = sorted(set(request.availability))
    profile.active = request.active
    profile.updated_at = now
    session.flush()
    account_of(session, user_id, now)
    events.publish(
        session,
        events.VolunteerProfileChanged(
            user_id=user_id,
            area_id=profile.area_id,
            skills=tuple(profile.skills),
            availability=tuple(profile.availability),
            active=profile.active,
        ),
    )
    return profile


def get_profile(session: Session, user_id: int) -> VolunteerProfile:
    profile = session.get(VolunteerProfile, user_id)
    if profile is None:
        raise NotFound("timebank.profile.not_found", "尚无志愿者档案 (no volunteer profile yet)")
    return profile


# -- pairing ---------------------------------------------------------------------------------------


def pair(
    session: Session, actor: Actor, volunteer_user_id: int, resident_id: int, now: dt.datetime
) -> VolunteerPairing:
    """Staff pair a volunteer with an elder; the volunteer gets scope over that elder while paired.

    Decided by the actor's staff roles alone (``PAIRING_ROLES``): a pairing of their own as a
    volunteer gives an officer no say over who else is paired with that elder."""
    staff = _as_staff(session, actor, resident_id, action="create", now=now)
    get_active_resident(session, resident_id)
    authorize(
        session, staff, resident_id, category=DataCategory.care_services, what="volunteer_pairing",
        action="create", now=now,
    )  # fmt: skip
    profile = session.get(VolunteerProfile, volunteer_user_id)
    if profile is None or not profile.active or not is_volunteer(session, volunteer_user_id):
        raise Invalid("timebank.pairing.volunteer", "该志愿者不在岗 (this volunteer is not active)")
    existing = session.scalar(
        select(VolunteerPairing.id).where(
            VolunteerPairing.volunteer_user_id == volunteer_user_id,
            VolunteerPairing.resident_id == resident_id,
            VolunteerPairing.ended_at.is_(None),
        )
    )
    if existing is not None:
        raise Conflict("timebank.pairing.exists", "已经结对 (already paired)", pairing_id=existing)
    pairing = VolunteerPairing(
        volunteer_user_id=volunteer_user_id,
        resident_id=resident_id,
        started_at=now,
        created_by_user_id=actor.user_id,
    )
    session.add(pairing)
    session.flush()
    session.add(
        ResidentRelationship(
            resident_id=resident_id,
            kind=RelationshipKind.pairing,
            user_id=volunteer_user_id,
            valid_from=now,
            source_type=PAIRING_SOURCE,
            source_id=pairing.id,
            created_at=now,
        )
    )
    session.flush()
    return pairing


def end_pairing(
    session: Session, actor: Actor, pairing_id: int, reason: str | None, now: dt.datetime
) -> VolunteerPairing:
    """Staff end a pairing in their staff roles; the volunteer may always end their own.

    Ending their own pairing takes the volunteer's access away and reads nothing of the elder, so
    it asks neither scope nor consent (an elder withdrawing consent to volunteers is a reason to
    end it, and must not keep it in force), and is audited all the same."""
    pairing = session.get(VolunteerPairing, pairing_id)
    if pairing is None:
        raise NotFound("timebank.pairing.not_found", "结对不存在 (no such pairing)")
    if actor.user_id == pairing.volunteer_user_id:
        own = next((grant for grant in actor.grants if grant.role is Role.volunteer), None)
        record_access(
            session, actor, action="update", resource_type="volunteer_pairing", resident_id=pairing.resident_id,
            field_group=DataCategory.care_services.value, purpose=Purpose.care.value, grant=own, at=now,
        )  # fmt: skip
    else:
        staff = _as_staff(session, actor, pairing.resident_id, action="update", now=now)
        authorize(
            session, staff, pairing.resident_id, category=DataCategory.care_services, what="volunteer_pairing",
            action="update", now=now,
        )  # fmt: skip
    if pairing.ended_at is not None:
        raise Conflict("timebank.pairing.ended", "结对已结束 (the pairing has already ended)")
    pairing.ended_at = now
    pairing.end_reason = reason
    for row in session.scalars(
        select(ResidentRelationship).where(
            ResidentRelationship.source_type == PAIRING_SOURCE,
            ResidentRelationship.source_id == pairing.id,
            ResidentRelationship.ended_at.is_(None),
        )
    ):
        row.ended_at = now
        row.valid_until = now
    return pairing


def pairings_of(
    session: Session,
    volunteer_user_id: int,
    *,
    current_only: bool = True,
    visible: ColumnElement[bool] | None = None,
) -> Sequence[VolunteerPairing]:
    """A volunteer's pairings; ``visible`` (``policy.visible_residents``) keeps those whose elder
    the reader may see (a pairing names its elder: consent to volunteers still decides)."""
    query = select(VolunteerPairing).where(VolunteerPairing.volunteer_user_id == volunteer_user_id)
    if visible is not None:
        query = query.where(VolunteerPairing.resident_id.in_(select(Resident.id).where(visible)))
    if current_only:
        query = query.where(VolunteerPairing.ended_at.is_(None))
    return session.scalars(query.order_by(VolunteerPairing.id)).all()


def on_residents_merged(session: Session, event: events.ResidentsMerged) -> None:
    """A merged record's pairings follow the person to the survivor, as their relationship rows
    do (``care.merges``): left behind, a pairing would name a record no one opens, its volunteer
    could not end it (their scope went with the relationship) nor see it among their pairings, and
    the same volunteer could be paired with the person twice. Noted in ``merge.moved``."""
    carry_to_survivor(session, event.merge, "volunteer_pairing_ids", VolunteerPairing)


def on_residents_unmerged(session: Session, event: events.ResidentsUnmerged) -> None:
    carry_back(session, event.merge, "volunteer_pairing_ids", VolunteerPairing)


def _as_staff(session: Session, actor: Actor, resident_id: int, *, action: str, now: dt.datetime) -> Actor:
    """The actor holding only their ``PAIRING_ROLES``, so that scope and consent are decided by a
    staff grant and never by a pairing the person has as a volunteer; refused (audited) without one."""
    staff = actor.acting_as(PAIRING_ROLES)
    if staff.grants:
        return staff
    queue_denial(
        session, actor, action=action, resource_type="volunteer_pairing", resident_id=resident_id,
        field_group=DataCategory.care_services.value, purpose=Purpose.care.value,
        reason=PAIRING_FORBIDDEN, at=now,
    )  # fmt: skip
    raise Forbidden(PAIRING_FORBIDDEN, "只有工作人员可以安排结对 (only staff arrange pairings)")


# -- accounts and posting ----------------------------------------------------------------------------


def account_of(session: Session, user_id: int, now: dt.datetime) -> TimebankAccount:
    """A volunteer's account, opened on first use."""
    account = session.scalar(select(TimebankAccount).where(TimebankAccount.user_id == user_id))
    if account is None:
        account = _open(session, AccountKind.volunteer, f"volunteer:{user_id}", user_id, now)
    return account


def system_account(session: Session, kind: AccountKind, now: dt.datetime) -> TimebankAccount:
    account = session.scalar(select(TimebankAccount).where(TimebankAccount.code == kind.value))
    return account if account is not None else _open(session, kind, kind.value, None, now)


def _open(
    session: Session, kind: AccountKind, code: str, user_id: int | None, now: dt.datetime
) -> TimebankAccount:
    account = TimebankAccount(kind=kind, code=code, user_id=user_id, created_at=now)
    try:
        _insert_once(
            session, [account], conflict=("timebank.account.concurrent", "账户正在开立，请重试 (retry)")
        )
    except IntegrityError:  # opened at the same moment by another transaction: use that one
        return session.scalars(select(TimebankAccount).where(TimebankAccount.code == code)).one()
    return account


def _insert_once(session: Session, rows: Sequence[object], *, conflict: tuple[str, str]) -> None:
    """Insert rows guarded by a unique key. On PostgreSQL inside a savepoint, so a concurrent
    writer's row makes this raise ``IntegrityError`` with the rest of the transaction intact (the
    caller then reads the winner's row). On SQLite writers are serialised, and pysqlite's
    savepoints would commit early, so a plain flush; a lost race there is a retryable conflict."""
    if is_postgres(session):
        with session.begin_nested():
            session.add_all(rows)
            session.flush()
        return
    try:
        session.add_all(rows)
        session.flush()
    except IntegrityError:
        raise Conflict(*conflict) from None


def balance(session: Session, account_id: int) -> int:
    """Minutes in an account: the sum of its entries."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(TimebankEntry.minutes), 0)).where(
                TimebankEntry.account_id == account_id
            )
        )
        or 0
    )


@dataclass(frozen=True, slots=True)
class Posted:
    transaction: TimebankTransaction
    replayed: bool  # True: this key was posted before and nothing new was written


def post(
    session: Session,
    kind: TransactionKind,
    key: str,
    postings: Sequence[Posting],
    *,
    source_type: str,
    source_id: int | None,
    now: dt.datetime,
    by: str,
    memo: str | None = None,
) -> Posted:
    """Write one balanced transaction, once per key, never overdrawing a volunteer."""
    check_postings(postings)
    if not key or len(key) > 120:
        raise Invalid(
            "timebank.key", "幂等键须为 1-120 个字符 (the idempotency key must be 1-120 characters)"
        )
    earlier = _replay(session, kind, key, postings)
    if earlier is not None:
        return earlier
    involved = sorted({p.account_id for p in postings})
    accounts = session.scalars(
        select(TimebankAccount)
        .where(TimebankAccount.id.in_(involved))
        .order_by(TimebankAccount.id)
        .with_for_update()
    ).all()  # locked in id order, so two postings over the same accounts cannot deadlock
    if len(accounts) != len(involved):
        raise NotFound("timebank.account.not_found", "账户不存在 (no such account)")
    # A retry of this very posting may have committed while we waited for the locks: it stands,
    # and this one is its replay (not a spend refused for the hours the first one took).
    earlier = _replay(session, kind, key, postings)
    if earlier is not None:
        return earlier
    guarded = {a.id for a in accounts if a.kind == AccountKind.volunteer}
    debited = {p.account_id for p in postings if p.minutes < 0} & guarded
    balances = {account_id: balance(session, account_id) for account_id in debited}
    short = overdrawn(balances, [p for p in postings if p.account_id in debited], debited)
    if short:
        raise Invalid(
            "timebank.balance.insufficient",
            "时间余额不足 (not enough hours in the account)",
            balance_minutes=balances[short[0]],
        )
    transaction = TimebankTransaction(
        kind=kind, idempotency_key=key, source_type=source_type, source_id=source_id,
        memo=memo[:200] if memo else None, posted_at=now, posted_by=by[:64],
    )  # fmt: skip
    try:
        _insert_once(
            session, [transaction], conflict=("timebank.key.concurrent", "同一笔记账正在处理，请重试 (retry)")
        )
    except IntegrityError:
        # The same key posted at the same moment by another transaction: the first one stands.
        replayed = _replay(session, kind, key, postings)
        if replayed is None:
            raise
        return replayed
    session.add_all(
        TimebankEntry(
            transaction_id=transaction.id, account_id=p.account_id, minutes=p.minutes, posted_at=now
        )
        for p in postings
    )
    session.flush()
    return Posted(transaction, replayed=False)


def _replay(session: Session, kind: TransactionKind, key: str, postings: Sequence[Posting]) -> Posted | None:
    earlier = session.scalar(select(TimebankTransaction).where(TimebankTransaction.idempotency_key == key))
    if earlier is None:
        return None
    entries = session.execute(
        select(TimebankEntry.account_id, TimebankEntry.minutes).where(
            TimebankEntry.transaction_id == earlier.id
        )
    ).all()
    if earlier.kind != kind or sorted(entries) != sorted((p.account_id, p.minutes) for p in postings):
        raise Conflict(
            "timebank.key.reused",
            "该幂等键已用于另一笔记账 (this idempotency key was used for a different posting)",
        )
    return Posted(earlier, replayed=True)


# -- the four kinds of posting -------------------------------------------------------------------


def earn(
    session: Session,
    volunteer_user_id: int,
    minutes: int,
    *,
    source_type: str,
    source_id: int,
    now: dt.datetime,
    by: str,
) -> Posted:
    """Hours earned for a service: issued to the volunteer, once per source."""
    account = account_of(session, volunteer_user_id, now)
    issuance = system_account(session, AccountKind.issuance, now)
    return post(
        session, TransactionKind.earn, f"earn:{source_type}:{source_id}",
        [Posting(issuance.id, -minutes), Posting(account.id, minutes)],
        source_type=source_type, source_id=source_id, now=now, by=by,
    )  # fmt: skip


def spend(
    session: Session, actor: Actor, minutes: int, key: str, memo: str | None, now: dt.datetime
) -> Posted:
    """A volunteer redeems hours for a service for themselves or their family."""
    account = own_account(session, actor, now)
    redeemed = system_account(session, AccountKind.redeemed, now)
    return post(
        session, TransactionKind.spend, f"spend:{account.id}:{key}",
        [Posting(account.id, -minutes), Posting(redeemed.id, minutes)],
        source_type="request", source_id=None, now=now, by=actor.username, memo=memo,
    )  # fmt: skip


def donate(
    session: Session, actor: Actor, minutes: int, key: str, to_user_id: int | None, now: dt.datetime
) -> Posted:
    """A volunteer gives hours to the community pool (公益池) or to another volunteer."""
    account = own_account(session, actor, now)
    if to_user_id is None:
        target = system_account(session, AccountKind.pool, now)
    else:
        if to_user_id == actor.user_id or not is_volunteer(session, to_user_id):
            raise Invalid(
                "timebank.donate.target",
                "只能捐赠给其他志愿者或公益池 (donate to another volunteer or the pool)",
            )
        target = account_of(session, to_user_id, now)
    return post(
        session, TransactionKind.donate, f"donate:{account.id}:{key}",
        [Posting(account.id, -minutes), Posting(target.id, minutes)],
        source_type="request", source_id=None, now=now, by=actor.username,
    )  # fmt: skip


def expire(session: Session, now: dt.datetime, validity_days: int | None = None) -> int:
    """The timed job: hours older than the validity (days; the district's,
    ``configured_validity_days()``, when not given) lapse, oldest first. Returns minutes expired.

    One aggregate over all volunteer accounts finds those holding old hours; each of those is then
    locked and worked out again (a spend may have landed in between) before posting. Running it
    again expires nothing more: what it posted counts as debited the next time. The key names the
    newest lot it expired, so two runs at once over the same state post once.
    """
    if validity_days is None:
        validity_days = configured_validity_days()
    cutoff = now - dt.timedelta(days=validity_days)
    sink = system_account(session, AccountKind.expired, now)
    total = 0
    for account_id, old, debited, _newest in _expiry_totals(session, cutoff):
        if expiring_from_totals(old, debited) <= 0:
            continue
        session.scalars(
            select(TimebankAccount.id).where(TimebankAccount.id == account_id).with_for_update()
        ).one()
        _, old, debited, newest_lot = _expiry_totals(session, cutoff, account_id)[0]
        minutes = expiring_from_totals(old, debited)
        if minutes <= 0:
            continue
        posted = post(
            session, TransactionKind.expire, f"expire:{account_id}:{newest_lot}",
            [Posting(account_id, -minutes), Posting(sink.id, minutes)],
            source_type="expiry", source_id=newest_lot, now=now, by="system:timebank-expiry",
            memo=f"validity {validity_days} days",
        )  # fmt: skip
        if not posted.replayed:
            total += minutes
    return total


def _expiry_totals(
    session: Session, cutoff: dt.datetime, account_id: int | None = None
) -> list[tuple[int, int, int, int]]:
    """Per volunteer account holding lots older than the cutoff: (account, minutes credited before
    the cutoff, minutes ever debited, the newest such lot's entry id)."""
    old_credit = (TimebankEntry.minutes > 0) & (TimebankEntry.posted_at < cutoff)
    old = func.sum(case((old_credit, TimebankEntry.minutes), else_=0))
    debited = func.sum(case((TimebankEntry.minutes < 0, -TimebankEntry.minutes), else_=0))
    newest = func.max(case((old_credit, TimebankEntry.id)))
    query = (
        select(TimebankEntry.account_id, old, debited, newest)
        .join(TimebankAccount, TimebankAccount.id == TimebankEntry.account_id)
        .where(TimebankAccount.kind == AccountKind.volunteer)
        .group_by(TimebankEntry.account_id)
        .having(newest.is_not(None))
        .order_by(TimebankEntry.account_id)
    )
    if account_id is not None:
        query = query.where(TimebankEntry.account_id == account_id)
    return [(a, int(o), int(d), int(n)) for a, o, d, n in session.execute(query).all()]


def as_volunteer(actor: Actor) -> Actor:
    """The actor holding only their volunteer role, or ``Forbidden``: a volunteer's own hours and
    pairings, where consent to volunteers decides what is shown, not another role the person holds."""
    volunteer = actor.acting_as((Role.volunteer,))
    if volunteer.user_id is None or not volunteer.grants:
        raise Forbidden("timebank.not_volunteer", "只有志愿者有时间账户 (only volunteers hold time accounts)")
    return volunteer


def own_account(session: Session, actor: Actor, now: dt.datetime) -> TimebankAccount:
    volunteer = as_volunteer(actor)
    assert volunteer.user_id is not None
    return account_of(session, volunteer.user_id, now)


# -- statements ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementLine:
    transaction_id: int
    kind: TransactionKind
    minutes: int
    posted_at: dt.datetime
    source_type: str
    source_id: int | None
    memo: str | None


def statement(session: Session, account_id: int, limit: int = 100, offset: int = 0) -> list[StatementLine]:
    rows = session.execute(
        select(TimebankEntry, TimebankTransaction)
        .join(TimebankTransaction, TimebankTransaction.id == TimebankEntry.transaction_id)
        .where(TimebankEntry.account_id == account_id)
        .order_by(TimebankEntry.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [
        StatementLine(
            t.id, TransactionKind(t.kind), e.minutes, e.posted_at, t.source_type, t.source_id, t.memo
        )
        for e, t in rows
    ]


@dataclass(frozen=True, slots=True)
class HoursSummary:
    balance: int
    earned: int
    spent: int
    donated: int
    expired: int
    received: int  # donations from other volunteers


def hours_summary(session: Session, account_id: int) -> HoursSummary:
    incoming = (TimebankEntry.minutes > 0).label("incoming")
    rows = session.execute(
        select(TimebankTransaction.kind, incoming, func.sum(TimebankEntry.minutes))
        .join(TimebankTransaction, TimebankTransaction.id == TimebankEntry.transaction_id)
        .where(TimebankEntry.account_id == account_id)
        .group_by(TimebankTransaction.kind, incoming)
    ).all()
    sums = dict.fromkeys(TransactionKind, 0)
    received = 0
    for kind, is_incoming, minutes in rows:
        if TransactionKind(kind) is TransactionKind.donate and is_incoming:
            received += int(minutes)
        else:
            sums[TransactionKind(kind)] += abs(int(minutes))
    return HoursSummary(
        balance=balance(session, account_id),
        earned=sums[TransactionKind.earn],
        spent=sums[TransactionKind.spend],
        donated=sums[TransactionKind.donate],
        expired=sums[TransactionKind.expire],
        received=received,
    )


# -- reactions ---------------------------------------------------------------------------------------


def on_service_order_completed(session: Session, event: events.ServiceOrderCompleted) -> None:
    """A volunteer's completed order earns its time on site, once, whatever replays the event.

    Hours are earned serving others: a volunteer who is the resident served (a resident who also
    volunteers, offered their own order) earns nothing, or anyone could order for themselves and
    credit their own account; nor does one who is the elder's family (authorised, or of the
    household), as family care is not time-bank service."""
    if event.volunteer_user_id is None or event.minutes <= 0:
        return
    family = family_of(event.resident_id, event.completed_at)
    if session.scalar(select(exists().where(User.id == event.volunteer_user_id, User.id.in_(family)))):
        return
    earn(
        session, event.volunteer_user_id, event.minutes, source_type="service_order", source_id=event.order_id,
        now=event.completed_at, by="system:orders",
    )  # fmt: skip
