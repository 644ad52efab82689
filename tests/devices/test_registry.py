"""Device registry: registration, credentials, bindings with validity periods, status."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from yiyang.db import Database
from yiyang.devices import service
from yiyang.devices.models import Device, DeviceBinding, DeviceKind
from yiyang.errors import Conflict, Invalid, NotFound
from yiyang.geo.models import Area, AreaLevel, Household
from yiyang.residents.models import Resident, ResidentStatus

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def people(database: Database) -> tuple[int, int, int]:
    """Two synthetic residents and one household."""
    with database.unit_of_work() as session:
        community = Area(level=AreaLevel.community, code="110108001001", name="示例社区", path="110108001001")
        session.add(community)
        session.flush()
        household = Household(address="示例路1号", address_key="示例路1号", community_id=community.id)
        first = Resident(name="李桂兰", name_pinyin="li gui lan", sex="F")
        second = Resident(name="张建国", name_pinyin="zhang jian guo", sex="M")
        session.add_all([household, first, second])
        session.flush()
        return first.id, second.id, household.id


def test_registration_returns_a_secret_that_is_stored_only_as_a_hash(db: Database) -> None:
    with db.unit_of_work() as session:
        device, secret = service.register_device(session, "MAT-0001", DeviceKind.mattress, "示例床垫 M1")
    with db.unit_of_work() as session:
        stored = session.get(Device, device.id)
        assert stored is not None
        assert len(secret) >= 40
        assert stored.secret_hash != secret and secret not in stored.secret_hash
        assert service.authenticate_device(session, "MAT-0001", secret).id == device.id


def test_a_uid_can_be_registered_once(db: Database) -> None:
    with db.unit_of_work() as session:
        service.register_device(session, "WB-1", DeviceKind.wearable)
    with pytest.raises(Conflict) as error, db.unit_of_work() as session:
        service.register_device(session, "WB-1", DeviceKind.radar)
    assert error.value.code == "device.uid.taken"
    with db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 1


@pytest.mark.parametrize("uid", ["", "has space", "a/b", "+", "x" * 65, "-starts-with-dash"])
def test_a_uid_that_cannot_be_a_topic_level_is_refused(db: Database, uid: str) -> None:
    with pytest.raises(Invalid), db.unit_of_work() as session:
        service.register_device(session, uid, DeviceKind.wearable)


def test_wrong_rotated_or_retired_credentials_are_refused_alike(db: Database) -> None:
    with db.unit_of_work() as session:
        device, old_secret = service.register_device(session, "BP-1", DeviceKind.bp_meter)
        _, new_secret = service.rotate_secret(session, device.id)
    with db.unit_of_work() as session:
        for uid, secret in [("BP-1", "guess"), ("BP-1", old_secret), ("BP-2", new_secret)]:
            with pytest.raises(service.DeviceUnauthorized) as error:
                service.authenticate_device(session, uid, secret)
            assert error.value.code == "device.auth"
        assert service.authenticate_device(session, "BP-1", new_secret).id == device.id
        service.retire_device(session, device.id, T0)
    with db.unit_of_work() as session, pytest.raises(service.DeviceUnauthorized):
        service.authenticate_device(session, "BP-1", new_secret)


def test_binding_periods_may_not_overlap_and_history_is_kept(db: Database) -> None:
    first, second, household = people(db)
    with db.unit_of_work() as session:
        device, _ = service.register_device(session, "WB-7", DeviceKind.wearable)
        binding = service.bind_device(session, device.id, resident_id=first, valid_from=T0)
    # when the same wearable is given to someone else while the first binding is open
    with pytest.raises(Conflict) as error, db.unit_of_work() as session:
        service.bind_device(session, device.id, resident_id=second, valid_from=T0 + dt.timedelta(days=3))
    # then it is refused, naming the binding in the way, and nothing was added
    assert error.value.code == "device.binding.overlap"
    assert error.value.detail == {"binding_id": binding.id}
    with db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(DeviceBinding)) == 1
    # when the first binding ends, the device can move on
    moved = T0 + dt.timedelta(days=10)
    with db.unit_of_work() as session:
        service.end_binding(session, device.id, binding.id, moved)
        service.bind_device(session, device.id, resident_id=second, valid_from=moved)
    # then each reading time resolves to whoever had the device then
    with db.unit_of_work() as session:
        assert service.binding_at(session, device.id, T0 + dt.timedelta(days=9)).resident_id == first
        assert service.binding_at(session, device.id, moved).resident_id == second
        assert service.binding_at(session, device.id, T0 - dt.timedelta(days=1)) is None
        assert [d.uid for d in service.list_devices(session, resident_id=second, at=moved)] == ["WB-7"]
        assert list(service.list_devices(session, resident_id=first, at=moved)) == []
        # a household can hold a device too, for a later period
        service.end_binding(
            session, device.id, service.binding_at(session, device.id, moved).id, moved + dt.timedelta(days=1)
        )
        service.bind_device(
            session, device.id, household_id=household, valid_from=moved + dt.timedelta(days=1)
        )


def test_a_device_is_not_placed_with_a_record_merged_into_another(db: Database) -> None:
    # given two records of one person, the second merged into the first
    first, second, _ = people(db)
    with db.unit_of_work() as session:
        merged = session.get(Resident, second)
        merged.status, merged.merged_into_id = ResidentStatus.merged, first
        device, _ = service.register_device(session, "BP-3", DeviceKind.bp_meter)
    # when a meter is placed with the merged record
    with pytest.raises(NotFound) as error, db.unit_of_work() as session:
        service.bind_device(session, device.id, resident_id=second, valid_from=T0)
    # then it is refused, naming the record to use, and the meter is with nobody
    assert error.value.code == "resident.merged"
    assert error.value.detail == {"merged_into": first}
    with db.unit_of_work() as session:
        assert service.bindings_of(session, device.id) == []


@pytest.mark.postgres
def test_two_administrators_placing_one_device_at_once_cannot_both_succeed(pg_db: Database) -> None:
    # given a mattress, and two administrators placing it with two elders at the same moment
    first, second, _ = people(pg_db)
    with pg_db.unit_of_work() as session:
        device, _ = service.register_device(session, "MAT-9", DeviceKind.mattress)
    outcome: list[object] = []

    def place_with_second() -> None:
        try:
            with pg_db.unit_of_work() as other:
                outcome.append(service.bind_device(other, device.id, resident_id=second, valid_from=T0).id)
        except Conflict as error:
            outcome.append(error.code)

    # when the first placement is written but not yet committed as the second one checks
    with pg_db.unit_of_work() as session:
        service.bind_device(session, device.id, resident_id=first, valid_from=T0)
        racer = threading.Thread(target=place_with_second)
        racer.start()
        racer.join(1.0)  # the second waits for the first to finish
    racer.join(10)
    # then the second is refused once the first is in, and the device is with one elder only
    assert outcome == ["device.binding.overlap"]
    with pg_db.unit_of_work() as session:
        assert [b.resident_id for b in service.bindings_of(session, device.id)] == [first]


@pytest.mark.parametrize(
    ("holders", "code"),
    [({}, "device.binding.holder"), ({"resident_id": 1, "household_id": 1}, "device.binding.holder")],
)
def test_a_binding_has_exactly_one_holder(db: Database, holders: dict[str, int], code: str) -> None:
    with db.unit_of_work() as session:
        device, _ = service.register_device(session, "DOOR-1", DeviceKind.door_sensor)
    with pytest.raises(Invalid) as error, db.unit_of_work() as session:
        service.bind_device(session, device.id, valid_from=T0, **holders)
    assert error.value.code == code


def test_retiring_ends_the_open_binding(db: Database) -> None:
    first, _, _ = people(db)
    with db.unit_of_work() as session:
        device, _ = service.register_device(session, "RAD-1", DeviceKind.radar)
        service.bind_device(session, device.id, resident_id=first, valid_from=T0)
        service.retire_device(session, device.id, T0 + dt.timedelta(days=30))
    with db.unit_of_work() as session:
        assert service.binding_at(session, device.id, T0 + dt.timedelta(days=31)) is None
        with pytest.raises(Conflict):
            service.bind_device(session, device.id, resident_id=first, valid_from=T0 + dt.timedelta(days=40))


def test_retiring_ends_a_placement_agreed_until_later_and_drops_one_not_yet_begun(db: Database) -> None:
    # given a radar lent to one elder for 60 days, then promised to another
    first, second, _ = people(db)
    with db.unit_of_work() as session:
        device, _ = service.register_device(session, "RAD-2", DeviceKind.radar)
        service.bind_device(
            session, device.id, resident_id=first, valid_from=T0, valid_to=T0 + dt.timedelta(days=60)
        )
        service.bind_device(session, device.id, resident_id=second, valid_from=T0 + dt.timedelta(days=60))
    # when it is retired on day 30
    with db.unit_of_work() as session:
        service.retire_device(session, device.id, T0 + dt.timedelta(days=30))
    # then it is with nobody from then on, and the first elder's 30 days stay on record
    with db.unit_of_work() as session:
        for day in (30, 31, 60, 61, 90):
            assert service.binding_at(session, device.id, T0 + dt.timedelta(days=day)) is None, day
        assert service.binding_at(session, device.id, T0 + dt.timedelta(days=29)).resident_id == first
        assert [(b.resident_id, b.valid_to) for b in service.bindings_of(session, device.id)] == [
            (first, T0 + dt.timedelta(days=30))
        ]


def test_online_means_recently_heard_and_not_reported_offline() -> None:
    now = T0
    assert service.is_online(DeviceKind.wearable, now - dt.timedelta(minutes=9), True, now)
    assert not service.is_online(DeviceKind.wearable, now - dt.timedelta(minutes=11), True, now)
    assert not service.is_online(DeviceKind.wearable, now, False, now)  # its Last Will said offline
    assert not service.is_online(DeviceKind.wearable, None, True, now)
    # a BP meter is used once a day: a night without readings is not a fault
    assert service.is_online(DeviceKind.bp_meter, now - dt.timedelta(hours=20), True, now)


def test_periods_are_half_open() -> None:
    day = dt.timedelta(days=1)
    assert not service.periods_overlap(T0, T0 + day, T0 + day, None)
    assert service.periods_overlap(T0, None, T0 + 5 * day, T0 + 6 * day)
    assert service.periods_overlap(T0 + day, T0 + 3 * day, T0, T0 + 2 * day)


def test_silent_devices_are_marked_offline(db: Database) -> None:
    with db.unit_of_work() as session:
        quiet, _ = service.register_device(session, "WB-Q", DeviceKind.wearable)
        chatty, _ = service.register_device(session, "WB-C", DeviceKind.wearable)
        quiet.online, quiet.last_seen_at = True, T0 - dt.timedelta(hours=1)
        chatty.online, chatty.last_seen_at = True, T0 - dt.timedelta(minutes=1)
    with db.unit_of_work() as session:
        assert service.mark_silent_offline(session, T0) == 1
    with db.unit_of_work() as session:
        assert session.get(Device, quiet.id).online is False
        assert session.get(Device, chatty.id).online is True


def test_a_retired_device_gets_no_new_secret(db: Database) -> None:
    with db.unit_of_work() as session:
        device, _ = service.register_device(session, "TM-R", DeviceKind.terminal)
        service.retire_device(session, device.id, T0)
    with db.unit_of_work() as session, pytest.raises(Conflict) as error:
        service.rotate_secret(session, device.id)
    assert error.value.code == "device.retired"
