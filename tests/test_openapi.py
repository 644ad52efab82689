"""Generated requests against the registry, geography and import routes: never a 5xx.

Bounded in time (a handful of examples per operation); the FHIR, devices and access routes
have sweeps of their own beside their tests.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from yiyang.app import create_app
from yiyang.db import Database
from yiyang.geo.service import import_geography
from yiyang.sources.models import Feed
from yiyang.sources.service import import_file

from .signed_in import bearer_for, clinical_team, clinician, contract_everyone

SAMPLES = Path(__file__).parent.parent / "docs" / "samples"
_folder = Path(tempfile.mkdtemp(prefix="yiyang-api-schema-"))
_database = Database(f"sqlite:///{_folder / 'yiyang.db'}")
_headers: dict[str, str] = {}
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_database)).include(
    path_regex="^/api/(residents|merges|link-reviews|import-runs|areas|organisations|households|consents|break-glass)"
)


@pytest.fixture(scope="module", autouse=True)
def filled_database(sqlite_template: Path) -> Iterator[None]:
    shutil.copy(sqlite_template, _folder / "yiyang.db")
    with _database.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    import_file(_database, Feed.health, SAMPLES / "health.csv")
    user_id = clinician(_database)
    contract_everyone(_database, clinical_team(_database))
    _headers.update(bearer_for(_database, user_id))
    yield
    _database.dispose()
    shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_with_a_server_error(case: schemathesis.Case) -> None:
    response = case.call(headers=_headers)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:200])
