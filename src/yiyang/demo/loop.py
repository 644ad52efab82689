"""The demo's care loop: a family-doctor team with contracts, a day of home sensing, the alerts it
raises, and the care work that follows, all through the real services.

``set_up_team`` signs one community's residents with one team and gives the demo user a place in
it; ``sense_a_day`` runs the simulator in-process for the last 24 hours of some of those homes
(alert rules on, so a fall becomes an alert and the alert a home visit); ``run_jobs`` runs the
alert sweep and escalation once and the care day job; ``summarise`` counts what came of it.
Each function owns its units of work, as a command does.
"""

from __future__ import annotations

import collections
import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yiyang.access import service as access
from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.models import RelationshipKind, ResidentRelationship, RoleMembership
from yiyang.access.roles import Role
from yiyang.care import contracts
from yiyang.care.models import OPEN_STATUSES, CareContract, CareTeam, ContractStatus, WorkItem, WorkStatus
from yiyang.care.packages import DIABETES, HYPERTENSION
from yiyang.db import Database, china_day
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind
from yiyang.residents.identity import age_on
from yiyang.residents.models import Condition, Resident, ResidentStatus

Progress = Callable[[int, int], None]  # (done, total)

DEMO_USER = "demo"
GRID_WORKER = "grid_demo"
PANEL_LIMIT = 800  # a team's contracted panel in the demo (configurable per team in care)
# Contracts take effect on days spread over this many days before today, as if the team had been
# signing for that long; the care day job then runs for each of those days, so first visits fall
# due, some are done late and some escalate (to the lead after 7 days, the centre after 21).
SIGNING_SPAN_DAYS = 70
# The day job catches up on those weeks once a week rather than daily (the same work, a tenth of
# the runs): work for a contract starting mid-week is created at the next run.
CATCH_UP_EVERY_DAYS = 7
ELDERLY_AGE = 65  # 国家基本公共卫生服务规范（第三版）老年人健康管理: 65 and over


# ---- pure choices --------------------------------------------------------------------------------


def packages_for(age: int | None, condition_codes: Sequence[str]) -> list[str]:
    """The packages a resident signs: the older people's package from 65, the chronic disease
    package with hypertension or type 2 diabetes, else the basic package."""
    packages = []
    if age is not None and age >= ELDERLY_AGE:
        packages.append("elderly")
    if any(code.startswith(HYPERTENSION + DIABETES) for code in condition_codes):
        packages.append("chronic")
    return packages or ["basic"]


