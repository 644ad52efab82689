"""``yiyang demo`` step 4: contracts give a team its scope, a day of sensing raises alerts, alerts
become visits, the care day makes follow-ups overdue and escalates them; the demo user sees it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from yiyang.access import passwords
from yiyang.access.models import RelationshipKind, ResidentRelationship, RoleMembership, User
from yiyang.access.roles import Role
from yiyang.alerts.models import Alert
from yiyang.care.models import CareContract, ContractStatus, WorkItem, WorkKind, WorkStatus
from yiyang.cli import app
from yiyang.config import get_settings
from yiyang.db import Database
from yiyang.demo.commands import PAGES
from yiyang.demo.loop import GRID_WORKER, catch_up_days, packages_for, signing_offsets
from yiyang.devices.models import DeviceBinding
from yiyang.geo.models import Organisation, OrganisationKind
from yiyang.residents.models import Resident

# Thirty times the everyday event rates: eight homes over one day then raise alerts whatever the
# day's draw (at the default ten a day with none is possible, if rare).
ARGS = ["demo", "--residents", "300", "--homes", "8", "--inject", "30", "--no-serve"]


@dataclass
class DemoRun:
    data_dir: Path
    output: str
    database: Database


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    previous = passwords.use_hasher(PasswordHasher.from_parameters(CHEAPEST))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YIYANG_DATA_DIR", str(data_dir))
        patch.delenv("YIYANG_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, ARGS)
            assert result.exit_code == 0, result.output + (result.stderr or "")
            database = Database(f"sqlite:///{data_dir / 'yiyang.db'}")
            yield DemoRun(data_dir, result.stdout + result.stderr, database)
            database.dispose()
        finally:
            get_settings.cache_clear()
            passwords.use_hasher(previous)


def team_id(session) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(
        select(Organisation.id).where(Organisation.kind == OrganisationKind.family_doctor_team)
    )


def test_contracts_write_the_relationship_rows_that_give_the_team_its_scope(demo: DemoRun) -> None:
    with demo.database.unit_of_work() as session:
        team = team_id(session)
        contracted = set(
            session.scalars(
                select(CareContract.resident_id).where(
                    CareContract.team_id == team, CareContract.status == ContractStatus.in_force
                )
            )
        )
        related = set(
            session.scalars(
                select(ResidentRelationship.resident_id).where(
                    ResidentRelationship.organisation_id == team,
                    ResidentRelationship.kind == RelationshipKind.contract,
                    ResidentRelationship.source_type == "care_contract",
                    ResidentRelationship.ended_at.is_(None),
                )
            )
        )
        communities = set(session.scalars(select(Resident.community_id).where(Resident.id.in_(contracted))))
    # then every contract in force has its relationship row, all in one community
    assert contracted and contracted == related
    assert len(communities) == 1


def test_the_demo_user_is_the_teams_doctor_and_keeps_the_officer_and_admin_roles(demo: DemoRun) -> None:
    with demo.database.unit_of_work() as session:
        team = team_id(session)
        roles = {
            (m.role, m.organisation_id)
            for m in session.scalars(
                select(RoleMembership)
                .join(User, User.id == RoleMembership.user_id)
                .where(User.username == "demo")
            )
        }
        worker_roles = set(
            session.scalars(
                select(RoleMembership.role)
                .join(User, User.id == RoleMembership.user_id)
                .where(User.username == GRID_WORKER)
            )
        )
    assert {(Role.family_doctor, team), (Role.health_officer, None), (Role.district_admin, None)} <= roles
    assert worker_roles == {Role.grid_worker}
    assert re.search(rf"{GRID_WORKER} / \S+", demo.output)


def test_sensing_covers_only_contracted_homes_and_raises_alerts(demo: DemoRun) -> None:
    with demo.database.unit_of_work() as session:
        contracted = set(
            session.scalars(
                select(CareContract.resident_id).where(CareContract.status == ContractStatus.in_force)
            )
        )
        worn_by = set(
            session.scalars(select(DeviceBinding.resident_id).where(DeviceBinding.resident_id.is_not(None)))
        )
        households = set(session.scalars(select(Resident.household_id).where(Resident.id.in_(contracted))))
        placed_in = set(
            session.scalars(select(DeviceBinding.household_id).where(DeviceBinding.household_id.is_not(None)))
        )
        alerted = set(session.scalars(select(Alert.resident_id)))
    assert worn_by and worn_by <= contracted
    assert placed_in <= households
    assert alerted and alerted <= contracted


def test_each_alert_became_a_home_visit_and_the_care_day_left_overdue_and_escalated_work(
    demo: DemoRun,
) -> None:
    with demo.database.unit_of_work() as session:
        alerts = set(session.scalars(select(Alert.id)))
        visits = set(
            session.scalars(
                select(WorkItem.source_id).where(
                    WorkItem.source_type == "alert", WorkItem.kind == WorkKind.home_visit
                )
            )
        )
        by_kind = dict(session.execute(select(WorkItem.kind, func.count()).group_by(WorkItem.kind)).all())
        overdue = session.scalar(
            select(func.count()).select_from(WorkItem).where(WorkItem.status == WorkStatus.overdue)
        )
        escalated = session.scalar(
            select(func.count()).select_from(WorkItem).where(WorkItem.escalation_level > 0)
        )
    assert visits == alerts
    assert by_kind.get(WorkKind.follow_up, 0) > 0 and by_kind.get(WorkKind.health_check, 0) > 0
    assert overdue and escalated


@pytest.fixture(scope="module")
def client(demo: DemoRun) -> Iterator[TestClient]:
    from yiyang.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YIYANG_DATA_DIR", str(demo.data_dir))
        patch.delenv("YIYANG_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        try:
            with TestClient(create_app(demo.database)) as client:
                yield client
        finally:
            get_settings.cache_clear()


def sign_in(client: TestClient, output: str, how: str) -> dict[str, str]:
    password = re.search(r"sign in: demo / (\S+)", output)
    assert password is not None
    signed_in = client.post(
        "/api/auth/login", json={"username": "demo", "password": password.group(1), "client": how}
    )
    assert signed_in.status_code == 200, signed_in.text
    return {"Authorization": f"Bearer {signed_in.json()['token']}"} if how == "api" else {}


def test_the_demo_user_signed_in_sees_an_alert(demo: DemoRun, client: TestClient) -> None:
    page = client.get("/api/alerts", headers=sign_in(client, demo.output, "api"))
    assert page.status_code == 200, page.text
    assert page.json()["total"] > 0 and page.json()["items"][0]["resident_id"] > 0


def test_the_pages_the_demo_names_open_for_the_demo_user(demo: DemoRun, client: TestClient) -> None:
    sign_in(client, demo.output, "web")
    pages = {path: client.get(path) for path in PAGES}
    for path, page in pages.items():
        assert page.status_code == 200, (path, page.text[:300])
    # and the loop is on them: alerts listed, work of the team (and escalated to its lead) to do
    assert 'href="/alerts/' in pages["/alerts"].text
    assert 'href="/residents/' in pages["/care/my-work"].text


def test_summary_names_the_pages_to_open(demo: DemoRun) -> None:
    for page in PAGES:
        assert page in demo.output


# ---- pure choices ----------------------------------------------------------------------------


def test_packages_fit_age_and_diagnoses() -> None:
    assert packages_for(72, ["I10"]) == ["elderly", "chronic"]
    assert packages_for(62, ["E11.9"]) == ["chronic"]
    assert packages_for(80, ["J44"]) == ["elderly"]
    assert packages_for(61, []) == ["basic"]
    assert packages_for(None, []) == ["basic"]


def test_signing_days_spread_over_the_span_oldest_first() -> None:
    offsets = signing_offsets(7, span_days=70)
    assert offsets[0] == 69 and offsets == sorted(offsets, reverse=True) and min(offsets) >= 0
    assert signing_offsets(0) == [] and len(set(signing_offsets(140, span_days=70))) == 70


def test_the_care_day_catches_up_weekly_and_ends_today() -> None:
    assert catch_up_days(69) == [69, 62, 55, 48, 41, 34, 27, 20, 13, 6, 0]
    assert catch_up_days(0) == [0] and catch_up_days(7) == [7, 0]


# ---- a database that is not the demo's --------------------------------------------------------


def test_the_demo_writes_only_into_an_empty_database_or_its_own_district(
    db: Database, tmp_path: Path
) -> None:
    from yiyang.demo.commands import other_data
    from yiyang.demo.synthetic import generate_district
    from yiyang.geo.models import Area, AreaLevel

    files = generate_district(tmp_path / "district", 100, seed=7)
    with db.unit_of_work() as session:
        assert other_data(session, files) is None  # empty: the demo may build here
        # when the database holds areas of a real district
        session.add(Area(level=AreaLevel.district, code="310101", name="黄浦区", path="310101"))
        session.flush()
        found = other_data(session, files)
    # then the demo would not write over them
    assert found is not None and "310101" in found


def run_demo_again(demo: DemoRun, args: list[str]) -> tuple[int, str]:
    previous = passwords.use_hasher(PasswordHasher.from_parameters(CHEAPEST))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YIYANG_DATA_DIR", str(demo.data_dir))
        patch.delenv("YIYANG_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, args)
        finally:
            get_settings.cache_clear()
            passwords.use_hasher(previous)
    return result.exit_code, result.stdout + (result.stderr or "")


def test_another_district_into_the_demos_database_is_refused_before_any_write(demo: DemoRun) -> None:
    from yiyang.sources.models import ImportRun

    def counts() -> tuple[int, int]:
        with demo.database.unit_of_work() as session:
            return (
                session.scalar(select(func.count()).select_from(Resident)),
                session.scalar(select(func.count()).select_from(ImportRun)),
            )

    before = counts()
    # when the demo is run on the same data folder with another seed
    code, output = run_demo_again(
        demo, ["demo", "--residents", "300", "--seed", "8", "--homes", "0", "--no-serve"]
    )
    # then it stops before importing anything: no people of another district linked onto these
    assert code == 2, output
    assert "demo.database.not_empty" in output
    assert counts() == before


def test_the_same_demo_run_again_is_let_through(demo: DemoRun) -> None:
    code, output = run_demo_again(demo, [*ARGS[:3], "--homes", "0", "--no-serve"])
    assert code == 0, output
    assert "demo.database.not_empty" not in output
