"""Importing the area tree and organisations: paths, idempotence, rejections, all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.geo.files import GEOGRAPHY, ORGANISATIONS, write
from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel, Organisation, OrganisationKind
from yiyang.geo.service import (
    GeoImportError,
    address_key,
    import_geography,
    import_organisations,
    parse_level,
    parse_organisation_kind,
)


def areas_by_code(database: Database) -> dict[str, Area]:
    with database.sessions() as session:
        return {area.code: area for area in session.scalars(select(Area))}


def count(database: Database, model: type) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_import_builds_the_tree_with_paths_from_the_district_down(db: Database, geography_file: Path) -> None:
    # given a district file with all four levels
    # when it is imported
    with db.unit_of_work() as session:
        report = import_geography(session, geography_file)
    # then every area hangs under its parent and carries the path of codes down to it
    assert report.applied and report.created == 9 and report.encoding == "utf-8"
    areas = areas_by_code(db)
    grid = areas["110108001001-01"]
    assert grid.level is AreaLevel.grid
    assert grid.path == "110108/110108001/110108001001/110108001001-01"
    assert grid.parent_id == areas["110108001001"].id
    assert areas["110108002"].parent_id == areas["110108"].id
    assert areas["110108"].parent_id is None and areas["110108"].path == "110108"


def test_children_listed_before_their_parents_import_the_same_tree(db: Database, tmp_path: Path) -> None:
    # given the same rows in reverse order (grids first, district last)
    header, *rows = GEOGRAPHY.strip().splitlines()
    reversed_file = write(tmp_path / "reversed.csv", "\n".join([header, *reversed(rows)]) + "\n")
    # when it is imported
    with db.unit_of_work() as session:
        report = import_geography(session, reversed_file)
    # then the tree is complete and the paths are right
    assert report.applied and report.created == 9
    assert areas_by_code(db)["110108002001-01"].path == "110108/110108002/110108002001/110108002001-01"


def test_reimport_updates_names_and_changes_nothing_else(
    db: Database, geography_file: Path, tmp_path: Path
) -> None:
    # given an imported district
    with db.unit_of_work() as session:
        import_geography(session, geography_file)
    before = {code: (a.id, a.parent_id, a.path, a.name) for code, a in areas_by_code(db).items()}
    # when the file comes again with one community renamed
    renamed = write(
        tmp_path / "renamed.csv", GEOGRAPHY.replace("和平里社区,110108001", "和平东里社区,110108001")
    )
    with db.unit_of_work() as session:
        report = import_geography(session, renamed)
    # then only that name changed: same ids, parents and paths, nothing created
    assert (report.created, report.updated, report.unchanged) == (0, 1, 8)
    after = {code: (a.id, a.parent_id, a.path, a.name) for code, a in areas_by_code(db).items()}
    assert after["110108001001"] == (*before["110108001001"][:3], "和平东里社区")
    assert {k: v for k, v in after.items() if k != "110108001001"} == {
        k: v for k, v in before.items() if k != "110108001001"
    }


def test_rejected_rows_name_their_line_and_reason_and_nothing_is_written(
    db: Database, tmp_path: Path
) -> None:
    # given a file with an unknown parent on line 4 and a grid hung under a street on line 5
    bad = write(
        tmp_path / "bad.csv",
        "层级,编码,名称,上级编码\n"
        "区,110108,海淀区,\n"
        "街道,110108001,东升街道,110108\n"
        "社区,110108009001,无主社区,110108009\n"
        "网格,110108001-01,错层网格,110108001\n"
        "层,110108001002,未知层级,110108001\n",
    )
    # when it is imported
    with db.unit_of_work() as session:
        report = import_geography(session, bad)
    # then each bad row is reported with its line, a machine code and a bilingual message
    assert not report.applied
    assert [(r.line, r.code) for r in report.rejections] == [
        (4, "geo.parent.unknown"),
        (5, "geo.level.order"),
        (6, "geo.level.unknown"),
    ]
    assert all("(" in r.message and r.message[0] > "\u2e80" for r in report.rejections)  # 中文 (English)
    # and not even the good rows were applied
    assert count(db, Area) == 0


def test_an_import_cannot_move_or_relevel_an_existing_area(
    db: Database, geography_file: Path, tmp_path: Path
) -> None:
    # given an imported district
    with db.unit_of_work() as session:
        import_geography(session, geography_file)
    # when a file moves a community to another street and turns a street into a community
    moved = GEOGRAPHY.replace(
        "社区,110108001002,幸福园社区,110108001", "社区,110108001002,幸福园社区,110108002"
    )
    moved = moved.replace("街道,110108002,西湖街道,110108", "社区,110108002,西湖街道,110108")
    with db.unit_of_work() as session:
        report = import_geography(session, write(tmp_path / "moved.csv", moved))
    # then both rows are rejected and the stored tree is as it was
    codes = {r.code for r in report.rejections}
    assert {"geo.parent.changed", "geo.level.changed"} <= codes
    areas = areas_by_code(db)
    assert areas["110108001002"].path == "110108/110108001/110108001002"
    assert areas["110108002"].level is AreaLevel.street


def test_duplicate_codes_are_rejected_with_the_first_line(db: Database, tmp_path: Path) -> None:
    twice = write(tmp_path / "twice.csv", GEOGRAPHY + "街道,110108001,东升街道,110108\n")
    with db.unit_of_work() as session:
        report = import_geography(session, twice)
    assert [(r.line, r.code) for r in report.rejections] == [(11, "geo.code.duplicate")]
    assert "3" in report.rejections[0].message


def test_a_gb18030_file_with_english_levels_imports(db: Database, tmp_path: Path) -> None:
    # given the file as a GB18030 export whose levels are written in English
    text = GEOGRAPHY
    for zh, en in (("区,", "district,"), ("街道,", "street,"), ("社区,", "community,"), ("网格,", "grid,")):
        text = text.replace("\n" + zh, "\n" + en)
    gb_file = write(tmp_path / "gb.csv", text, encoding="gb18030")
    # when it is imported
    with db.unit_of_work() as session:
        report = import_geography(session, gb_file)
    # then the encoding was recognised and the Chinese names survive intact
    assert report.applied and report.encoding == "gb18030"
    assert areas_by_code(db)["110108001001"].name == "和平里社区"


def test_a_file_without_the_required_columns_is_refused(db: Database, tmp_path: Path) -> None:
    no_parent = write(tmp_path / "cols.csv", "层级,编码,名称\n区,110108,海淀区\n")
    with db.unit_of_work() as session, pytest.raises(GeoImportError) as refused:
        import_geography(session, no_parent)
    assert refused.value.code == "geo.import.header"
    assert "上级编码" in refused.value.message


def test_organisations_import_with_chinese_kind_labels(
    db: Database, geography_file: Path, organisations_file: Path, tmp_path: Path
) -> None:
    # given the areas are imported
    with db.unit_of_work() as session:
        import_geography(session, geography_file)
    # when the organisations file is imported twice, the second time with a new phone number
    with db.unit_of_work() as session:
        first = import_organisations(session, organisations_file)
    changed = write(tmp_path / "orgs2.csv", ORGANISATIONS.replace("010-62345679", "010-62340000"))
    with db.unit_of_work() as session:
        second = import_organisations(session, changed)
    # then each kind is understood, and the re-import updated exactly one organisation
    assert (first.created, second.created, second.updated, second.unchanged) == (4, 0, 1, 3)
    with db.sessions() as session:
        orgs = {o.code: o for o in session.scalars(select(Organisation))}
        station = orgs["121101081234567891"]
        assert station.kind is OrganisationKind.health_station and station.phone == "010-62340000"
        assert orgs["521101081234567892"].phone is None
        assert session.get(Area, station.area_id).code == "110108001001"


def test_organisations_with_unknown_kind_or_area_reject_the_whole_file(
    db: Database, geography_file: Path, tmp_path: Path
) -> None:
    with db.unit_of_work() as session:
        import_geography(session, geography_file)
    bad = write(
        tmp_path / "bad_orgs.csv",
        ORGANISATIONS + "X1,某机构,菜市场,110108,,\nX2,另一机构,养老机构,110199001001,,\n",
    )
    with db.unit_of_work() as session:
        report = import_organisations(session, bad)
    assert [(r.line, r.code) for r in report.rejections] == [
        (6, "geo.organisation.kind"),
        (7, "geo.organisation.area"),
    ]
    assert count(db, Organisation) == 0


@pytest.mark.parametrize(
    ("cell", "level"),
    [
        ("区", AreaLevel.district),
        ("镇", AreaLevel.street),
        ("村", AreaLevel.community),
        (" Grid ", AreaLevel.grid),
    ],
)
def test_level_cells_in_chinese_or_english(cell: str, level: AreaLevel) -> None:
    assert parse_level(cell) is level


def test_unknown_level_and_kind_cells_are_none() -> None:
    assert parse_level("省") is None
    assert parse_organisation_kind("菜市场") is None
    assert parse_organisation_kind("养老驿站") is OrganisationKind.elderly_care_station
    assert parse_organisation_kind("health_centre") is OrganisationKind.health_centre


def test_address_key_ignores_spaces_and_full_width_forms() -> None:
    assert address_key(" 建设路１２号 3栋２单元４０１室 ") == address_key("建设路12号3栋2单元401室")
    assert address_key("ａ座1001") == "A座1001"
    assert address_key("建设路12号") != address_key("建设路21号")


def test_a_code_with_a_slash_is_rejected_so_no_area_lands_inside_another_ones_subtree(
    db: Database, tmp_path: Path
) -> None:
    # given a street whose code "110108001/9" reads, joined into a path, as an area under street 110108001
    bad = write(
        tmp_path / "slash.csv",
        "层级,编码,名称,上级编码\n区,110108,海淀区,\n街道,110108001,东升街道,110108\n街道,110108001/9,假街道,110108\n",
    )
    # when it is imported
    with db.unit_of_work() as session:
        report = import_geography(session, bad)
    # then the row is refused with its line, and nothing is written
    assert [(r.line, r.code) for r in report.rejections] == [(4, "geo.code.invalid")]
    assert count(db, Area) == 0


def test_control_characters_are_rejected_rows_not_a_database_error(db: Database, tmp_path: Path) -> None:
    # given a name with a NUL byte (PostgreSQL cannot store one) and an organisation address with one
    areas = write(tmp_path / "nul.csv", "层级,编码,名称,上级编码\n区,110108,海淀\x00区,\n")
    with db.unit_of_work() as session:
        report = import_geography(session, areas)
    # then the row is rejected like any other bad row
    assert [(r.line, r.code, r.column) for r in report.rejections] == [(2, "geo.name.invalid", "名称")]
    assert count(db, Area) == 0
    with db.unit_of_work() as session:
        import_geography(session, write(tmp_path / "ok.csv", GEOGRAPHY))
    orgs = write(tmp_path / "orgs.csv", ORGANISATIONS.replace("建设路22号", "建设路\x0022号"))
    with db.unit_of_work() as session:
        report = import_organisations(session, orgs)
    assert [(r.line, r.code, r.column) for r in report.rejections] == [(4, "geo.organisation.text", "地址")]
    assert count(db, Organisation) == 0


def test_a_cell_the_csv_reader_cannot_take_refuses_the_file_with_a_code(db: Database, tmp_path: Path) -> None:
    # given a file with a cell beyond the CSV reader's size limit (a stray quote swallowing the file)
    huge = write(tmp_path / "huge.csv", '层级,编码,名称,上级编码\n区,110108,"' + "海" * 200_000 + '",\n')
    # when it is imported, then it is refused as unreadable with its code and line, not a crash
    with db.unit_of_work() as session, pytest.raises(GeoImportError) as refused:
        import_geography(session, huge)
    assert refused.value.code == "geo.import.csv" and "第2行" in refused.value.message
    assert count(db, Area) == 0


def test_codes_typed_with_full_width_digits_or_spaces_are_the_same_codes(
    db: Database, geography_file: Path, tmp_path: Path
) -> None:
    # given the district imported, then a file adding a community whose parent code is typed in
    # full-width digits and whose own code has a space, and an organisation placed the same way
    with db.unit_of_work() as session:
        import_geography(session, geography_file)
    more = write(
        tmp_path / "more.csv",
        "层级,编码,名称,上级编码\n社区,110108002 002,新建社区,１１０１０８００２\n",
    )
    with db.unit_of_work() as session:
        report = import_geography(session, more)
    # then the community hangs under the stored street with the code as the feeds write it
    assert report.applied, report.rejections
    assert areas_by_code(db)["110108002002"].path == "110108/110108002/110108002002"
    orgs = write(
        tmp_path / "orgs.csv",
        "机构编码,机构名称,机构类型,所属区划编码,地址,电话\n X1 ,新建社区养老驿站,养老驿站,１１０１０８００２００２,,\n",
    )
    with db.unit_of_work() as session:
        assert import_organisations(session, orgs).applied
    with db.sessions() as session:
        station = session.scalars(select(Organisation).where(Organisation.code == "X1")).one()
        assert session.get_one(Area, station.area_id).code == "110108002002"
