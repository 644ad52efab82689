"""An import reports how long each of its stages took, for the benchmark's split."""

from __future__ import annotations

from pathlib import Path

import pytest

from yiyang.db import Database
from yiyang.geo.service import import_geography
from yiyang.sources.models import Feed
from yiyang.sources.service import import_file

SAMPLES = Path(__file__).parents[2] / "docs" / "samples"
STAGES = {
    "hash",
    "link",
    "fold",
    "households",
    "resident rows",
    "resident writes",
    "record writes",
    "fact writes",
}


@pytest.fixture
def district(db: Database) -> Database:
    with db.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    return db


def test_an_import_reports_the_time_of_each_stage(district: Database) -> None:
    # when a file is imported
    report = import_file(district, Feed.health, SAMPLES / "health.csv")
    # then every stage of the runner is timed, and together they fit in the run's elapsed time
    assert set(report.stage_seconds) >= STAGES
    assert all(seconds >= 0 for seconds in report.stage_seconds.values())
    assert sum(report.stage_seconds.values()) <= report.elapsed_s
