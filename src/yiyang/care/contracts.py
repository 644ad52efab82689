"""Family-doctor teams and contracts (家庭医生签约): sign, renew, terminate, expire, group signing.

A contract in force is mirrored by a ``resident_relationship`` row (kind contract, organisation
= the team, source ``care_contract``/id); ending the contract ends the row, so the team's scope
follows its contracts. Services never commit: the request or job that owns the unit of work does.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from yiyang.access.actor import Actor
from yiyang.access.models import RelationshipKind, ResidentRelationship, User
from yiyang.access.policy import DataCategory, authorize
from yiyang.access.roles import CLINICAL_TEAM_ROLES
from yiyang.care.models import (
    OPEN_STATUSES,
    CareContract,
    CareHistory,
    CareTeam,
    ContractStatus,
    GroupContract,
    WorkItem,
    WorkStatus,
)
from yiyang.care.packages import unknown_packages
from yiyang.care.relationships import granting
from yiyang.db import CHINA_TZ, china_day
from yiyang.errors import Conflict, Forbidden, Invalid, NotFound
from yiyang.geo.models import Organisation, OrganisationKind
from yiyang.residents.service import get_active_resident

SOURCE_TYPE = "care_contract"
TEAM_ROLES = tuple(sorted(CLINICAL_TEAM_ROLES))
# How far from the day it is signed (or renewed) a contract may start, either way: paper contracts
# entered late, or a renewal made in the old contract's last year. Beyond it a date is a mistake.
CONTRACT_START_REACH = dt.timedelta(days=366)
# The partial unique index behind "one contract in force per resident" (models.CareContract).
IN_FORCE_INDEX = "uq_care_contract_resident_in_force"


def by_of(actor: Actor) -> str:
    return actor.username[:64]


def history(
    session: Session, subject_type: str, subject_id: int, action: str, *, at: dt.datetime, by: str,
    from_status: str | None = None, to_status: str | None = None, note: str | None = None,
) -> None:  # fmt: skip
    session.add(
        CareHistory(
            subject_type=subject_type,
            subject_id=subject_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            at=at,
            by=by[:64],
            note=note[:200] if note else None,
        )  # fmt: skip
    )


def history_of(session: Session, subject_type: str, subject_id: int) -> Sequence[CareHistory]:
    return (
        session.execute(
            select(CareHistory)
            .where(CareHistory.subject_type == subject_type, CareHistory.subject_id == subject_id)
            .order_by(CareHistory.at, CareHistory.id)
        )
        .scalars()
        .all()
    )


# -- teams ----------------------------------------------------------------------------------------


def _check_user(session: Session, user_id: int | None) -> None:
    if user_id is not None and session.get(User, user_id) is None:
        raise NotFound("care.user.not_found", "未找到该用户 (user not found)", user_id=user_id)


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("care.admin_only", "仅管理员可操作 (administrators only)")


def team_member(actor: Actor, team_id: int) -> bool:
    return any(g.organisation_id == team_id for role in TEAM_ROLES for g in actor.grants_for(role))


def require_team_member(actor: Actor, team_id: int) -> None:
    if not (actor.is_admin or team_member(actor, team_id)):
        raise Forbidden(
            "care.team_role", "仅该家庭医生团队成员可操作 (members of this family-doctor team only)"
        )


def create_team(
    session: Session, actor: Actor, *, code: str, name: str, health_centre_id: int, panel_limit: int,
    lead_user_id: int | None = None, specialists: list[dict] | None = None, now: dt.datetime,
) -> CareTeam:  # fmt: skip
    """A team is an organisation of kind family_doctor_team under its health centre's area."""
    require_admin(actor)
    centre = session.get(Organisation, health_centre_id)
    if centre is None or centre.kind is not OrganisationKind.health_centre:
        raise Invalid(
            "care.team.centre", "所属机构须为社区卫生服务中心 (the team must belong to a health centre)"
        )
    _check_user(session, lead_user_id)
    if session.scalar(select(Organisation.id).where(Organisation.code == code)) is not None:
        raise Conflict("care.team.code", "机构编码已存在 (an organisation with this code exists)")
    org = Organisation(code=code, name=name, kind=OrganisationKind.family_doctor_team, area_id=centre.area_id)
    session.add(org)
    session.flush()
    team = CareTeam(
        organisation_id=org.id, health_centre_id=centre.id, panel_limit=panel_limit,
        lead_user_id=lead_user_id, specialists=specialists or [], created_at=now,
    )  # fmt: skip
    session.add(team)
    session.flush()
    return team


