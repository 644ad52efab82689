"""Fixtures for access tests: a cheap password hasher, a fake clock, an app client, people."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from yiyang.access import service
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.config import Settings
from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind
from yiyang.residents.models import Resident

PASSWORD = "correct-horse-battery"


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        token_ttl_hours=2,
        session_ttl_hours=1,
        sign_in_window_seconds=600,
        sign_in_max_failures_per_account=3,
        sign_in_max_failures_per_client=6,
    )


@pytest.fixture
def client(sqlite_db: Database, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(sqlite_db, settings)
    app.state.clock = clock
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class Place:
    district_id: int
    grid_id: int
    centre_id: int
    resident_id: int


@pytest.fixture
def place(sqlite_db: Database) -> Place:
    return make_place(sqlite_db)


def make_place(database: Database) -> Place:
    """A district with one grid, a health centre, and one synthetic resident."""
    with database.unit_of_work() as session:
        district = Area(level=AreaLevel.district, code="110108", name="海淀区", path="110108")
        session.add(district)
        session.flush()
        grid = Area(
            level=AreaLevel.grid, code="110108-G01", name="第一网格", parent_id=district.id, path="110108/G01"
        )
        centre = Organisation(
            code="HC-001",
            name="示例社区卫生服务中心",
            kind=OrganisationKind.health_centre,
            area_id=district.id,
        )
        resident = Resident(
            name="王秀英", name_pinyin="wang xiu ying", sex="F", birth_date=dt.date(1948, 3, 2)
        )
        session.add_all([grid, centre, resident])
        session.flush()
        return Place(district.id, grid.id, centre.id, resident.id)


def add_user(
    database: Database, username: str, role: Role = Role.nurse, password: str = PASSWORD, **grant: int | None
) -> int:
    with database.unit_of_work() as session:
        user = service.create_user(session, username, password=password)
        service.grant_role(session, user, role, **grant)
        return user.id
