"""Generated requests against the assessment and tier routes: never a 5xx."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.tiers.builders import health_row, run, seed_areas
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.sources.models import Feed
from yiyang.sources.records import ConditionFact
from yiyang.tiers.service import sweep_tiers

from ..signed_in import bearer_for, clinical_team, clinician, contract_everyone

ROUTES = (
    r"^/api/(instruments|assessments|tiers|care-plans|capability-reassessments)"
    r"|^/api/residents/\{resident_id\}/(assessments|tier|care-plans)"
)
_folder = Path(tempfile.mkdtemp(prefix="yiyang-tier-schema-"))
_database = Database(f"sqlite:///{_folder / 'yiyang.db'}")
_headers: dict[str, str] = {}
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_database)).include(path_regex=ROUTES)


@pytest.fixture(scope="module", autouse=True)
def seeded_database(sqlite_template: Path) -> Iterator[None]:
    """Resident 1 with a tier and a proposed plan, so generated ids sometimes find something."""
    shutil.copy(sqlite_template, _folder / "yiyang.db")
    seed_areas(_database)
    run(_database, Feed.health, [health_row("HR-1", conditions=[ConditionFact("I10", "高血压")])])
    with _database.unit_of_work() as session:
        sweep_tiers(session)
    _headers.update(bearer_for(_database, clinician(_database)))
    contract_everyone(_database, clinical_team(_database))
    yield
    _database.dispose()
    shutil.rmtree(_folder, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_assessment_and_tier_routes_never_fail(case: schemathesis.Case) -> None:
    response = case.call(headers=_headers)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
