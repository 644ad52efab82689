"""Which registered residents a batch loads as candidates for its rows without an ID number."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text

from tests.residents.test_registry import civil_row, health_row, make_id, run, seed_areas
from yiyang.db import Database
from yiyang.residents.models import Resident
from yiyang.sources import linkage
from yiyang.sources.models import Feed
from yiyang.sources.service import BORN_SURNAME, PINYIN_DAY, PINYIN_YEAR, ImportRunner, start_run

BORN = dt.date(1945, 3, 12)


def test_a_shared_pinyin_loads_those_born_in_the_rows_year_or_on_its_day(db: Database) -> None:
    # given namesakes of the row's name (same pinyin) born in various ways, and others
    seed_areas(db)
    registered = {
        "same year": ("王秀兰", dt.date(1945, 9, 30)),
        "same day, other year": ("王秀兰", dt.date(1954, 3, 12)),
        "no birth date": ("王秀兰", None),
        "homophone, same year": ("王秀岚", dt.date(1945, 1, 1)),  # same pinyin, other characters
        "heard alike, same day": ("万秀兰", dt.date(1951, 3, 12)),  # wan for wang: folds alike
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
    assert loaded >= {
        "same year", "same day, other year", "no birth date", "homophone, same year", "heard alike, same day"
    }  # fmt: skip
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


def test_a_row_loads_those_born_on_its_day_whose_surname_folds_alike(db: Database) -> None:
    # given residents born on the row's birth date under surnames heard alike (zh/z, an/ang)
    seed_areas(db)
    registered = {
        "章 zhang": ("章丽华", BORN, "F"),
        "臧 zang": ("臧建国", BORN, "M"),
        "詹 zhan": ("詹明德", BORN, "M"),
        "李 li": ("李秀英", BORN, "F"),
        "张 zhang, another year": ("张桂芝", dt.date(1950, 1, 1), "F"),
    }
    rows = [
        health_row(
            n + 2, f"H{n}", name=name, birth_date=born, sex=sex, id_number=None, phone=None, address=None
        )
        for n, (name, born, sex) in enumerate(registered.values())
    ]
    run(db, Feed.health, rows)
    with db.unit_of_work() as session:
        id_of = {name: rid for rid, name in session.execute(select(Resident.id, Resident.name))}
        # when a batch looks for candidates for 张秀兰 born that day
        runner = ImportRunner(session, Feed.civil, start_run(session, Feed.civil, "candidates").id)
        keys = linkage.make_keys("张秀兰", "F", BORN, None, None)
        found = {resident_id for resident_id, _, _ in runner._load_candidates([keys], without_id=False)}
    loaded = {label for label, (name, _, _) in registered.items() if id_of[name] in found}
    # then it loads every one of the (birth date, surname) block, and no one else
    assert loaded == {"章 zhang", "臧 zang", "詹 zhan"}


def test_every_pinyin_syllable_unfolds_from_its_fold() -> None:
    from pypinyin import lazy_pinyin

    syllables = {s for s in lazy_pinyin([chr(code) for code in range(0x4E00, 0x9FA6)]) if s.isalpha()}
    assert len(syllables) > 380  # the toneless syllables of Mandarin, about four hundred
    missing = {s for s in syllables if s not in linkage.unfold_syllable(linkage.fold_syllable(s))}
    assert not missing
    # and unfolding stays narrow: a syllable's variants, not every syllable
    assert set(linkage.unfold_syllable(linkage.fold_syllable("zhang"))) == {"zan", "zhan", "zang", "zhang"}
    assert linkage.unfold_syllable("lu") == ("lu", "nu")


def test_the_keys_a_batch_asks_for_are_what_postgresql_indexes(pg_db: Database) -> None:
    # given residents stored with pinyin, birth dates before and after 2000-01-01
    seed_areas(pg_db)
    people = [
        ("张秀兰", dt.date(1945, 3, 12)),
        ("宁建国", dt.date(2003, 7, 1)),
        ("欧阳明", dt.date(2000, 1, 1)),
    ]
    rows = [
        health_row(n + 2, f"H{n}", name=name, birth_date=born, id_number=None, phone=None, address=None)
        for n, (name, born) in enumerate(people)
    ]
    run(pg_db, Feed.health, rows)
    columns = ", ".join((BORN_SURNAME, PINYIN_YEAR[True], PINYIN_DAY[True]))
    with pg_db.unit_of_work() as session:
        stored = {
            name: keys for name, *keys in session.execute(text(f"SELECT name, {columns} FROM resident"))
        }
        indexes = set(
            session.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'resident'")).scalars()
        )
        # when a batch asks for the blocks of rows for the same people
        runner = ImportRunner(session, Feed.civil, start_run(session, Feed.civil, "candidates").id)
        params: dict = {}
        runner._name_clause([linkage.make_keys(name, "F", born, None, None) for name, born in people], params)
    # then the keys it asks for are the ones the indexes hold for the residents
    for name, born in people:
        born_surname, pinyin_year, pinyin_day = stored[name]
        asked, nameless = linkage.born_surname_keys([linkage.make_keys(name, "F", born, None, None)])
        assert born_surname in asked and not nameless
        assert pinyin_year in params["pinyin_year"] and pinyin_day in params["pinyin_day"]
    assert stored["宁建国"][0].startswith("ning|") and stored["宁建国"][1:] == [
        "ning jian guo|2003",
        "ning jian guo|701",
    ]
    # and the indexes are there (migration 0016)
    assert {
        "ix_resident_born_surname", "ix_resident_pinyin_year", "ix_resident_pinyin_day", "ix_resident_undated_pinyin"
    } <= indexes  # fmt: skip


def test_a_name_asks_for_its_spellings_heard_alike_up_to_a_bound() -> None:
    # 程秀兰: cheng folds to cen, lan stays lan (its ang form lang folds to it too)
    spellings = linkage.unfold_name(linkage.make_keys("程秀兰", "F", BORN, None, None))
    assert spellings[0] == "cheng xiu lan"
    assert {"chen xiu lan", "cen xiu lan", "ceng xiu lan", "cheng xiu lang", "cen xiu nan"} <= set(spellings)
    assert len(spellings) == len(set(spellings)) == 4 * 2 * 2
    # a name of many folded syllables asks for its own spelling only
    long_name = linkage.make_keys("张长生沈诚章", "M", BORN, None, None)
    assert len(long_name.syllables) == 6
    assert linkage.unfold_name(long_name) == (long_name.name_pinyin,)


def test_a_name_heard_alike_with_a_slipped_day_is_compared_not_made_new(db: Database) -> None:
    # given 陈卫东 registered with his ID number, and no one else born in 1960
    seed_areas(db)
    registered = health_row(
        2,
        "H1",
        name="陈卫东",
        sex="M",
        birth_date=dt.date(1960, 4, 19),
        id_number=make_id("19600419", "013"),
        phone=None,
    )
    run(db, Feed.health, [registered])
    # when the civil roster lists him as 程卫东 (cheng for chen), born on the 29th, with no ID number or phone
    row = civil_row(
        2, "C1", name="程卫东", sex="M", birth_date=dt.date(1960, 4, 29), id_number=None, phone=None,
        address=registered.address,
    )  # fmt: skip
    report = run(db, Feed.civil, [row])
    # then linkage compares the row with him (the (folded pinyin, birth year) block) instead of
    # making a new resident: the only resident it could share a block with is found by name
    assert report.counts["new_resident"] == 0
    assert report.counts["linked_probabilistic"] + report.counts["linked_review"] == 1


def test_the_candidate_query_reads_the_blocks_by_index_and_leaves_the_setting_as_it_was(
    pg_db: Database,
) -> None:
    seed_areas(pg_db)
    with pg_db.unit_of_work() as session:
        runner = ImportRunner(session, Feed.civil, start_run(session, Feed.civil, "candidates").id)
        setting = text("SELECT current_setting('enable_seqscan')")
        before = session.execute(setting).scalar_one()
        # the statement runs with sequential scans ruled out (the planner overprices the blocks)
        assert runner._by_blocks(setting, {}) == [("off",)]
        # and the rest of the transaction keeps the setting it had
        assert session.execute(setting).scalar_one() == before == "on"
    with pg_db.unit_of_work() as session:
        # a transaction that had turned them off itself keeps them off
        session.execute(text("SET LOCAL enable_seqscan = off"))
        runner = ImportRunner(session, Feed.civil, start_run(session, Feed.civil, "candidates").id)
        runner._by_blocks(setting, {})
        assert session.execute(setting).scalar_one() == "off"


def test_an_import_run_compiles_no_jit_and_the_rest_of_the_transaction_may(pg_db: Database) -> None:
    from yiyang.sources.service import custom_plans

    jit = text("SELECT current_setting('jit')")
    with pg_db.unit_of_work() as session:
        before = session.execute(jit).scalar_one()
    with pg_db.unit_of_work() as session:
        with custom_plans(session):
            assert session.execute(jit).scalar_one() == "off"
        # and the rest of the caller's transaction gets back what it had
        assert session.execute(jit).scalar_one() == before
