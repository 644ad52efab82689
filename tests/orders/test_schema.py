"""Generated requests against the order and time-bank routes, signed in: never a 5xx."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.orders.district import build, register_providers
from yiyang.access import service as access
from yiyang.access.actor import CredentialKind
from yiyang.access.models import User
from yiyang.app import create_app
from yiyang.db import Database, utcnow

_folder = Path(tempfile.mkdtemp(prefix="yiyang-orders-schema-"))
_database = Database(f"sqlite:///{_folder / 'yiyang.db'}")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_database)).include(
    path_regex=r"^/api/(service-|timebank/|residents/\{resident_id\}/service-)"
)
_headers: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module", autouse=True)
def signed_in(sqlite_template: Path) -> Iterator[None]:
    """The small district with providers, and an administrator's and a volunteer's bearer tokens."""
    shutil.copy(sqlite_template, _folder / "yiyang.db")
    place = build(_database)
    register_providers(_database, place)
    with _database.unit_of_work() as session:
        for name, user_id in (("admin", place.admin), ("volunteer", place.volunteer_1)):
            user = session.get(User, user_id)
            token = access.issue_credential(
                session, user, CredentialKind.bearer, dt.timedelta(hours=1), utcnow()
            )
            _headers[name] = {"Authorization": f"Bearer {token.secret}"}
    yield
    _database.dispose()
    shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_order_and_timebank_routes_never_fail(case: schemathesis.Case) -> None:
    headers = _headers["volunteer"] if case.path.startswith("/api/timebank/") else _headers["admin"]
    response = case.call(headers=headers)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
