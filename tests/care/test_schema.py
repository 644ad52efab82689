"""Generated requests against the care routes, signed in as an administrator: never a 5xx."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.care.builders import NOW, add_resident, bearer, load, make_world
from yiyang.app import create_app
from yiyang.care import contracts
from yiyang.care.day import run_care_day
from yiyang.db import Database

ROUTES = r"^/api/care/|^/api/residents/\{resident_id\}/(contracts|work-items)"
_folder = Path(tempfile.mkdtemp(prefix="yiyang-care-schema-"))
_database = Database(f"sqlite:///{_folder / 'yiyang.db'}")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_database)).include(path_regex=ROUTES)
_headers: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def seeded_database(sqlite_template: Path) -> Iterator[None]:
    """A team with one contracted hypertensive resident and their first follow-up, so ids sometimes hit."""
    shutil.copy(sqlite_template, _folder / "yiyang.db")
    world = make_world(_database)
    with _database.unit_of_work() as session:
        rid = add_resident(session, world, conditions=("I10",))
        contracts.sign_contract(session, load(session, world.doctor_id), resident_id=rid, team_id=world.team_id,
                                packages=["basic", "chronic"], now=NOW)  # fmt: skip
    run_care_day(_database, NOW)
    _headers.update(bearer(_database, "admin"))
    yield
    _database.dispose()
    shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_care_routes_never_fail(case: schemathesis.Case) -> None:
    response = case.call(headers=_headers)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
