"""Imports into one registry run one at a time (docs/feeds.md, "One import at a time").

Linkage decides each row against the registry as committed: a second import running beside the
first would not see the residents the first is registering, so it would register the same people
again (those without an ID number silently; those with one fail on the unique blind index when
the first commits, after all their work). On PostgreSQL an import therefore takes a
transaction-level advisory lock first; a second file import waits for it, and a FHIR transaction,
which answers a client, is refused with 409 ``import.busy`` rather than kept waiting.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import func, select, text

from yiyang.app import create_app
from yiyang.config import Settings
from yiyang.db import Database
from yiyang.demo.synthetic import generate_district
from yiyang.errors import Conflict
from yiyang.geo.service import import_geography, import_organisations
from yiyang.residents.models import Resident
from yiyang.sources import service
from yiyang.sources.models import Feed
from yiyang.sources.service import import_file

from ..fhir.test_api import add_community, post, sample
from ..signed_in import sign_in_as_clinician

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return generate_district(tmp_path_factory.mktemp("district"), 60, seed=5, civil_format="csv")


def placed(database: Database, files) -> None:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        import_geography(session, Path(files.geography))
        import_organisations(session, Path(files.organisations))


def someone_waits(database: Database, seconds: float = 10.0) -> bool:
    """Whether another backend is waiting for a lock (the second import, by whichever lock)."""
    deadline = time.monotonic() + seconds
    with database.engine.connect() as connection:
        while time.monotonic() < deadline:
            if connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar():
                return True
            time.sleep(0.05)
    return False


def test_two_imports_of_one_file_at_once_both_apply_and_the_second_changes_nothing(
    pg_db: Database, district
) -> None:  # type: ignore[no-untyped-def]
    placed(pg_db, district)
    settings = Settings(import_batch_rows=20)
    second_started = threading.Event()
    waited: list[bool] = []
    reports: dict[str, service.ImportReport] = {}
    errors: dict[str, BaseException] = {}

    def first_progress(seen: int) -> None:
        # given the first import in the middle of its run (its first batch written, not committed)
        if not second_started.is_set():
            second_started.set()
            waited.append(someone_waits(pg_db))

    def run(name: str, on_progress) -> None:  # type: ignore[no-untyped-def]
        try:
            reports[name] = import_file(
                pg_db, Feed.health, Path(district.health), settings=settings, on_progress=on_progress
            )
        except BaseException as error:  # noqa: BLE001 - the test reports it below
            errors[name] = error

    first = threading.Thread(target=run, args=("first", first_progress))
    first.start()
    assert second_started.wait(60)
    # when the same file is imported again meanwhile
    second = threading.Thread(target=run, args=("second", None))
    second.start()
    first.join(120)
    second.join(120)
    # then the second waited for the first, and both runs applied
    assert waited == [True]
    assert errors == {}
    # the first registered everyone, and the second, deciding against what the first committed,
    # found every row unchanged
    assert reports["first"].counts["new_resident"] > 0
    assert reports["second"].counts["unchanged"] == reports["first"].counts["rows"] - len(
        reports["first"].rejections
    )
    with pg_db.unit_of_work() as session:
        assert (
            session.scalar(select(func.count()).select_from(Resident))
            == reports["first"].counts["new_resident"]
        )


def test_an_import_that_may_not_wait_is_refused_while_another_runs(pg_db: Database, district) -> None:  # type: ignore[no-untyped-def]
    placed(pg_db, district)
    with pg_db.unit_of_work() as holding:
        # given an import holding the registry (its transaction still open)
        service.one_import_at_a_time(holding)
        # when another asks without waiting, then it is refused as busy
        with pytest.raises(Conflict) as refused, pg_db.unit_of_work() as other:
            service.one_import_at_a_time(other, wait=False)
        assert refused.value.code == "import.busy"
    # and once the first has committed, the registry is free again
    with pg_db.unit_of_work() as session:
        service.one_import_at_a_time(session, wait=False)


def test_a_fhir_transaction_during_an_import_is_refused_as_busy_and_stores_nothing(pg_db: Database) -> None:
    add_community(pg_db)
    with TestClient(create_app(pg_db)) as client:
        sign_in_as_clinician(client, pg_db)
        with pg_db.unit_of_work() as holding:
            # given an import holding the registry
            service.one_import_at_a_time(holding)
            # when a transaction Bundle is posted meanwhile
            refused = post(client, sample())
            # then it is refused as busy, as an OperationOutcome, and nothing is stored
            assert refused.status_code == 409, refused.text
            assert (
                OperationOutcome.model_validate(refused.json()).issue[0].details.coding[0].code
                == "import.busy"
            )
        with pg_db.unit_of_work() as session:
            assert session.scalar(select(func.count()).select_from(Resident)) == 0
        # and posted again once the import has committed, it is applied
        assert post(client, sample()).status_code == 200