def get_team(session: Session, team_id: int) -> CareTeam:
    team = session.get(CareTeam, team_id)
    if team is None:
        raise NotFound(
            "care.team.not_found", "未找到该家庭医生团队 (family-doctor team not found)", team_id=team_id
        )
    return team


def panel_size(session: Session, team_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(CareContract)
            .where(CareContract.team_id == team_id, CareContract.status == ContractStatus.in_force)
        )
        or 0
    )


def _check_panel(session: Session, team: CareTeam, adding: int) -> None:
    size = panel_size(session, team.organisation_id)
    if size + adding > team.panel_limit:
        raise Conflict(
            "care.panel_full", "团队签约人数已达上限 (the team's panel is full)",
            panel_limit=team.panel_limit, panel_size=size, adding=adding,
        )  # fmt: skip


# -- contracts ------------------------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), CHINA_TZ).astimezone(dt.UTC)


def _check_packages(packages: list[str]) -> None:
    if not packages:
        raise Invalid("care.contract.packages", "请选择至少一个服务包 (choose at least one package)")
    unknown = unknown_packages(packages)
    if unknown:
        raise Invalid(
            "care.contract.package_unknown", "未知的服务包 (unknown service package)", packages=unknown
        )


def _check_start(start: dt.date, today: dt.date) -> None:
    earliest, latest = today - CONTRACT_START_REACH, today + CONTRACT_START_REACH
    if not earliest <= start <= latest:
        raise Invalid(
            "care.contract.valid_from", "签约生效日须在今天前后一年内 (a contract must start within a year of today)",
            earliest=earliest.isoformat(), latest=latest.isoformat(),
        )  # fmt: skip


def _already_in_force() -> Conflict:
    return Conflict(
        "care.contract.exists", "该居民已有生效中的签约 (this resident already has a contract in force)"
    )


@contextmanager
def one_in_force() -> Iterator[None]:
    """The database's answer to a second contract in force, as the check in Python answers it.

    Two signings of one resident (two teams at once on PostgreSQL) both pass ``contract_in_force``;
    the unique index refuses the second write. Run the write in a savepoint inside this, so the
    refusal rolls back only the savepoint and the caller's transaction goes on.
    """
    try:
        yield
    except IntegrityError as error:
        # PostgreSQL names the index; SQLite names the index's column
        if IN_FORCE_INDEX in str(error.orig) or "care_contract.resident_id" in str(error.orig):
            raise _already_in_force() from error
        raise


def contract_in_force(session: Session, resident_id: int) -> CareContract | None:
    return session.scalar(
        select(CareContract).where(
            CareContract.resident_id == resident_id, CareContract.status == ContractStatus.in_force
        )
    )


def teams_in_force(session: Session, resident_ids: Sequence[int]) -> dict[int, int]:
    """Resident -> the family-doctor team of their contract in force (the earliest signed, when
    there are several)."""
    if not resident_ids:
        return {}
    rows = session.execute(
        select(CareContract.resident_id, CareContract.team_id)
        .where(
            CareContract.resident_id.in_(sorted(set(resident_ids))),
            CareContract.status == ContractStatus.in_force,
        )
        .order_by(CareContract.id)
    )
    found: dict[int, int] = {}
    for resident_id, team_id in rows:
        found.setdefault(resident_id, team_id)
    return found


def _write_contract(
    session: Session, *, resident_id: int, team_id: int, packages: list[str], valid_from: dt.date,
    months: int, by: str, now: dt.datetime, doctor_user_id: int | None = None,
    group_contract_id: int | None = None, renewed_from_id: int | None = None,
) -> CareContract:  # fmt: skip
    contract = CareContract(
        resident_id=resident_id, team_id=team_id, doctor_user_id=doctor_user_id, group_contract_id=group_contract_id,
        packages=list(packages), status=ContractStatus.in_force, valid_from=valid_from,
        valid_until=add_months(valid_from, months) - dt.timedelta(days=1), renewed_from_id=renewed_from_id,
        signed_by=by, signed_at=now,
    )  # fmt: skip
    session.add(contract)
    session.flush()
    session.add(
        ResidentRelationship(
            resident_id=resident_id,
            kind=RelationshipKind.contract,
            organisation_id=team_id,
            valid_from=_start_of(valid_from),
            valid_until=_start_of(contract.valid_until + dt.timedelta(days=1)),
            source_type=SOURCE_TYPE,
            source_id=contract.id,
            created_at=now,
        )  # fmt: skip
    )
    history(session, "contract", contract.id, "renewed" if renewed_from_id else "signed", at=now, by=by,
            to_status=ContractStatus.in_force.value)  # fmt: skip
    return contract