def signing_offsets(count: int, span_days: int = SIGNING_SPAN_DAYS) -> list[int]:
    """Days before today each of ``count`` contracts took effect: spread evenly, oldest first."""
    if count <= 0:
        return []
    return [span_days - 1 - (index * span_days) // count for index in range(count)]


# ---- 1. the team and its contracts ---------------------------------------------------------------


@dataclass
class TeamSetUp:
    team_id: int
    team_name: str
    community_id: int
    community_name: str
    grid_id: int | None
    resident_ids: list[int]  # the team's panel in this community (contracts in force)
    grid_resident_ids: list[int] = field(default_factory=list)  # of them, those in the grid worker's grid
    signed: int = 0  # new contracts this run
    first_day: dt.date | None = None  # the earliest day a contract took effect
    grid_worker_password: str | None = None  # shown once, when the user is created


def _health_centre(session: Session) -> Organisation | None:
    return session.scalar(
        select(Organisation)
        .where(Organisation.kind == OrganisationKind.health_centre)
        .order_by(Organisation.code)
        .limit(1)
    )


def _largest_community(session: Session, area: Area) -> Area | None:
    """The community with the most residents in the centre's area (the area itself if it is one)."""
    if area.level is AreaLevel.community:
        return area
    living = (
        select(Resident.community_id, func.count().label("n"))
        .where(Resident.status == ResidentStatus.active, Resident.merged_into_id.is_(None))
        .group_by(Resident.community_id)
        .subquery()
    )
    return session.scalar(
        select(Area)
        .join(living, living.c.community_id == Area.id)
        .where(Area.level == AreaLevel.community, Area.path.startswith(area.path + "/"))
        .order_by(living.c.n.desc(), Area.code)
        .limit(1)
    )


def _team_of(session: Session, code: str) -> CareTeam | None:
    return session.scalar(
        select(CareTeam)
        .join(Organisation, Organisation.id == CareTeam.organisation_id)
        .where(Organisation.code == code)
    )


def _grant_once(session: Session, user: access.User, role: Role, **where: int) -> None:
    held = session.scalar(
        select(RoleMembership.id).where(
            RoleMembership.user_id == user.id,
            RoleMembership.role == role,
            RoleMembership.revoked_at.is_(None),
            *(getattr(RoleMembership, column) == value for column, value in where.items()),
        )
    )
    if held is None:
        access.grant_role(session, user, role, **where)


def set_up_team(
    database: Database, *, now: dt.datetime, panel_limit: int = PANEL_LIMIT, progress: Progress | None = None
) -> TeamSetUp | None:
    """One family-doctor team under the first health centre, its contracts with the residents of
    the centre's largest community (up to the panel limit), the demo user as its doctor and lead,
    and a grid worker for the community's first grid. Returns None without a centre or a
    community with residents. Running it again signs only who is not yet under contract."""
    with database.unit_of_work() as session:
        demo = access.find_user(session, DEMO_USER)
        centre = _health_centre(session)
        area = session.get(Area, centre.area_id) if centre is not None else None
        community = _largest_community(session, area) if area is not None else None
        if demo is None or centre is None or community is None:
            return None
        code = f"FDT-{community.code}"[:40]
        team = _team_of(session, code)
        if team is None:
            admin = access.load_actor(session, demo.id, now)
            team = contracts.create_team(
                session, admin, code=code, name=f"{community.name}家庭医生团队", health_centre_id=centre.id,
                panel_limit=panel_limit, lead_user_id=demo.id, now=now,
            )  # fmt: skip
        team_id = team.organisation_id
        team_name = session.get(Organisation, team_id).name  # type: ignore[union-attr]
        _grant_once(session, demo, Role.family_doctor, organisation_id=team_id)
        grid = session.scalar(
            select(Area)
            .where(Area.level == AreaLevel.grid, Area.parent_id == community.id)
            .order_by(Area.code)
            .limit(1)
        )
        password = None
        if grid is not None and access.find_user(session, GRID_WORKER) is None:
            password = secrets.token_urlsafe(9)
            worker = access.create_user(
                session, GRID_WORKER, password=password, display_name="网格员 grid worker"
            )
            access.grant_role(session, worker, Role.grid_worker, area_id=grid.id)
        setup = TeamSetUp(team_id, team_name, community.id, community.name, grid.id if grid else None, [])
        setup.grid_worker_password = password
        room = max(0, team.panel_limit - contracts.panel_size(session, team_id))
        under_contract = select(CareContract.resident_id).where(
            CareContract.status == ContractStatus.in_force
        )
        wanted = list(
            session.scalars(
                select(Resident.id)
                .where(
                    Resident.community_id == community.id,
                    Resident.status == ResidentStatus.active,
                    Resident.merged_into_id.is_(None),
                    Resident.id.not_in(under_contract),
                )
                .order_by(Resident.id)
                .limit(room)
            )
        )
        codes: dict[int, list[str]] = collections.defaultdict(list)
        births: dict[int, dt.date | None] = {}
        for begin in range(0, len(wanted), 500):
            chunk = wanted[begin : begin + 500]
            for resident_id, condition in session.execute(
                select(Condition.resident_id, Condition.code).where(Condition.resident_id.in_(chunk))
            ):
                codes[resident_id].append(condition)
            births.update(
                session.execute(select(Resident.id, Resident.birth_date).where(Resident.id.in_(chunk))).all()
            )  # type: ignore[arg-type]
        # The paper contracts are entered by the demo command: a system actor (audited, not scoped)
        # that stands for the team in the care domain's team check; the demo user is the doctor.
        clerk = Actor(
            user_id=None,
            username="system:demo",
            grants=(RoleGrant(Role.family_doctor, organisation_id=team_id),),
        )
        today = china_day(now)
        for index, (resident_id, days_back) in enumerate(
            zip(wanted, signing_offsets(len(wanted)), strict=True)
        ):
            born = births.get(resident_id)
            contracts.sign_contract(
                session, clerk, resident_id=resident_id, team_id=team_id,
                packages=packages_for(age_on(born, today) if born else None, codes[resident_id]),
                valid_from=today - dt.timedelta(days=days_back), doctor_user_id=demo.id, now=now,
            )  # fmt: skip
            if progress is not None and (index + 1) % 50 == 0:
                progress(index + 1, len(wanted))
        if progress is not None:
            progress(len(wanted), len(wanted))
        setup.signed = len(wanted)
        setup.resident_ids = list(
            session.scalars(
                select(CareContract.resident_id)
                .where(CareContract.team_id == team_id, CareContract.status == ContractStatus.in_force)
                .order_by(CareContract.resident_id)
            )
        )
        if grid is not None:
            setup.grid_resident_ids = list(
                session.scalars(
                    select(Resident.id).where(
                        Resident.id.in_(setup.resident_ids), Resident.grid_id == grid.id
                    )
                )
            )
        setup.first_day = session.scalar(
            select(func.min(CareContract.valid_from)).where(
                CareContract.team_id == team_id, CareContract.status == ContractStatus.in_force
            )
        )
        return setup


# ---- 2. a day of home sensing --------------------------------------------------------------------


@dataclass
class Sensing:
    homes: int = 0
    devices: int = 0
    injected: int = 0
    messages: int = 0
    stored: int = 0
    wall_s: float = 0.0


def sense_a_day(
    database: Database, resident_ids: Sequence[int], *, homes: int, seed: int, inject: float, now: dt.datetime,
    prefer: Sequence[int] = (), progress: Progress | None = None,
) -> Sensing:  # fmt: skip
    """``yiyang simulate --via inprocess`` for the last 24 hours of ``homes`` of these residents'
    homes, the alert rules on: the ingest worker's parse, store and rules, batch by batch."""
    from yiyang.alerts.engine import make_rules
    from yiyang.devices import simulate, simulate_feed
    from yiyang.devices.ingest import IngestSettings

    result = Sensing()
    if homes <= 0 or not resident_ids:
        return result
    start = now - dt.timedelta(hours=24)
    preferred = sorted(set(prefer) & set(resident_ids))
    others = sorted(set(resident_ids) - set(preferred))
    with database.unit_of_work() as session:
        # Up to half the homes from the preferred residents (the grid worker's grid), so that
        # some alerts become the grid worker's visits and the rest the team's.
        chosen = simulate_feed.select_homes(session, min(len(preferred), homes // 2), seed, among=preferred)
        chosen += simulate_feed.select_homes(session, homes - len(chosen), seed, among=others)
        chosen.sort(key=lambda home: home.key)
    scenario = simulate.build_scenario(
        chosen, start, now, seed, rates=simulate.InjectionRates().scaled(inject)
    )
    with database.unit_of_work() as session:
        simulate_feed.provision(session, chosen, scenario.devices, start - dt.timedelta(days=1), now)
    ingest = IngestSettings()
    sink = simulate_feed.PipelineSink(database, ingest.topic_root, limits=ingest.limits(), rules=make_rules())
    span = scenario.end - scenario.start
    stats = simulate_feed.run(
        scenario,
        sink,
        progress=(lambda done, _messages: progress(int(done), span)) if progress is not None else None,
    )
    result.homes, result.devices, result.injected = (
        len(chosen),
        len(scenario.devices),
        len(scenario.injections),
    )
    result.messages = stats.messages
    result.stored = sink.outcome.stored + sink.outcome.events
    result.wall_s = round(stats.wall_s, 1)
    return result


# ---- 3. the timed jobs ---------------------------------------------------------------------------


@dataclass
class Jobs:
    absences_raised: int = 0
    escalation_steps: int = 0
    care_days: int = 0
    work_created: int = 0
    escalated_to_lead: int = 0
    escalated_to_centre: int = 0


def catch_up_days(days_back: int, every_days: int = CATCH_UP_EVERY_DAYS) -> list[int]:
    """Days before today the care day job runs on: from the first contract day every
    ``every_days``, and today."""
    return [*range(max(0, days_back), 0, -max(1, every_days)), 0]


def run_jobs(
    database: Database, *, first_day: dt.date | None, now: dt.datetime, progress: Progress | None = None
) -> Jobs:
    """The alert sweep (absence clocks that ran out) and escalation once, then the care day job
    as of every week since the first contract took effect, and today."""
    from yiyang.alerts.engine import escalation_job, sweep_job
    from yiyang.care.day import run_care_day

    jobs = Jobs()
    jobs.absences_raised = sweep_job(database, now)["raised"]
    jobs.escalation_steps = escalation_job(database, now)["steps"]
    days = catch_up_days((china_day(now) - first_day).days if first_day is not None else 0)
    for index, back in enumerate(days):
        report = run_care_day(database, now - dt.timedelta(days=back))
        jobs.care_days += 1
        jobs.work_created += report.created
        jobs.escalated_to_lead += report.escalated_to_lead
        jobs.escalated_to_centre += report.escalated_to_centre
        if progress is not None:
            progress(index + 1, len(days))
    return jobs


# ---- 4. what came of it --------------------------------------------------------------------------


@dataclass
class LoopSummary:
    contracts: int = 0
    relationships: int = 0
    alerts_by_kind: dict[str, int] = field(default_factory=dict)
    alerts_by_state: dict[str, int] = field(default_factory=dict)
    work_by_kind: dict[str, int] = field(default_factory=dict)  # open work
    work_by_status: dict[str, int] = field(default_factory=dict)  # open work
    escalated: int = 0  # open work escalated to the lead or the centre
    grid_worker_visits: int = 0  # open home visits owned by the grid worker


def summarise(database: Database, team_id: int, now: dt.datetime) -> LoopSummary:
    summary = LoopSummary()
    with database.unit_of_work() as session:
        from yiyang.alerts.models import Alert

        summary.contracts = (
            session.scalar(
                select(func.count())
                .select_from(CareContract)
                .where(CareContract.team_id == team_id, CareContract.status == ContractStatus.in_force)
            )
            or 0
        )
        summary.relationships = (
            session.scalar(
                select(func.count())
                .select_from(ResidentRelationship)
                .where(
                    ResidentRelationship.organisation_id == team_id,
                    ResidentRelationship.kind == RelationshipKind.contract,
                    ResidentRelationship.valid_from <= now,
                    ResidentRelationship.ended_at.is_(None),
                )
            )
            or 0
        )
        summary.alerts_by_kind = dict(
            session.execute(select(Alert.kind, func.count()).group_by(Alert.kind).order_by(Alert.kind)).all()  # type: ignore[arg-type]
        )
        summary.alerts_by_state = {
            str(getattr(state, "value", state)): count
            for state, count in session.execute(select(Alert.state, func.count()).group_by(Alert.state))
        }
        open_work = WorkItem.status.in_(OPEN_STATUSES)
        summary.work_by_kind = {
            str(getattr(kind, "value", kind)): count
            for kind, count in session.execute(
                select(WorkItem.kind, func.count())
                .where(open_work)
                .group_by(WorkItem.kind)
                .order_by(WorkItem.kind)
            )
        }
        summary.work_by_status = {
            str(getattr(status, "value", status)): count
            for status, count in session.execute(
                select(WorkItem.status, func.count()).where(open_work).group_by(WorkItem.status)
            )
        }
        summary.escalated = (
            session.scalar(
                select(func.count())
                .select_from(WorkItem)
                .where(WorkItem.status == WorkStatus.overdue, WorkItem.escalation_level > 0)
            )
            or 0
        )
        worker = access.find_user(session, GRID_WORKER)
        if worker is not None:
            summary.grid_worker_visits = (
                session.scalar(
                    select(func.count())
                    .select_from(WorkItem)
                    .where(open_work, WorkItem.owner_user_id == worker.id)
                )
                or 0
            )
    return summary
