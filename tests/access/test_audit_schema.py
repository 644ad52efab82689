"""Generated requests against reveal, audit search and export and the access log, signed in as a
user whose roles pass the role checks (so the work behind them runs): never a 5xx."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from hypothesis import HealthCheck, settings

from tests.access.conftest import PASSWORD, make_place
from yiyang.access import passwords, service
from yiyang.access.actor import CredentialKind
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database

ROUTES = r"^/api/audit/|^/api/residents/\{resident_id\}/(reveal|access-log)"
_folder = Path(tempfile.mkdtemp(prefix="yiyang-audit-schema-"))
_database = Database(f"sqlite:///{_folder / 'yiyang.db'}")
_app = create_app(_database)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app).include(path_regex=ROUTES)
_headers: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def signed_in(sqlite_template: Path) -> Iterator[None]:
    """Resident 1 (also a user), and a district administrator who is a family doctor too."""
    shutil.copy(sqlite_template, _folder / "yiyang.db")
    previous = passwords.use_hasher(PasswordHasher.from_parameters(CHEAPEST))
    place = make_place(_database)
    with _database.unit_of_work() as session:
        user = service.create_user(session, "admin.doctor", password=PASSWORD, resident_id=place.resident_id)
        for role in (Role.district_admin, Role.family_doctor, Role.resident):
            service.grant_role(session, user, role)
        issued = service.issue_credential(
            session, user, CredentialKind.bearer, dt.timedelta(hours=2), dt.datetime.now(dt.UTC)
        )
        _headers["Authorization"] = f"Bearer {issued.secret}"
    yield
    passwords.use_hasher(previous)
    _database.dispose()
    shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_reveal_and_audit_routes_never_fail(case: schemathesis.Case) -> None:
    response = case.call(headers=_headers)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    assert response.status_code != 401  # signed in throughout: the routes' own work ran