def sign_contract(
    session: Session, actor: Actor, *, resident_id: int, team_id: int, packages: list[str],
    valid_from: dt.date | None = None, months: int = 12, doctor_user_id: int | None = None, now: dt.datetime,
) -> CareContract:  # fmt: skip
    """签约: one resident with one team; the panel limit holds; one contract in force at a time."""
    team = get_team(session, team_id)
    require_team_member(actor, team_id)  # what entitles the actor to sign: a member of the team
    get_active_resident(session, resident_id)
    _check_packages(packages)
    _check_user(session, doctor_user_id)
    start = valid_from or china_day(now)
    _check_start(start, china_day(now))
    if contract_in_force(session, resident_id) is not None:
        raise _already_in_force()
    _check_panel(session, team, 1)
    # The contract is what gives the team scope: authorize under it, or write nothing. The
    # savepoint of ``granting`` is also what a concurrent signing's refusal rolls back.
    with one_in_force():
        return granting(
            session, actor, resident_id,
            lambda: _write_contract(
                session, resident_id=resident_id, team_id=team_id, packages=packages, valid_from=start,
                months=months, by=by_of(actor), now=now, doctor_user_id=doctor_user_id,
            ),
            category=DataCategory.care_services, what="care_contract", action="create", now=now,
        )  # fmt: skip


def get_contract(session: Session, contract_id: int) -> CareContract:
    contract = session.get(CareContract, contract_id)
    if contract is None:
        raise NotFound(
            "care.contract.not_found", "未找到该签约 (contract not found)", contract_id=contract_id
        )
    return contract


def read_contract(session: Session, actor: Actor, contract_id: int, now: dt.datetime) -> CareContract:
    contract = get_contract(session, contract_id)
    authorize(
        session,
        actor,
        contract.resident_id,
        category=DataCategory.care_services,
        what="care_contract",
        now=now,
    )
    return contract


def contracts_of(
    session: Session, actor: Actor, resident_id: int, now: dt.datetime
) -> Sequence[CareContract]:
    authorize(session, actor, resident_id, category=DataCategory.care_services, what="care_contract", now=now)
    return (
        session.execute(
            select(CareContract)
            .where(CareContract.resident_id == resident_id)
            .order_by(CareContract.id.desc())
        )
        .scalars()
        .all()
    )


def end_relationship(session: Session, contract_ids: Sequence[int], at: dt.datetime) -> None:
    """End the contracts' relationship rows at ``at``: rows still open, and rows set to end later
    (an early renewal's old row runs until the new contract starts)."""
    session.execute(
        update(ResidentRelationship)
        .where(
            ResidentRelationship.source_type == SOURCE_TYPE,
            ResidentRelationship.source_id.in_(contract_ids),
            or_(ResidentRelationship.ended_at.is_(None), ResidentRelationship.ended_at > at),
        )
        .values(ended_at=at)
    )


def _cancel_team_work(
    session: Session, ending: ColumnElement[bool], contract: type[CareContract], *, now: dt.datetime, by: str,
    note: str, synchronize: bool,
) -> None:  # fmt: skip
    """Cancel the open work the ending contracts' teams own for their residents (set-based).

    The team no longer reaches the resident, so it can neither see nor close that work; left open it
    would go overdue and escalate for ever, and block the day job from raising the programme's work
    for a team the resident signs with next (it skips a programme with open work).
    ``ending`` is a condition on ``contract`` (an alias of ``CareContract``).
    """
    owned = and_(
        WorkItem.status.in_([s.value for s in OPEN_STATUSES]),
        exists().where(
            contract.resident_id == WorkItem.resident_id, contract.team_id == WorkItem.owner_organisation_id, ending
        ),
    )  # fmt: skip
    session.execute(
        insert(CareHistory).from_select(
            ["subject_type", "subject_id", "action", "from_status", "to_status", "at", "by", "note"],
            select(
                literal("work_item"),
                WorkItem.id,
                literal("cancelled"),
                WorkItem.status,
                literal(WorkStatus.cancelled.value),
                literal(now, CareHistory.at.type),
                literal(by[:64]),
                literal(note[:200]),
            ).where(owned),
        )  # fmt: skip
    )
    session.execute(
        update(WorkItem)
        .where(owned)
        .values(status=WorkStatus.cancelled, status_changed_at=now)
        .execution_options(synchronize_session="fetch" if synchronize else False)
    )


