"""Generated requests against the device routes, signed in: never a 5xx."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from yiyang.access import service as access
from yiyang.access.actor import CredentialKind
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.devices import service
from yiyang.devices.models import DeviceKind

_folder = Path(tempfile.mkdtemp(prefix="yiyang-devices-schema-"))
_database = Database(f"sqlite:///{_folder / 'yiyang.db'}")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_database)).include(
    path_regex="^/api/(devices|telemetry)"
)
_headers: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module", autouse=True)
def signed_in(sqlite_template: Path) -> Iterator[None]:
    """An administrator's bearer token, and a registered gateway device's Basic credentials."""
    shutil.copy(sqlite_template, _folder / "yiyang.db")
    with _database.unit_of_work() as session:
        user = access.create_user(session, "schema-admin", password="correct-horse-battery")
        access.grant_role(session, user, Role.district_admin)
        token = access.issue_credential(session, user, CredentialKind.bearer, dt.timedelta(hours=1), utcnow())
        device, secret = service.register_device(session, "GW-1", DeviceKind.terminal)
    basic = base64.b64encode(f"{device.uid}:{secret}".encode()).decode()
    _headers["admin"] = {"Authorization": f"Bearer {token.secret}"}
    _headers["device"] = {"Authorization": f"Basic {basic}"}
    yield
    _database.dispose()
    shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_device_routes_never_fail(case: schemathesis.Case) -> None:
    headers = _headers["device"] if case.path == "/api/telemetry" else _headers["admin"]
    response = case.call(headers=headers)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
