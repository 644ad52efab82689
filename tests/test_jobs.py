"""The timed jobs the system installs, run as the worker runs them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tests.tiers.builders import health_row, resident_id_of, run, seed_areas
from yiyang import jobs
from yiyang.db import Database
from yiyang.sources.models import Feed
from yiyang.tiers import service as tiers
from yiyang.tiers.rules import Tier


@pytest.fixture
def installed() -> Iterator[dict[str, jobs.Job]]:
    jobs.clear()
    jobs.install_jobs()
    yield {job.name: job for job in jobs.registered()}
    jobs.clear()


def test_the_worker_decides_tiers_daily_without_a_cron_line(
    db: Database, installed: dict[str, jobs.Job]
) -> None:
    sweep = installed["tiers.sweep"]
    assert sweep.every == dt.timedelta(days=1)
    seed_areas(db)
    rid = resident_id_of(run(db, Feed.health, [health_row("HR-1")]), "HR-1")
    with db.unit_of_work() as session:
        assert tiers.tier_of(session, rid) is None  # imported, never decided
    ran = jobs.Scheduler(db, [sweep]).run_due(dt.datetime(2025, 6, 30, 1, tzinfo=dt.UTC))
    assert ran == ["tiers.sweep"]
    with db.unit_of_work() as session:
        decided = tiers.tier_of(session, rid)
    assert decided is not None and decided.tier is Tier.green
