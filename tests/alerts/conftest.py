"""A small scene for alert tests: one elder living alone in a grid, her devices, and the people
an escalation reaches (grid worker, daughter, family-doctor team, station)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.devices.conftest import broker  # noqa: F401 - the MQTT fixture, for the end-to-end test
from yiyang.access import service as access
from yiyang.access.models import RelationshipKind, ResidentRelationship
from yiyang.access.roles import Role
from yiyang.alerts.channels import Notifier, RecordingGateway
from yiyang.alerts.engine import use_notifier
from yiyang.db import Database
from yiyang.devices import service as devices
from yiyang.devices.models import DeviceKind
from yiyang.geo.models import Area, AreaLevel, LivingArrangement, Organisation, OrganisationKind
from yiyang.residents.models import Resident

T0 = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing


@dataclass
class Scene:
    resident_id: int
    radar_id: int
    wearable_id: int
    grid_worker: int
    daughter: int
    doctor: int
    station_staff: int
    gateway: RecordingGateway


@pytest.fixture
def gateway() -> Iterator[RecordingGateway]:
    recording = RecordingGateway()
    use_notifier(Notifier({"sms": recording, "voice": recording}, max_attempts=3))
    yield recording
    use_notifier(None)


def build_scene(database: Database, gateway: RecordingGateway) -> Scene:
    with database.unit_of_work() as session:
        district = Area(level=AreaLevel.district, code="110108", name="海淀区", path="110108")
        session.add(district)
        session.flush()
        grid = Area(
            level=AreaLevel.grid, code="G-01", name="一网格", parent_id=district.id, path="110108/G-01"
        )
        session.add(grid)
        session.flush()
        team = Organisation(
            code="FDT-1", name="家医一队", kind=OrganisationKind.family_doctor_team, area_id=district.id
        )
        station = Organisation(
            code="ST-1", name="驿站", kind=OrganisationKind.elderly_care_station, area_id=district.id
        )
        session.add_all([team, station])
        resident = Resident(
            name="王秀英",
            name_pinyin="wang xiu ying",
            grid_id=grid.id,
            living_arrangement=LivingArrangement.alone,
        )
        session.add(resident)
        session.flush()
        for org, kind in ((team, RelationshipKind.contract), (station, RelationshipKind.service)):
            session.add(
                ResidentRelationship(
                    resident_id=resident.id, kind=kind, organisation_id=org.id, valid_from=T0 - dt.timedelta(days=30),
                    source_type="test", source_id=1,
                )
            )  # fmt: skip
        worker = access.create_user(session, "grid1")
        access.grant_role(session, worker, Role.grid_worker, area_id=grid.id)
        daughter = access.create_user(session, "daughter1")
        access.grant_role(session, daughter, Role.family_member)  # acts for her mother with the role only
        access.authorise_family_member(
            session, resident.id, daughter, "子女", valid_from=T0 - dt.timedelta(days=1)
        )
        doctor = access.create_user(session, "doctor1")
        access.grant_role(session, doctor, Role.family_doctor, organisation_id=team.id)
        staff = access.create_user(session, "station1")
        access.grant_role(session, staff, Role.station_staff, organisation_id=station.id)
        radar, _ = devices.register_device(session, "RADAR-1", DeviceKind.radar)
        wearable, _ = devices.register_device(session, "WB-1", DeviceKind.wearable)
        for device in (radar, wearable):
            devices.bind_device(
                session, device.id, resident_id=resident.id, valid_from=T0 - dt.timedelta(days=1)
            )
        session.flush()
        return Scene(resident.id, radar.id, wearable.id, worker.id, daughter.id, doctor.id, staff.id, gateway)


@pytest.fixture
def scene(db: Database, gateway: RecordingGateway) -> Scene:
    return build_scene(db, gateway)
