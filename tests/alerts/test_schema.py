"""Generated requests against the alert routes, signed in as an administrator: never a 5xx."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.alerts.conftest import T0, build_scene
from yiyang.access import service as access
from yiyang.access.actor import CredentialKind
from yiyang.access.roles import Role
from yiyang.alerts import service as alerts
from yiyang.alerts.channels import RecordingGateway
from yiyang.alerts.engine import shared_book
from yiyang.app import create_app
from yiyang.db import Database, utcnow

_folder = Path(tempfile.mkdtemp(prefix="yiyang-alerts-schema-"))
_database = Database(f"sqlite:///{_folder / 'yiyang.db'}")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_database)).include(
    path_regex="^/api/(alerts|alert-rules|inbox|residents/[^/]+/alert-rules)"
)
_headers: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def signed_in(sqlite_template: Path) -> Iterator[None]:
    """An administrator's bearer token, and one open fall alert to act on."""
    shutil.copy(sqlite_template, _folder / "yiyang.db")
    scene = build_scene(_database, RecordingGateway())
    with _database.unit_of_work() as session:
        user = access.create_user(session, "schema-admin", password="correct-horse-battery")
        access.grant_role(session, user, Role.district_admin)
        token = access.issue_credential(session, user, CredentialKind.bearer, dt.timedelta(hours=1), utcnow())
        rules = shared_book().base
        alerts.record_hit(session, scene.resident_id, rules.rule("fall"), rules, T0, T0)
    _headers["Authorization"] = f"Bearer {token.secret}"
    yield
    _database.dispose()
    shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_alert_routes_never_fail(case: schemathesis.Case) -> None:
    response = case.call(headers=_headers)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