def terminate_contract(
    session: Session, actor: Actor, contract_id: int, *, reason: str, now: dt.datetime
) -> CareContract:
    """解约: the contract ends now, and with it the team's scope over the resident."""
    contract = get_contract(session, contract_id)
    require_team_member(actor, contract.team_id)
    # A contract no longer in force gives its team no scope: say so (to the team that held it)
    # rather than refuse as out of scope.
    if contract.status is not ContractStatus.in_force:
        raise Conflict("care.contract.not_in_force", "该签约已不在履约中 (the contract is not in force)",
                       status=contract.status.value)  # fmt: skip
    authorize(session, actor, contract.resident_id, category=DataCategory.care_services, what="care_contract",
              action="update", now=now)  # fmt: skip
    contract.status = ContractStatus.terminated
    contract.ended_at = now
    contract.end_reason = reason[:200]
    # Terminating an early renewal ends the old contract's row too: it was left running until the
    # new contract's first day, and would otherwise keep the team's scope past the termination.
    ended = [contract.id] if contract.renewed_from_id is None else [contract.id, contract.renewed_from_id]
    end_relationship(session, ended, now)
    ending = aliased(CareContract)
    _cancel_team_work(session, ending.id == contract.id, ending, now=now, by=by_of(actor),
                      note="签约已解除 (contract terminated)", synchronize=True)  # fmt: skip
    history(session, "contract", contract.id, "terminated", at=now, by=by_of(actor),
            from_status=ContractStatus.in_force.value, to_status=contract.status.value, note=reason)  # fmt: skip
    session.flush()
    return contract


def renew_contract(
    session: Session, actor: Actor, contract_id: int, *, months: int = 12, packages: list[str] | None = None,
    now: dt.datetime,
) -> CareContract:  # fmt: skip
    """续约: a new contract continuing this one (from the day after it ends, or today if it has)."""
    old = get_contract(session, contract_id)
    team = get_team(session, old.team_id)
    require_team_member(actor, old.team_id)
    if old.status not in (ContractStatus.in_force, ContractStatus.expired):
        raise Conflict("care.contract.not_renewable", "仅履约中或已到期的签约可续约 (only a contract in force or expired can be renewed)",
                       status=old.status.value)  # fmt: skip
    # a record merged away is no one to continue a contract with
    get_active_resident(session, old.resident_id)
    packages = list(packages or old.packages)
    _check_packages(packages)
    today = china_day(now)
    if old.status is ContractStatus.expired:
        if contract_in_force(session, old.resident_id) is not None:
            raise _already_in_force()
        _check_panel(session, team, 1)
        start = today
    else:
        start = max(today, old.valid_until + dt.timedelta(days=1))
        _check_start(start, today)  # an early renewal: in the old contract's last year

    def renew() -> CareContract:
        previous = old.status.value
        old.status = ContractStatus.renewed
        old.ended_at = now
        # An early renewal's row runs on until the new contract starts: the team's scope never lapses.
        end_relationship(session, [old.id], max(now, _start_of(start)))
        history(session, "contract", old.id, "renewed", at=now, by=by_of(actor), from_status=previous,
                to_status=old.status.value)  # fmt: skip
        session.flush()
        return _write_contract(
            session, resident_id=old.resident_id, team_id=old.team_id, packages=packages, valid_from=start,
            months=months, by=by_of(actor), now=now, doctor_user_id=old.doctor_user_id, renewed_from_id=old.id,
        )  # fmt: skip

    # An expired contract no longer gives scope; the renewal does again: authorize under it.
    with one_in_force():
        return granting(session, actor, old.resident_id, renew, category=DataCategory.care_services,
                        what="care_contract", action="create", now=now)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GroupSigning:
    group: GroupContract
    contracts: tuple[CareContract, ...]
    skipped: tuple[int, ...]  # residents already under a contract in force


