"""The synthetic district: same seed same files, valid identities, truth for every row, real shares."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from openpyxl import load_workbook

from yiyang.db import Database
from yiyang.demo.synthetic import (
    REFERENCE_DATE,
    DistrictFiles,
    NoiseConfig,
    credit_code_check,
    generate_district,
    organisation_code_check,
)
from yiyang.geo.service import import_geography, import_organisations
from yiyang.residents.identity import IdNumberError, age_on, parse_id_number
from yiyang.sources.records import CIVIL_COLUMNS, HEALTH_COLUMNS, INSURANCE_COLUMNS

PEOPLE = 5_000


def read_csv(path: Path, encoding: str) -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.DictReader(handle))


def read_civil(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".csv":
        return read_csv(path, "gb18030")
    sheet = load_workbook(path, read_only=True).worksheets[0]
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    return [{h: ("" if v is None else v) for h, v in zip(header, row, strict=True)} for row in rows]


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> DistrictFiles:
    return generate_district(tmp_path_factory.mktemp("district"), PEOPLE, seed=7)


@pytest.fixture(scope="module")
def feeds(district: DistrictFiles) -> dict[str, list[dict[str, str]]]:
    return {
        "health": read_csv(district.health, "utf-8"),
        "insurance": read_csv(district.insurance, "gb18030"),
        "civil": read_civil(district.civil),
    }


@pytest.fixture(scope="module")
def truth(district: DistrictFiles) -> dict[tuple[str, str], dict[str, str]]:
    rows = read_csv(district.truth, "utf-8")
    return {(row["feed"], row["source_key"]): row for row in rows}


KEY_HEADER = {"health": "健康档案编号", "insurance": "结算单号", "civil": "人员编号"}


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first = generate_district(tmp_path / "a", 300, seed=11)
    second = generate_district(tmp_path / "b", 300, seed=11)
    other = generate_district(tmp_path / "c", 300, seed=12)
    assert digest(first.directory) == digest(second.directory)
    assert first.counts == second.counts
    assert digest(other.directory)["health.csv"] != digest(first.directory)["health.csv"]


def test_files_do_not_depend_on_the_process_hash_seed(tmp_path: Path) -> None:
    # given the generator run in another process with a different string-hash seed
    script = "import sys; from yiyang.demo.synthetic import generate_district; generate_district(sys.argv[1], 200, seed=5)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "other")], check=True, env=env)
    # when the same district is generated here
    generate_district(tmp_path / "here", 200, seed=5)
    # then the files are identical
    assert digest(tmp_path / "other") == digest(tmp_path / "here")


def test_headers_are_the_canonical_headers_of_the_feed_spec(district: DistrictFiles) -> None:
    for path, encoding, columns in (
        (district.health, "utf-8", HEALTH_COLUMNS),
        (district.insurance, "gb18030", INSURANCE_COLUMNS),
    ):
        with path.open(encoding=encoding, newline="") as handle:
            assert next(csv.reader(handle)) == [c.headers[0] for c in columns]
    assert list(read_civil(district.civil)[0]) == [c.headers[0] for c in CIVIL_COLUMNS]


def test_every_spec_column_is_filled_somewhere(feeds: dict[str, list[dict[str, str]]]) -> None:
    for feed, columns in (
        ("health", HEALTH_COLUMNS),
        ("insurance", INSURANCE_COLUMNS),
        ("civil", CIVIL_COLUMNS),
    ):
        for column in columns:
            assert any(row[column.headers[0]] for row in feeds[feed]), (feed, column.field)


def test_insurance_file_is_gb18030_and_round_trips(district: DistrictFiles) -> None:
    raw = district.insurance.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gb18030")
    assert text.encode("gb18030") == raw
    rows = list(csv.DictReader(io.StringIO(text)))
    assert all("\u4e00" <= row["参保人姓名"][0] <= "\u9fff" for row in rows)


def test_truth_covers_every_row_of_every_feed_once(
    feeds: dict[str, list[dict[str, str]]], truth: dict[tuple[str, str], dict[str, str]]
) -> None:
    keys = [(feed, row[KEY_HEADER[feed]]) for feed, rows in feeds.items() for row in rows]
    assert len(keys) == len(set(keys)) == len(truth)
    assert set(keys) == set(truth)
    assert all(row["person_id"].startswith("P") for row in truth.values())


def test_every_id_number_is_valid_except_the_rows_meant_to_be_rejected(
    feeds: dict[str, list[dict[str, str]]], truth: dict[tuple[str, str], dict[str, str]]
) -> None:
    reasons: Counter[str] = Counter()
    for feed, rows in feeds.items():
        for row in rows:
            expected = truth[(feed, row[KEY_HEADER[feed]])]
            number = row["身份证号"]
            if expected["reason"] == "id_checksum":
                with pytest.raises(IdNumberError) as bad:
                    parse_id_number(number, today=REFERENCE_DATE)
                assert bad.value.code == "resident.id_number.checksum"
            elif number:
                identity = parse_id_number(number, today=REFERENCE_DATE)
                sex = "M" if row["性别"] == "男" else "F"
                assert (sex == identity.sex) == (expected["reason"] != "sex_mismatch")
                if expected["expected"] == "accept" and row.get("出生日期"):
                    assert row["出生日期"] == identity.birth_date.isoformat()
                assert 60 <= age_on(identity.birth_date, REFERENCE_DATE) <= 100
            reasons[expected["reason"]] += 1
    # and each kind of deliberate mistake occurs
    assert {"id_checksum", "sex_mismatch", "impossible_date", "unknown_community"} <= set(reasons)


def test_rows_meant_to_be_rejected_are_a_small_share(truth: dict[tuple[str, str], dict[str, str]]) -> None:
    rejected = sum(1 for row in truth.values() if row["expected"] == "reject")
    assert 0.001 < rejected / len(truth) < 0.006


def test_feed_coverage_and_id_noise_match_the_defaults(
    feeds: dict[str, list[dict[str, str]]], truth: dict[tuple[str, str], dict[str, str]]
) -> None:
    people = {
        feed: {truth[(feed, row[KEY_HEADER[feed]])]["person_id"] for row in rows}
        for feed, rows in feeds.items()
    }
    assert 0.93 < len(people["health"]) / PEOPLE < 0.97
    assert 0.82 < len(people["insurance"]) / PEOPLE < 0.88
    assert abs(len(people["civil"]) / PEOPLE - 0.45) < 0.02
    claims = Counter(truth[("insurance", row["结算单号"])]["person_id"] for row in feeds["insurance"])
    assert set(claims.values()) <= {1, 2, 3, 4}
    for feed in ("insurance", "civil"):
        rows = feeds[feed]
        blank = sum(1 for row in rows if not row["身份证号"]) / len(rows)
        legacy = sum(1 for row in rows if len(row["身份证号"]) == 15) / len(rows)
        assert 0.08 <= blank <= 0.12, feed
        assert 0.008 <= legacy <= 0.035, feed
    assert all(row["身份证号"] for row in feeds["health"])


def test_health_records_show_published_prevalence(feeds: dict[str, list[dict[str, str]]]) -> None:
    rows = feeds["health"]
    n = len(rows)

    def share(predicate) -> float:  # type: ignore[no-untyped-def]
        return sum(1 for row in rows if predicate(row)) / n

    assert 0.50 <= share(lambda r: "I10 " in r["慢病诊断"]) <= 0.62  # hypertension ~55%
    assert 0.18 <= share(lambda r: "E11.9 " in r["慢病诊断"]) <= 0.26  # diabetes ~22%
    assert (
        0.045 <= share(lambda r: "F03 " in r["慢病诊断"] or "G30.9 " in r["慢病诊断"]) <= 0.075
    )  # dementia ~6%
    assert 0.10 <= share(lambda r: r["居住情况"] == "独居") <= 0.15
    assert 0.55 <= share(lambda r: r["居住情况"] in ("独居", "空巢")) <= 0.65
    employee = share(lambda r: r["医疗费用支付方式"] == "城镇职工基本医疗保险")
    assert 0.57 <= employee <= 0.67


def test_age_structure_leans_young_old_with_more_women_at_older_ages(
    feeds: dict[str, list[dict[str, str]]],
) -> None:
    ages = [
        (age_on(dt.date.fromisoformat(row["出生日期"]), REFERENCE_DATE), row["性别"])
        for row in feeds["health"]
        if row["出生日期"][5:7] <= "12"
    ]
    assert min(a for a, _ in ages) >= 60 and max(a for a, _ in ages) <= 100
    sixties = [sex for age, sex in ages if age < 70]
    eighty_plus = [sex for age, sex in ages if age >= 80]
    assert 0.53 <= len(sixties) / len(ages) <= 0.59  # census 2020: 56% of 60+ are 60-69
    assert 0.11 <= len(eighty_plus) / len(ages) <= 0.16  # and 13.5% are 80+
    assert eighty_plus.count("女") / len(eighty_plus) > sixties.count("女") / len(sixties) + 0.04


def test_capability_levels_rise_with_age_in_the_civil_roster(feeds: dict[str, list[dict[str, str]]]) -> None:
    levels = Counter(row["失能等级"] for row in feeds["civil"])
    assert set(levels) <= {"", "能力完好", "轻度失能", "中度失能", "重度失能", "完全失能"}
    assert levels["轻度失能"] > levels["中度失能"] > levels["完全失能"] > 0
    assert levels[""] > 0  # blank when never assessed
    assert {row["低保"] for row in feeds["civil"]} == {"是", "否"}
    assert set(row["残疾等级"] for row in feeds["civil"]) <= {"", "一级", "二级", "三级", "四级"}


def test_couples_share_an_address_and_people_living_alone_do_not(
    feeds: dict[str, list[dict[str, str]]],
) -> None:
    rows = feeds["health"]
    at_address = Counter(row["现住址"] + row["所属网格"] for row in rows)
    shared = [row for row in rows if at_address[row["现住址"] + row["所属网格"]] == 2]
    assert shared, "some couples live together"
    assert all(row["居住情况"] != "独居" for row in shared)


def test_community_cells_are_codes_or_names_of_known_communities(
    district: DistrictFiles,
    feeds: dict[str, list[dict[str, str]]],
    truth: dict[tuple[str, str], dict[str, str]],
) -> None:
    geography = read_csv(district.geography, "utf-8")
    codes = {row["编码"] for row in geography if row["层级"] == "社区"}
    names = {row["名称"] for row in geography if row["层级"] == "社区"}
    grids = {row["编码"] for row in geography if row["层级"] == "网格"}
    as_name = 0
    for feed in ("health", "civil"):
        for row in feeds[feed]:
            cell = row["所属社区"]
            if truth[(feed, row[KEY_HEADER[feed]])]["reason"] == "unknown_community":
                assert cell not in codes and cell not in names
                continue
            assert cell in codes or cell in names
            as_name += cell in names
            assert len(cell) == 12 or cell in names
    assert as_name > 0
    assert all(row["所属网格"] in grids for row in feeds["health"] if row["所属网格"])


def test_geography_and_organisation_files_import_cleanly(
    district: DistrictFiles, sqlite_db: Database
) -> None:
    with sqlite_db.unit_of_work() as session:
        areas = import_geography(session, district.geography)
        organisations = import_organisations(session, district.organisations)
    assert areas.applied and organisations.applied, (areas.rejections[:3], organisations.rejections[:3])
    expected_areas = (
        1 + district.counts["streets"] + district.counts["communities"] + district.counts["grids"]
    )
    assert areas.created == expected_areas
    assert organisations.created == district.counts["organisations"]


def test_organisation_codes_carry_valid_check_characters(district: DistrictFiles) -> None:
    for row in read_csv(district.organisations, "utf-8"):
        code = row["机构编码"]
        assert len(code) == 18
        assert code[17] == credit_code_check(code[:17])
        assert code[16] == organisation_code_check(code[8:16])


def test_credit_code_check_matches_a_published_example() -> None:
    # GB 32100-2015 appendix-style example code 91350100M000100Y43: check character 3.
    assert credit_code_check("91350100M000100Y4") == "3"


def test_civil_roster_as_gb18030_csv_on_request(tmp_path: Path) -> None:
    files = generate_district(tmp_path, 200, civil_format="csv")
    assert files.civil.name == "civil.csv"
    rows = read_csv(files.civil, "gb18030")
    assert len(rows) == files.counts["civil_rows"]


def test_no_noise_gives_clean_feeds(tmp_path: Path) -> None:
    quiet = NoiseConfig(
        missing_id=0, legacy_id_15=0, name_typo=0, phone_missing=0, phone_changed=0, phone_transposed=0,
        address_moved=0, community_as_name=0, invalid_rows=0, health_phone_missing=0,
    )  # fmt: skip
    files = generate_district(tmp_path, 300, noise=quiet)
    insurance = read_csv(files.insurance, "gb18030")
    assert all(len(row["身份证号"]) == 18 for row in insurance)
    assert files.counts["rejected_rows"] == 0
