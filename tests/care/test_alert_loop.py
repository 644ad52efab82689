"""The closed loop end to end: a fall reported by a home sensor becomes an alert, the alert a
home visit for the grid worker, and the visit's outcome closes the alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.alerts.conftest import T0, Scene, build_scene
from tests.alerts.test_alerts import alerts, event, send
from yiyang.access import service as access
from yiyang.alerts import service as alert_service
from yiyang.alerts.channels import Notifier, RecordingGateway
from yiyang.alerts.engine import AlertRules, use_notifier
from yiyang.alerts.models import AlertState
from yiyang.care import service as care
from yiyang.care.models import WorkItem, WorkKind, WorkStatus
from yiyang.db import Database
from yiyang.events import install_handlers


@pytest.fixture
def home(db: Database) -> Iterator[Scene]:
    """The alert tests' scene: an elder living alone, her radar, her grid worker and family."""
    recording = RecordingGateway()
    use_notifier(Notifier({"sms": recording, "voice": recording}, max_attempts=3))
    yield build_scene(db, recording)
    use_notifier(None)


def visits(db: Database) -> list[WorkItem]:
    with db.unit_of_work() as session:
        rows = list(session.scalars(select(WorkItem).where(WorkItem.kind == WorkKind.home_visit)))
        session.expunge_all()
        return rows


def test_a_fall_becomes_a_home_visit_for_the_grid_worker_whose_outcome_closes_the_alert(
    db: Database, home: Scene
) -> None:
    # given the system's reactions, and the elder's radar reporting a fall
    install_handlers()
    send(db, AlertRules(clock=lambda: T0), home.radar_id, [event(1, T0, "fall")], T0)
    (alert,) = alerts(db)
    assert alert.kind == "fall" and alert.state == AlertState.open
    # then a home visit is due today, owned by the grid worker of the elder's grid, naming the alert
    (visit,) = visits(db)
    assert (visit.owner_user_id, visit.source_type, visit.source_id) == (home.grid_worker, "alert", alert.id)
    assert visit.status in (WorkStatus.scheduled, WorkStatus.due)
    # when the grid worker records the visit as done, twelve minutes later
    later = T0 + dt.timedelta(minutes=12)
    with db.unit_of_work() as session:
        worker = access.load_actor(session, home.grid_worker, later)
        care.record_outcome(
            session, worker, visit.id, care.Outcome(done=True, findings="已扶起，无外伤"), now=later
        )
    # then the visit is done and the alert is resolved by it, with the transition kept
    (visit,) = visits(db)
    (alert,) = alerts(db)
    assert visit.status == WorkStatus.done
    assert (alert.state, alert.outcome, alert.resolved_at) == (AlertState.resolved, "visit_done", later)
    with db.unit_of_work() as session:
        last = alert_service.transitions_of(session, alert.id)[-1]
        assert last.to_state == AlertState.resolved and f"work_item:{visit.id}" in (last.note or "")


def test_a_failed_visit_leaves_the_alert_open(db: Database, home: Scene) -> None:
    install_handlers()
    send(db, AlertRules(clock=lambda: T0), home.radar_id, [event(1, T0, "fall")], T0)
    (visit,) = visits(db)
    later = T0 + dt.timedelta(minutes=30)
    with db.unit_of_work() as session:
        worker = access.load_actor(session, home.grid_worker, later)
        care.record_outcome(
            session, worker, visit.id, care.Outcome(done=False, findings="无人应门"), now=later
        )
    (alert,) = alerts(db)
    assert alert.state != AlertState.resolved
