"""A known record re-sent with an ID number another registered resident holds: that row is
rejected with its line and reason, and the rest of the file goes in (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.tiers.builders import at, health_row, make_id, resident_id_of, run, seed_areas
from yiyang.db import Database
from yiyang.residents.models import Resident
from yiyang.sources.models import Feed, SourceRecord


def test_a_corrected_number_that_someone_else_holds_is_a_rejected_row(db: Database) -> None:
    seed_areas(db)
    wang = resident_id_of(run(db, Feed.health, [health_row("HR-1", "002", name="王秀兰")]), "HR-1")
    li = resident_id_of(
        run(db, Feed.health, [health_row("HR-2", "004", name="李桂英", phone="13912345678")]), "HR-2"
    )
    # the next health file re-sends HR-1 with the number Li holds, and brings a new resident
    report = run(
        db,
        Feed.health,
        [
            health_row("HR-1", "004", name="王秀兰", observed_at=at("2025-04-01")),
            health_row("HR-3", "006", name="张淑珍", line=3, birth_date=dt.date(1945, 3, 12)),
        ],
    )
    [rejection] = report.rejections
    assert (rejection.line, rejection.code, rejection.source_key) == (2, "resident.id_number.taken", "HR-1")
    assert report.counts["rejected"] == 1 and report.counts.get("updated", 0) == 0
    assert "HR-1" not in report.resident_ids and report.resident_ids["HR-3"] not in (wang, li)
    with db.unit_of_work() as session:
        # nothing of the refused row landed: Wang keeps her number and her record its old content
        assert session.get(Resident, wang).id_number == make_id("19450312", "002")
        assert session.get(Resident, li).id_number == make_id("19450312", "004")
        record = session.scalar(select(SourceRecord).where(SourceRecord.source_key == "HR-1"))
        assert record.id_number == make_id("19450312", "002")
    # the same number re-sent on Li's own record is no problem
    again = run(db, Feed.health, [health_row("HR-2", "004", name="李桂英", observed_at=at("2025-04-02"))])
    assert again.rejections == [] and again.counts["updated"] == 1