def sign_group(
    session: Session, actor: Actor, *, team_id: int, institution_id: int, resident_ids: list[int],
    packages: list[str], valid_from: dt.date | None = None, months: int = 12, now: dt.datetime,
) -> GroupSigning:  # fmt: skip
    """功能社区签约: an institution (care home, school) signs many residents at once.

    Residents already under a contract are skipped and reported; the panel limit applies to the
    whole group at once, so a group that would overflow the panel signs nobody.
    """
    team = get_team(session, team_id)
    require_team_member(actor, team_id)
    institution = session.get(Organisation, institution_id)
    if institution is None:
        raise NotFound(
            "care.institution.not_found",
            "未找到该机构 (institution not found)",
            institution_id=institution_id,
        )
    _check_packages(packages)
    start = valid_from or china_day(now)
    _check_start(start, china_day(now))
    wanted = list(dict.fromkeys(resident_ids))
    for resident_id in wanted:
        get_active_resident(session, resident_id)
    already = set(
        session.execute(
            select(CareContract.resident_id).where(
                CareContract.resident_id.in_(wanted), CareContract.status == ContractStatus.in_force
            )
        ).scalars()
    )
    signing = [r for r in wanted if r not in already]
    _check_panel(session, team, len(signing))
    # The contracts give the team its scope: every resident named is authorized under them (the
    # skipped ones are under another contract: the team must already reach them), or none is signed;
    # a resident signed by another team since the read above refuses the whole group (409).
    with one_in_force(), session.begin_nested():
        signed = _write_group(session, actor, team_id, institution_id, packages, start, months, signing, now)
        for resident_id in wanted:
            authorize(session, actor, resident_id, category=DataCategory.care_services, what="care_contract",
                      action="create", now=now)  # fmt: skip
    return GroupSigning(signed[0], signed[1], tuple(sorted(already)))


def _write_group(
    session: Session, actor: Actor, team_id: int, institution_id: int, packages: list[str], start: dt.date,
    months: int, signing: list[int], now: dt.datetime,
) -> tuple[GroupContract, tuple[CareContract, ...]]:  # fmt: skip
    group = GroupContract(
        team_id=team_id, institution_id=institution_id, packages=list(packages), valid_from=start,
        valid_until=add_months(start, months) - dt.timedelta(days=1), signed_by=by_of(actor), signed_at=now,
    )  # fmt: skip
    session.add(group)
    session.flush()
    contracts = tuple(
        _write_contract(
            session,
            resident_id=r,
            team_id=team_id,
            packages=packages,
            valid_from=start,
            months=months,
            by=by_of(actor),
            now=now,
            group_contract_id=group.id,
        )  # fmt: skip
        for r in signing
    )
    session.flush()
    return group, contracts


def expire_contracts(session: Session, now: dt.datetime, by: str = "system:care-day") -> int:
    """Contracts past their last day become expired and their relationship rows end (set-based)."""
    today = china_day(now)
    ending = (
        select(CareContract.id)
        .where(CareContract.status == ContractStatus.in_force, CareContract.valid_until < today)
        .scalar_subquery()
    )
    session.execute(
        update(ResidentRelationship)
        .where(
            ResidentRelationship.source_type == SOURCE_TYPE,
            ResidentRelationship.source_id.in_(ending),
            ResidentRelationship.ended_at.is_(None),
        )
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
    expiring = aliased(CareContract)
    _cancel_team_work(
        session, and_(expiring.status == ContractStatus.in_force, expiring.valid_until < today), expiring,
        now=now, by=by, note="签约已到期 (contract expired)", synchronize=False,
    )  # fmt: skip
    session.execute(
        insert(CareHistory).from_select(
            ["subject_type", "subject_id", "action", "from_status", "to_status", "at", "by"],
            select(
                literal("contract"),
                CareContract.id,
                literal("expired"),
                literal("in_force"),
                literal("expired"),
                literal(now, CareHistory.at.type),
                literal(by),
            ).where(CareContract.status == ContractStatus.in_force, CareContract.valid_until < today),
        )  # fmt: skip
    )
    result = session.execute(
        update(CareContract)
        .where(CareContract.status == ContractStatus.in_force, CareContract.valid_until < today)
        .values(status=ContractStatus.expired, ended_at=now, end_reason="expired")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
