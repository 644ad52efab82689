"""Generated requests against the /fhir routes: never a 5xx, always FHIR JSON."""

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

from ..signed_in import bearer_for, clinician

# The schema is read when the module loads; the database behind it is filled in just before the
# tests run, from the migrated template the other tests copy.
_folder = Path(tempfile.mkdtemp(prefix="yiyang-fhir-schema-"))
_database = Database(f"sqlite:///{_folder / 'yiyang.db'}")
_headers: dict[str, str] = {}
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_database)).include(path_regex="^/fhir")


@pytest.fixture(scope="module", autouse=True)
def migrated_database(sqlite_template: Path) -> Iterator[None]:
    shutil.copy(sqlite_template, _folder / "yiyang.db")
    _headers.update(bearer_for(_database, clinician(_database)))
    yield
    _database.dispose()
    shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_fhir_routes_answer_fhir_and_never_fail(case: schemathesis.Case) -> None:
    response = case.call(headers=_headers)
    assert response.status_code < 500, (case.method, case.path, response.status_code)
    if response.status_code != 405:  # a method the route lacks is answered by the router itself
        assert response.headers["content-type"][0].startswith("application/fhir+json")
