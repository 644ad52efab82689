"""Which registered residents a batch loads as candidates for its rows without an ID number."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.residents.test_registry import health_row, make_id, run, seed_areas
from yiyang.db import Database
from yiyang.residents.models import Resident
from yiyang.sources import linkage
from yiyang.sources.models import Feed
from yiyang.sources.service import ImportRunner, start_run

BORN = dt.date(1945, 3, 12)


def test_a_shared_pinyin_loads_those_born_in_the_rows_year_or_on_its_day(db: Database) -> None:
    # given namesakes of the row's name (same pinyin) born in various ways, and others
    seed_areas(db)
    registered = {
        "same year": ("王秀兰", dt.date(1945, 9, 30)),
        "same day, other year": ("王秀兰", dt.date(1954, 3, 12)),
        "no birth date": ("王秀兰", None),
        "homophone, same year": ("王秀岚", dt.date(1945, 1, 1)),  # same pinyin, other characters
        "neither": ("王秀兰", dt.date(1960, 10, 10)),
        "same date, other surname": ("李秀兰", BORN),
    }
    rows = [
        health_row(n + 2, f"H{n}", name=name, birth_date=born, id_number=None, phone=None, address=None)
        for n, (name, born) in enumerate(registered.values())
    ]
    run(db, Feed.health, rows)
    with db.unit_of_work() as session:
        id_of = {
            (name, born): rid
            for rid, name, born in session.execute(select(Resident.id, Resident.name, Resident.birth_date))
        }
        # when a batch looks for candidates for a row without an ID number
        runner = ImportRunner(session, Feed.civil, start_run(session, Feed.civil, "candidates").id)
        keys = linkage.make_keys("王秀兰", "F", BORN, None, None)
        found = {resident_id for resident_id, _, _ in runner._load_candidates([keys], without_id=False)}
    # then it loads every namesake born in the row's year or on its day and month, or undated
    loaded = {label for label, identity in registered.items() if id_of[identity] in found}
    assert loaded >= {"same year", "same day, other year", "no birth date", "homophone, same year"}
    # and not the namesake born in another year on another day
    assert "neither" not in loaded


def test_a_row_without_a_birth_date_loads_every_namesake(db: Database) -> None:
    seed_areas(db)
    rows = [
        health_row(2, "H1", name="王秀兰", birth_date=dt.date(1945, 9, 30), id_number=None, phone=None),
        health_row(3, "H2", name="王秀兰", birth_date=dt.date(1960, 10, 10), id_number=None, phone=None),
        health_row(4, "H3", name="张建国", birth_date=BORN, id_number=make_id("19450312", "013"), phone=None),
    ]
    run(db, Feed.health, rows)
    with db.unit_of_work() as session:
        runner = ImportRunner(session, Feed.civil, start_run(session, Feed.civil, "candidates").id)
        keys = linkage.make_keys("王秀兰", "F", None, None, None)
        found = {resident_id for resident_id, _, _ in runner._load_candidates([keys], without_id=False)}
        namesakes = set(session.execute(select(Resident.id).where(Resident.name == "王秀兰")).scalars())
    assert found == namesakes and len(namesakes) == 2
