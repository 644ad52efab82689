"""Reading the agency feeds into validated rows: formats, headers, values and every rejection."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path

import pytest
from openpyxl import Workbook

from yiyang.residents.identity import IdNumberError, check_character, parse_id_number
from yiyang.sources.feeds import (
    FEED_FIELDS,
    CommunityDirectory,
    FeedError,
    RowError,
    parse_conditions,
    parse_icd10,
    read_feed,
)
from yiyang.sources.models import Feed
from yiyang.sources.records import FEED_COLUMNS, RowRejection, SourceRow

TODAY = dt.date(2026, 1, 1)
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "docs" / "samples"


def id_number(birth: str = "19480312", sequence: str = "024", area: str = "110108") -> str:
    first17 = area + birth + sequence
    return first17 + check_character(first17)


WANG_ID = id_number()  # a woman born 1948-03-12
WANG_PHONE = "13911002345"

DIRECTORY = CommunityDirectory.from_areas(
    [
        ("区", "110108000000", "海淀区", None),
        ("街道", "110108001000", "万寿路街道", "110108000000"),
        ("街道", "110108002000", "永定路街道", "110108000000"),
        ("社区", "110108001001", "翠微路社区", "110108001000"),
        ("社区", "110108001002", "复兴路社区", "110108001000"),
        ("社区", "110108001003", "新村社区", "110108001000"),
        ("社区", "110108002003", "新村社区", "110108002000"),
        ("网格", "110108001001-01", "翠微路社区第一网格", "110108001001"),
        ("网格", "110108001001-02", "翠微路社区第二网格", "110108001001"),
        ("网格", "110108001002-01", "复兴路社区第一网格", "110108001002"),
    ]
)

HEALTH = {
    "健康档案编号": "11010800100100001",
    "姓名": "王秀英",
    "性别": "女",
    "出生日期": "1948-03-12",
    "身份证号": WANG_ID,
    "联系电话": WANG_PHONE,
    "现住址": "北京市海淀区翠微路2号院3号楼2单元501",
    "所属社区": "110108001001",
    "所属网格": "110108001001-01",
    "居住情况": "独居",
    "医疗费用支付方式": "城镇职工基本医疗保险",
    "慢病诊断": "高血压;2型糖尿病",
    "收缩压": "146",
    "舒张压": "88",
    "空腹血糖": "7.8",
    "测量日期": "2025-09-10",
    "更新日期": "2025-09-12",
}
INSURANCE = {
    "结算单号": "110108202509010001",
    "参保人姓名": "王秀英",
    "身份证号": WANG_ID,
    "性别": "女",
    "联系电话": WANG_PHONE,
    "参保类型": "城镇职工基本医疗保险",
    "就诊日期": "2025-09-01",
    "定点医药机构": "北京市海淀区万寿路社区卫生服务中心",
    "诊断编码": "I10.x00",
    "诊断名称": "高血压",
    "长处方": "是",
    "医疗总费用": "326.50",
}
CIVIL = {
    "人员编号": "MZ2025000101",
    "姓名": "王秀英",
    "身份证号": WANG_ID,
    "性别": "女",
    "出生日期": "1948-03-12",
    "联系电话": WANG_PHONE,
    "居住地址": "北京市海淀区翠微路2号院3号楼2单元501",
    "所属社区": "翠微路社区",
    "居住状况": "独居",
    "失能等级": "轻度失能",
    "残疾等级": "二级",
    "低保": "否",
    "特困": "否",
    "更新日期": "2025-09-15",
}
BASE = {Feed.health: HEALTH, Feed.insurance: INSURANCE, Feed.civil: CIVIL}


def _cell(value: str) -> str:
    if any(mark in value for mark in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def write_csv(
    path: Path, rows: list[dict[str, str]], encoding: str = "utf-8", header: list[str] | None = None
) -> Path:
    header = header or list(rows[0])
    lines = [",".join(header)] + [",".join(_cell(row.get(name, "")) for name in header) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def read_rows(
    path: Path, feed: Feed, directory: CommunityDirectory = DIRECTORY
) -> list[SourceRow | RowRejection]:
    return list(read_feed(path, feed, directory, today=TODAY))


def read_one(tmp_path: Path, feed: Feed, changes: dict[str, str] | None = None) -> SourceRow | RowRejection:
    row = {**BASE[feed], **(changes or {})}
    (result,) = read_rows(write_csv(tmp_path / f"{feed.value}.csv", [row]), feed)
    return result


# ------------------------------------------------------------------ accepted rows


def test_a_health_row_becomes_a_source_row_in_registry_terms(tmp_path: Path) -> None:
    # given a complete health-file row
    # when it is read
    row = read_one(tmp_path, Feed.health)
    # then identity, place, attributes, conditions and measurements are all in the registry's terms
    assert isinstance(row, SourceRow)
    assert (row.feed, row.line, row.source_key) == (Feed.health, 2, "11010800100100001")
    assert (row.name, row.id_number, row.sex, row.birth_date) == (
        "王秀英",
        WANG_ID,
        "F",
        dt.date(1948, 3, 12),
    )
    assert row.phone == WANG_PHONE
    assert (row.community_code, row.grid_code) == ("110108001001", "110108001001-01")
    assert row.attributes == {"living_arrangement": "alone", "insurance_type": "employee"}
    assert [(c.code, c.display) for c in row.conditions] == [("I10", "高血压"), ("E11", "2型糖尿病")]
    bp, glucose = row.observations
    measured = dt.datetime(2025, 9, 10, tzinfo=dt.UTC)
    assert (bp.code, bp.value, bp.value2, bp.unit, bp.effective_at) == (
        "85354-9",
        146.0,
        88.0,
        "mm[Hg]",
        measured,
    )
    assert (glucose.code, glucose.value, glucose.unit) == ("14771-0", 7.8, "mmol/L")
    # observed_at is the update day at 00:00 UTC, so the calendar day is the same in China time
    assert row.observed_at == dt.datetime(2025, 9, 12, tzinfo=dt.UTC)
    assert row.observed_at.astimezone(dt.timezone(dt.timedelta(hours=8))).date() == dt.date(2025, 9, 12)


def test_an_insurance_row_carries_its_diagnoses_with_the_long_prescription_flag(tmp_path: Path) -> None:
    # given a settlement row with two diagnoses and a long prescription
    row = read_one(tmp_path, Feed.insurance, {"诊断编码": "I10;E78.5", "诊断名称": "高血压;高脂血症"})
    # then each code is a condition with its own name, flagged as long prescription
    assert isinstance(row, SourceRow)
    assert [(c.code, c.display, c.long_prescription) for c in row.conditions] == [
        ("I10", "高血压", True),
        ("E78.5", "高脂血症", True),
    ]
    assert row.observed_at == dt.datetime(2025, 9, 1, tzinfo=dt.UTC)
    assert row.attributes["insurance_type"] == "employee"
    assert row.attributes["total_cost"] == 326.5
    assert row.community_code is None


def test_a_civil_row_reads_capability_disability_and_allowances(tmp_path: Path) -> None:
    row = read_one(tmp_path, Feed.civil)
    assert isinstance(row, SourceRow)
    assert row.community_code == "110108001001"  # resolved from the name 翠微路社区
    assert row.attributes == {
        "living_arrangement": "alone",
        "capability_level": "mild",
        "disability_cert_grade": 2,
        "dibao": False,
        "tekun": False,
    }


def test_a_legacy_15_digit_id_is_upgraded_and_gives_sex_and_birth_date(tmp_path: Path) -> None:
    # given a civil row with only a 15-digit ID number (born 1945-11-02, odd sequence: male)
    legacy = "110108451102031"
    row = read_one(tmp_path, Feed.civil, {"身份证号": legacy, "性别": "", "出生日期": ""})
    # then the 18-character form is kept and the upgrade is recorded
    assert isinstance(row, SourceRow)
    assert row.id_number == parse_id_number(legacy).number
    assert len(row.id_number) == 18 and row.id_number[6:8] == "19"
    assert row.id_upgraded_from_15 is True
    assert (row.sex, row.birth_date) == ("M", dt.date(1945, 11, 2))


def test_without_an_id_number_sex_and_birth_date_come_from_their_columns(tmp_path: Path) -> None:
    row = read_one(tmp_path, Feed.civil, {"身份证号": "", "性别": "2", "出生日期": "1939/12/05"})
    assert isinstance(row, SourceRow)
    assert (row.id_number, row.sex, row.birth_date) == (None, "F", dt.date(1939, 12, 5))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2025-09-12", dt.date(2025, 9, 12)), ("2025/9/12", dt.date(2025, 9, 12)), ("20250912", dt.date(2025, 9, 12)),
     ("2025.09.12", dt.date(2025, 9, 12)), ("2025-09-12 00:00:00", dt.date(2025, 9, 12))],
)  # fmt: skip
def test_dates_are_read_in_the_common_spellings(tmp_path: Path, text: str, expected: dt.date) -> None:
    row = read_one(tmp_path, Feed.civil, {"更新日期": text})
    assert isinstance(row, SourceRow)
    assert row.observed_at.date() == expected


@pytest.mark.parametrize(
    ("feed", "header", "text", "attribute", "expected"),
    [
        (Feed.health, "居住情况", "空巢", "living_arrangement", "spouse_only"),
        (Feed.health, "居住情况", "仅与配偶同住", "living_arrangement", "spouse_only"),
        (Feed.health, "居住情况", "与子女同住", "living_arrangement", "with_family"),
        (Feed.health, "居住情况", "其他", "living_arrangement", "with_family"),
        (Feed.health, "医疗费用支付方式", "新农合", "insurance_type", "resident"),
        (Feed.health, "医疗费用支付方式", "7", "insurance_type", "self_pay"),
        (Feed.health, "医疗费用支付方式", "商业医疗保险", "insurance_type", "other"),
        (Feed.insurance, "参保类型", "职工医保", "insurance_type", "employee"),
        (Feed.insurance, "参保类型", "全自费", "insurance_type", "self_pay"),
        (Feed.civil, "失能等级", "完全失能", "capability_level", "total"),
        (Feed.civil, "失能等级", "3", "capability_level", "severe"),
        (Feed.civil, "失能等级", "0", "capability_level", "intact"),
        (Feed.civil, "残疾等级", "一级", "disability_cert_grade", 1),
        (Feed.civil, "残疾等级", "4", "disability_cert_grade", 4),
        (Feed.civil, "低保", "Y", "dibao", True),
        (Feed.civil, "特困", "1", "tekun", True),
        (Feed.civil, "低保", "N", "dibao", False),
    ],
)
def test_values_are_mapped_through_the_vocabularies(
    tmp_path: Path, feed: Feed, header: str, text: str, attribute: str, expected: object
) -> None:
    row = read_one(tmp_path, feed, {header: text})
    assert isinstance(row, SourceRow)
    assert row.attributes[attribute] == expected


@pytest.mark.parametrize(
    ("text", "sex"), [("男", "M"), ("女", "F"), ("1", "M"), ("2", "F"), ("0", None), ("9", None)]
)
def test_sex_is_read_as_words_or_gb_t_2261_codes(tmp_path: Path, text: str, sex: str | None) -> None:
    row = read_one(tmp_path, Feed.civil, {"身份证号": "", "性别": text})
    assert isinstance(row, SourceRow)
    assert row.sex == sex


def test_blank_optional_values_say_nothing(tmp_path: Path) -> None:
    # given a civil row with only the required columns filled
    blank = dict.fromkeys(
        ("身份证号", "性别", "联系电话", "居住地址", "居住状况", "失能等级", "残疾等级", "低保", "特困"), ""
    )
    row = read_one(tmp_path, Feed.civil, blank)
    # then the row is accepted and states no attribute at all (rather than a value of "no")
    assert isinstance(row, SourceRow)
    assert row.attributes == {}
    assert (row.phone, row.address, row.sex) == (None, None, None)


@pytest.mark.parametrize(
    ("text", "phone"),
    [("139 1011 2233", "13910112233"), ("010-68211234", "01068211234"), ("13800138000.0", "13800138000"),
     ("+86 138-0013-8000", "13800138000"), ("0755-26543210", "075526543210")],
)  # fmt: skip
def test_phones_are_kept_as_digits(tmp_path: Path, text: str, phone: str) -> None:
    row = read_one(tmp_path, Feed.civil, {"联系电话": text})
    assert isinstance(row, SourceRow)
    assert row.phone == phone


@pytest.mark.parametrize(
    ("text", "name"),
    [(" 王秀英 ", "王秀英"), ("王 秀英", "王秀英"), ("王\u3000秀英", "王秀英"), ("阿依古丽·买买提", "阿依古丽·买买提"),
     ("阿依古丽•买买提", "阿依古丽·买买提"), ("阿依古丽.买买提", "阿依古丽·买买提"), ("John  Smith", "John Smith")],
)  # fmt: skip
def test_names_lose_their_spaces_but_keep_the_middle_dot(tmp_path: Path, text: str, name: str) -> None:
    row = read_one(tmp_path, Feed.civil, {"姓名": text})
    assert isinstance(row, SourceRow)
    assert row.name == name


def test_condition_cells_accept_codes_names_and_every_separator() -> None:
    assert parse_conditions("I10 高血压；E11.9、冠心病,慢阻肺，脑梗死") == (
        ("I10", "高血压"),
        ("E11.9", "2型糖尿病"),
        ("I25", "冠心病"),
        ("J44", "慢性阻塞性肺疾病"),
        ("I63", "脑梗死"),
    )
    assert parse_conditions("高血压(I10);高血压病") == (("I10", "高血压"),)  # one condition, said twice
    assert parse_conditions("无") == ()


def test_icd10_codes_are_checked_by_shape_and_chinese_extensions_trimmed() -> None:
    assert parse_icd10("i10") == "I10"
    assert parse_icd10("E11.900") == "E11.900"
    assert parse_icd10("I10.x00x002") == "I10"
    assert parse_icd10("E11.900x001") == "E11.900"
    assert parse_icd10("I1O") is None
    assert parse_icd10("110") is None


# ------------------------------------------------------------------ every rejection


REJECTIONS = [
    pytest.param(Feed.health, {"姓名": "  "}, "field.required", "姓名", id="field.required"),
    pytest.param(
        Feed.health,
        {"收缩压": "146", "测量日期": ""},
        "field.required",
        "测量日期",
        id="measured-on-required",
    ),
    pytest.param(
        Feed.health, {"身份证号": "11010819480312"}, "resident.id_number.format", "身份证号", id="id-format"
    ),
    pytest.param(
        Feed.health,
        {"身份证号": WANG_ID[:17] + ("0" if WANG_ID[17] != "0" else "1")},
        "resident.id_number.checksum",
        "身份证号",
        id="id-checksum",
    ),  # fmt: skip
    pytest.param(
        Feed.health,
        {"身份证号": id_number(birth="19480230"), "出生日期": ""},
        "resident.id_number.birth_date",
        "身份证号",
        id="id-birth-date",
    ),  # fmt: skip
    pytest.param(Feed.health, {"更新日期": "2025-02-30"}, "date.invalid", "更新日期", id="date.invalid"),
    pytest.param(
        Feed.health, {"测量日期": "2025-13-01"}, "date.invalid", "测量日期", id="date.invalid-month"
    ),
    pytest.param(Feed.health, {"更新日期": "2026-01-02"}, "date.future", "更新日期", id="date.future"),
    pytest.param(
        Feed.health, {"所属社区": "中关村社区"}, "geo.community.unknown", "所属社区", id="community-unknown"
    ),
    pytest.param(
        Feed.health,
        {"所属社区": "110108009009"},
        "geo.community.unknown",
        "所属社区",
        id="community-code-unknown",
    ),
    pytest.param(
        Feed.health,
        {"所属社区": "新村社区", "所属网格": ""},
        "geo.community.ambiguous",
        "所属社区",
        id="community-ambiguous",
    ),  # fmt: skip
    pytest.param(
        Feed.health, {"所属网格": "110108001001-09"}, "geo.grid.unknown", "所属网格", id="grid-unknown"
    ),
    pytest.param(
        Feed.health, {"所属网格": "110108001002-01"}, "geo.grid.unknown", "所属网格", id="grid-elsewhere"
    ),
    pytest.param(Feed.health, {"性别": "男"}, "resident.sex.mismatch", "性别", id="sex-mismatch"),
    pytest.param(
        Feed.health,
        {"出生日期": "1948-03-13"},
        "resident.birth_date.mismatch",
        "出生日期",
        id="birth-mismatch",
    ),
    pytest.param(
        Feed.civil,
        {"身份证号": "", "出生日期": ""},
        "resident.identity.insufficient",
        "出生日期",
        id="identity-insufficient",
    ),  # fmt: skip
    pytest.param(
        Feed.health, {"联系电话": "1391100234"}, "resident.phone.format", "联系电话", id="phone-short"
    ),
    pytest.param(
        Feed.health, {"联系电话": "12911002345"}, "resident.phone.format", "联系电话", id="phone-prefix"
    ),
    pytest.param(Feed.health, {"收缩压": "320"}, "observation.range", "收缩压", id="systolic-range"),
    pytest.param(Feed.health, {"舒张压": "20"}, "observation.range", "舒张压", id="diastolic-range"),
    pytest.param(
        Feed.health,
        {"收缩压": "86", "舒张压": "95"},
        "observation.range",
        "舒张压",
        id="systolic-below-diastolic",
    ),
    pytest.param(Feed.health, {"空腹血糖": "55"}, "observation.range", "空腹血糖", id="glucose-range"),
    pytest.param(Feed.health, {"舒张压": ""}, "observation.incomplete", "舒张压", id="bp-incomplete"),
    pytest.param(Feed.health, {"收缩压": "一百四"}, "field.format", "收缩压", id="field.format"),
    pytest.param(
        Feed.health, {"慢病诊断": "高血压、颈椎病"}, "condition.unknown", "慢病诊断", id="condition.unknown"
    ),
    pytest.param(Feed.insurance, {"诊断编码": "I1O"}, "condition.code", "诊断编码", id="condition.code"),
    pytest.param(Feed.health, {"居住情况": "养老院"}, "field.vocabulary", "居住情况", id="vocabulary-living"),
    pytest.param(Feed.health, {"性别": "X"}, "field.vocabulary", "性别", id="vocabulary-sex"),
    pytest.param(
        Feed.civil, {"失能等级": "半失能"}, "field.vocabulary", "失能等级", id="vocabulary-capability"
    ),
    pytest.param(Feed.civil, {"低保": "有"}, "field.vocabulary", "低保", id="vocabulary-flag"),
    pytest.param(Feed.civil, {"姓名": "王" * 31}, "resident.name.format", "姓名", id="name-too-long"),
]


@pytest.mark.parametrize(("feed", "changes", "code", "column"), REJECTIONS)
def test_each_problem_rejects_the_row_with_its_code_and_column(
    tmp_path: Path, feed: Feed, changes: dict[str, str], code: str, column: str
) -> None:
    # given a valid row with one thing wrong
    # when it is read
    rejection = read_one(tmp_path, feed, changes)
    # then it is a rejection naming the reason, the column, the line and the record key
    assert isinstance(rejection, RowRejection)
    assert (rejection.code, rejection.column, rejection.line) == (code, column, 2)
    assert rejection.source_key == next(iter(BASE[feed].values()))
    # and the message is Chinese first, English in brackets, and never repeats the ID number or phone
    assert re.fullmatch(r"[^()]*[\u4e00-\u9fff][^()]*\(.+\)", rejection.message, re.S), rejection.message
    for secret in (changes.get("身份证号"), changes.get("联系电话"), WANG_ID, WANG_PHONE):
        if secret:
            assert secret not in rejection.message


# An ID number or a phone typed into the wrong column: the message quotes the cell, never them.
MISFILED = [
    pytest.param(Feed.insurance, {"诊断编码": WANG_ID}, "condition.code", id="id-in-diagnosis-code"),
    pytest.param(Feed.health, {"慢病诊断": WANG_PHONE}, "condition.unknown", id="phone-in-diagnosis"),
    pytest.param(Feed.health, {"居住情况": WANG_PHONE}, "field.vocabulary", id="phone-in-living"),
    pytest.param(Feed.civil, {"低保": WANG_ID}, "field.vocabulary", id="id-in-flag"),
]


@pytest.mark.parametrize(("feed", "changes", "code"), MISFILED)
def test_a_misfiled_id_number_or_phone_is_not_repeated_in_the_message(
    tmp_path: Path, feed: Feed, changes: dict[str, str], code: str
) -> None:
    # given a row with an ID number or a phone in a column meant for something else
    # when it is read
    rejection = read_one(tmp_path, feed, changes)
    # then it is rejected for that column, and the message marks where the value was, not the value
    assert isinstance(rejection, RowRejection) and rejection.code == code
    (secret,) = changes.values()
    assert secret not in rejection.message
    assert "[ID-REDACTED]" in rejection.message or "[PHONE-REDACTED]" in rejection.message


def test_a_second_row_with_the_same_key_is_rejected_and_the_first_kept(tmp_path: Path) -> None:
    # given two rows with the same record number
    path = write_csv(tmp_path / "health.csv", [HEALTH, {**HEALTH, "收缩压": "150"}])
    # when the file is read
    first, second = read_rows(path, Feed.health)
    # then the first is accepted and the second rejected, pointing at the first
    assert isinstance(first, SourceRow)
    assert isinstance(second, RowRejection)
    assert (second.code, second.line, second.source_key) == (
        "source.duplicate_key",
        3,
        HEALTH["健康档案编号"],
    )
    assert "第2行" in second.message


def test_a_missing_record_key_is_a_required_field(tmp_path: Path) -> None:
    rejection = read_one(tmp_path, Feed.health, {"健康档案编号": ""})
    assert isinstance(rejection, RowRejection)
    assert (rejection.code, rejection.column, rejection.source_key) == (
        "field.required",
        "健康档案编号",
        None,
    )


def test_the_reader_agrees_with_parse_id_number_on_every_kind_of_number(tmp_path: Path) -> None:
    # given 3,000 numbers: valid ones (lower-case x too), wrong check characters, impossible
    # birth dates, births after today and legacy 15-digit numbers
    generator = random.Random(11643)
    numbers = []
    for _ in range(3000):
        first17 = "110108" + f"{generator.randrange(1880, 2030)}{generator.randrange(0, 14):02d}"
        first17 += f"{generator.randrange(0, 33):02d}{generator.randrange(0, 1000):03d}"
        kind = generator.random()
        check = check_character(first17)
        if kind < 0.5:
            numbers.append(first17 + (check.lower() if check == "X" else check))
        elif kind < 0.8:
            numbers.append(first17 + generator.choice("0123456789X"))
        else:
            numbers.append(first17[:6] + first17[8:])  # 15 digits
    rows = [{**CIVIL, "人员编号": f"K{index}", "身份证号": number, "性别": "", "出生日期": ""}
            for index, number in enumerate(numbers)]  # fmt: skip
    # when they are read
    results = read_rows(write_csv(tmp_path / "civil.csv", rows), Feed.civil)
    # then each is accepted or rejected exactly as GB 11643 validation in residents.identity says
    for number, result in zip(numbers, results, strict=True):
        try:
            expected = parse_id_number(number, TODAY)
        except IdNumberError as error:
            assert isinstance(result, RowRejection) and result.code == error.code, number
            continue
        assert isinstance(result, SourceRow), number
        assert (result.id_number, result.sex, result.birth_date, result.id_upgraded_from_15) == (
            expected.number, expected.sex, expected.birth_date, expected.upgraded_from_15,
        )  # fmt: skip


def test_the_community_directory_accepts_codes_names_and_committee_suffixes() -> None:
    assert DIRECTORY.resolve("110108001002") == "110108001002"
    assert DIRECTORY.resolve(" 复兴路社区 ") == "110108001002"
    assert DIRECTORY.resolve("复兴路社区居委会") == "110108001002"
    assert DIRECTORY.resolve("复兴路") == "110108001002"
    with pytest.raises(RowError) as ambiguous:
        DIRECTORY.resolve("新村社区")
    assert ambiguous.value.code == "geo.community.ambiguous"
    assert DIRECTORY.resolve_grid("02", "110108001001") == "110108001001-02"


# ------------------------------------------------------------------ files, encodings and headers


def test_gb18030_files_are_read_with_chinese_names_intact(tmp_path: Path) -> None:
    # given a GB18030 file whose names include a character outside GBK (䶮) and a middle dot
    rows = [
        {**INSURANCE, "参保人姓名": "刘䶮"},
        {**INSURANCE, "结算单号": "2", "参保人姓名": "阿依古丽·买买提"},
    ]
    path = write_csv(tmp_path / "insurance.csv", rows, encoding="gb18030")
    # when it is read
    reader = read_feed(path, Feed.insurance, DIRECTORY, today=TODAY)
    first, second = list(reader)
    # then the encoding is recognised and the names arrive unchanged
    assert reader.encoding == "gb18030"
    assert isinstance(first, SourceRow) and isinstance(second, SourceRow)
    assert (first.name, second.name) == ("刘䶮", "阿依古丽·买买提")
    assert first.conditions[0].display == "高血压"


def test_a_utf8_file_with_a_byte_order_mark_matches_its_first_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "health.csv", [HEALTH], encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    reader = read_feed(path, Feed.health, DIRECTORY, today=TODAY)
    (row,) = list(reader)
    assert reader.encoding == "utf-8"
    assert isinstance(row, SourceRow) and row.source_key == HEALTH["健康档案编号"]


def test_header_aliases_spaces_and_units_are_recognised(tmp_path: Path) -> None:
    # given a health file using aliases, padded headers and a unit in brackets
    renamed = {"健康档案编号": " 档案编号", "身份证号": "身份证件号码", "联系电话": "本人电话", "所属社区": "社区编码",
               "慢病诊断": "疾病史", "更新日期": "建档日期", "姓名": "姓\u3000名", "收缩压": "收缩压(mmHg)",
               "空腹血糖": "空腹血糖（mmol/L）", "性别": "性别*"}  # fmt: skip
    header = [renamed.get(name, name) for name in HEALTH]
    row = {renamed.get(name, name): value for name, value in HEALTH.items()}
    # when it is read
    reader = read_feed(
        write_csv(tmp_path / "health.csv", [row], header=header), Feed.health, DIRECTORY, TODAY
    )
    (result,) = list(reader)
    # then every column is found and rejections would name the header as written
    assert isinstance(result, SourceRow)
    assert result.source_key == HEALTH["健康档案编号"] and result.name == "王秀英"
    assert result.observations[0].value == 146.0 and result.observations[1].value == 7.8
    assert reader.headers["source_key"] == "档案编号"


def test_a_missing_required_header_fails_the_whole_file_naming_the_columns(tmp_path: Path) -> None:
    header = [name for name in HEALTH if name not in {"所属社区", "更新日期"}]
    path = write_csv(tmp_path / "health.csv", [HEALTH], header=header)
    with pytest.raises(FeedError) as failure:
        read_feed(path, Feed.health, DIRECTORY, today=TODAY)
    assert failure.value.code == "feed.header.missing"
    assert failure.value.detail["missing"] == ["所属社区", "更新日期"]
    assert "所属社区" in failure.value.message and "更新日期" in failure.value.message


def test_a_duplicated_header_fails_the_whole_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "civil.csv", [CIVIL], header=[*CIVIL, "姓名"])
    with pytest.raises(FeedError) as failure:
        read_feed(path, Feed.civil, DIRECTORY, today=TODAY)
    assert failure.value.code == "feed.header.duplicate"


def test_old_excel_files_and_missing_files_fail_with_a_reason(tmp_path: Path) -> None:
    old = tmp_path / "civil.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    with pytest.raises(FeedError) as unsupported:
        read_feed(old, Feed.civil, DIRECTORY)
    assert unsupported.value.code == "feed.format"
    with pytest.raises(FeedError) as missing:
        read_feed(tmp_path / "nowhere.csv", Feed.civil, DIRECTORY)
    assert missing.value.code == "feed.unreadable"


def test_bytes_that_are_neither_utf8_nor_gb18030_fail_the_file(tmp_path: Path) -> None:
    path = tmp_path / "civil.csv"
    path.write_bytes(",".join(CIVIL).encode() + b"\n\x80\xff\xfe\n")
    with pytest.raises(FeedError) as failure:
        read_feed(path, Feed.civil, DIRECTORY)
    assert failure.value.code == "feed.encoding"


def test_line_numbers_are_the_lines_a_person_sees(tmp_path: Path) -> None:
    # given a file with a blank line and an address that spans two lines inside quotes
    path = tmp_path / "civil.csv"
    bad_phone = {**CIVIL, "人员编号": "C", "联系电话": "123"}
    lines = [
        ",".join(CIVIL),
        ",".join(CIVIL.values()).replace("MZ2025000101", "A"),
        "",
        ",".join(_cell(v) for v in {**CIVIL, "人员编号": "B", "居住地址": "翠微路2号院\n3号楼"}.values()),
        ",".join(bad_phone.values()),
    ]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    # when it is read
    reader = read_feed(path, Feed.civil, DIRECTORY, today=TODAY)
    a, b, c = list(reader)
    # then each row carries the line it starts on, counting the blank line and the wrapped cell
    assert (a.line, b.line, c.line) == (2, 4, 6)
    assert isinstance(b, SourceRow) and b.address == "翠微路2号院\n3号楼"
    assert isinstance(c, RowRejection) and c.code == "resident.phone.format"
    assert reader.count_rows() == 5  # physical lines after the header: a cheap upper bound


def test_fully_quoted_exports_and_title_rows_keep_line_numbers(tmp_path: Path) -> None:
    # given a fully quoted export with a title line above the header
    path = tmp_path / "civil.csv"
    quoted = [",".join(f'"{v}"' for v in row) for row in ([*CIVIL], [*CIVIL.values()])]
    second = [*CIVIL.values()]
    second[0], second[7] = "B", "中关村社区"
    path.write_text(
        '"海淀区老年人花名册"\n' + "\n".join([*quoted, ",".join(f'"{v}"' for v in second)]) + "\n",
        encoding="utf-8",
    )
    # when it is read
    first, rejection = read_rows(path, Feed.civil)
    # then the header is found on line 2 and the rows are lines 3 and 4
    assert isinstance(first, SourceRow) and first.line == 3
    assert isinstance(rejection, RowRejection) and (rejection.line, rejection.code) == (
        4,
        "geo.community.unknown",
    )


def test_xlsx_with_date_cells_numeric_phones_and_text_ids(tmp_path: Path) -> None:
    # given an Excel roster with real date cells, phones stored as numbers and a blank row
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(CIVIL))
    first = {
        **CIVIL,
        "出生日期": dt.datetime(1948, 3, 12),
        "联系电话": 13911002345,
        "更新日期": dt.datetime(2025, 9, 15),
    }
    second = {**CIVIL, "人员编号": 102, "身份证号": None, "出生日期": dt.date(1939, 12, 5), "联系电话": 13693218876.0,
              "残疾等级": 3, "更新日期": dt.datetime(2025, 9, 15, 10, 30)}  # fmt: skip
    third = {**CIVIL, "人员编号": "MZ3", "更新日期": dt.datetime(2027, 1, 1)}
    sheet.append(list(first.values()))
    sheet.append([])
    sheet.append(list(second.values()))
    sheet.append(list(third.values()))
    path = tmp_path / "civil.xlsx"
    workbook.save(path)
    # when it is read
    reader = read_feed(path, Feed.civil, DIRECTORY, today=TODAY)
    rows = list(reader)
    # then dates, numbers and row numbers come through as a person sees them in Excel
    assert reader.encoding is None
    a, b, c = rows
    assert isinstance(a, SourceRow) and isinstance(b, SourceRow)
    assert (a.line, a.phone, a.birth_date, a.id_number) == (2, "13911002345", dt.date(1948, 3, 12), WANG_ID)
    assert (b.line, b.source_key, b.phone, b.birth_date) == (4, "102", "13693218876", dt.date(1939, 12, 5))
    assert b.attributes["disability_cert_grade"] == 3
    assert b.observed_at == dt.datetime(2025, 9, 15, tzinfo=dt.UTC)
    assert isinstance(c, RowRejection) and (c.line, c.code, c.column) == (5, "date.future", "更新日期")
    assert reader.count_rows() == 4


def test_tab_separated_text_is_read_like_csv(tmp_path: Path) -> None:
    path = tmp_path / "civil.txt"
    path.write_text("\t".join(CIVIL) + "\n" + "\t".join(CIVIL.values()) + "\n", encoding="utf-8")
    (row,) = read_rows(path, Feed.civil)
    assert isinstance(row, SourceRow) and row.id_number == WANG_ID


def test_every_column_of_the_spec_is_read() -> None:
    for feed, columns in FEED_COLUMNS.items():
        assert set(FEED_FIELDS[feed]) == {column.field for column in columns}, feed


# ------------------------------------------------------------------ the sample files


def documented_sample_rejections() -> set[tuple[str, int, str]]:
    """(file, line, code) from the sample table in docs/feeds.md."""
    text = (ROOT / "docs" / "feeds.md").read_text(encoding="utf-8")
    pattern = re.compile(r"^\|\s*`?([\w.]+\.(?:csv|xlsx))`?\s*\|\s*(\d+)\s*\|\s*`([a-z_.0-9]+)`", re.M)
    return {(name, int(line), code) for name, line, code in pattern.findall(text)}


def test_the_sample_files_parse_with_the_rejections_documented() -> None:
    # given the sample geography and the three sample feeds
    directory = CommunityDirectory.from_geography_csv(SAMPLES / "geography.csv")
    assert len(directory.by_code) == 4 and len(directory.grids) == 8
    found: set[tuple[str, int, str]] = set()
    accepted = 0
    for name, feed, encoding in (
        ("health.csv", Feed.health, "utf-8"),
        ("insurance_gb18030.csv", Feed.insurance, "gb18030"),
        ("civil.xlsx", Feed.civil, None),
    ):
        # when each is read
        reader = read_feed(SAMPLES / name, feed, directory, today=TODAY)
        assert reader.encoding == encoding
        for row in reader:
            if isinstance(row, RowRejection):
                found.add((name, row.line, row.code))
            else:
                accepted += 1
    # then exactly the rejections listed in docs/feeds.md occur, and the rest is accepted
    assert found == documented_sample_rejections()
    assert accepted >= 20


def test_short_rows_and_blank_cells_read_as_empty(tmp_path: Path) -> None:
    # given a civil file whose exporter dropped a row's trailing cells
    path = tmp_path / "civil.csv"
    cells = [*CIVIL.values()]
    cells[0] = "MZ-short"
    path.write_text(
        ",".join(CIVIL) + "\n" + ",".join(cells[:5]) + "\n" + ",".join(CIVIL.values()) + "\n", "utf-8"
    )
    # when it is read
    short, full = read_rows(path, Feed.civil)
    # then the short row misses its required 所属社区 (not a shifted column), the full row is accepted
    assert isinstance(short, RowRejection) and (short.code, short.column) == ("field.required", "所属社区")
    assert isinstance(full, SourceRow)
    padded = read_one(tmp_path, Feed.civil, {"身份证号": "   "})
    assert isinstance(padded, SourceRow) and padded.id_number is None and padded.sex == "F"


def test_a_damaged_workbook_and_a_feed_without_files_fail_with_a_reason(tmp_path: Path) -> None:
    damaged = tmp_path / "civil.xlsx"
    damaged.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(FeedError) as unreadable:
        read_feed(damaged, Feed.civil, DIRECTORY)
    assert unreadable.value.code == "feed.unreadable"
    with pytest.raises(FeedError) as unsupported:
        read_feed(write_csv(tmp_path / "civil.csv", [CIVIL]), Feed.staff, DIRECTORY)
    assert unsupported.value.code == "feed.unsupported"


@pytest.mark.parametrize("text", ["无", "-", "00000000000", "13800000000", " 暂无 "])
def test_blank_markers_and_placeholder_phones_mean_no_phone(tmp_path: Path, text: str) -> None:
    # given an export that writes 无, - or a placeholder number where it has no phone
    row = read_one(tmp_path, Feed.civil, {"联系电话": text, "身份证号": "无"})
    # then the row is accepted without a phone (and without an ID number), as linkage expects
    assert isinstance(row, SourceRow)
    assert (row.phone, row.id_number) == (None, None)


def test_a_file_that_changes_encoding_part_way_fails_where_it_changes(tmp_path: Path) -> None:
    # given a UTF-8 file (over the first megabyte that decides the encoding) with GB18030 text appended
    line = ",".join(CIVIL.values()) + "\n"
    count = (2 << 20) // len(line.encode())
    body = "".join(line.replace("MZ2025000101", f"K{index}") for index in range(count))
    path = tmp_path / "civil.csv"
    path.write_bytes((",".join(CIVIL) + "\n" + body).encode() + line.encode("gb18030"))
    reader = read_feed(path, Feed.civil, DIRECTORY, today=TODAY)
    assert reader.encoding == "utf-8"
    # when it is read, then the rows before the change come, and the file fails at the changed line
    with pytest.raises(FeedError) as failure:
        for _ in reader:
            pass
    assert failure.value.code == "feed.encoding"
    assert failure.value.detail["line"] == count + 2  # the header, the UTF-8 rows, then this line
