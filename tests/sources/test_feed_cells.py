"""Cells as spreadsheets and Chinese input methods write them: full-width forms, numbers that
were dates or ID numbers, and headers typed with full-width marks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.sources.test_feeds import CIVIL, INSURANCE, WANG_ID, WANG_PHONE, id_number, read_one, read_rows
from yiyang.sources.feeds import read_feed
from yiyang.sources.models import Feed
from yiyang.sources.records import RowRejection, SourceRow

TODAY = dt.date(2026, 1, 1)
FULL_WIDTH = str.maketrans("0123456789Xx-+() ", "０１２３４５６７８９Ｘｘ－＋（）\u3000")
# A woman's ID number whose check character is X.
WITH_X = id_number(sequence="004")
# A woman's ID number that Excel, keeping 15 significant digits, stores as 110108194803010000:
# whose check character (0) happens to be right. Read as those digits, it is another woman's.
LOSSY_ID = "110108194803010027"


def xlsx(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


# ------------------------------------------------------------------ full-width forms


@pytest.mark.parametrize("text", [WANG_ID.translate(FULL_WIDTH), f" {WANG_ID.translate(FULL_WIDTH)}\u3000"])
def test_an_id_number_typed_in_full_width_digits_is_read_as_its_digits(tmp_path: Path, text: str) -> None:
    row = read_one(tmp_path, Feed.civil, {"身份证号": text})
    assert isinstance(row, SourceRow), row
    assert row.id_number == WANG_ID


@pytest.mark.parametrize(
    "text", [WITH_X.lower(), WITH_X.translate(FULL_WIDTH), WITH_X.lower().translate(FULL_WIDTH)]
)
def test_a_check_character_x_in_lower_case_or_full_width_is_x(tmp_path: Path, text: str) -> None:
    row = read_one(tmp_path, Feed.civil, {"身份证号": text})
    assert isinstance(row, SourceRow), row
    assert row.id_number == WITH_X


def test_full_width_digits_with_an_ascii_x_are_never_kept_as_the_id_number(tmp_path: Path) -> None:
    # the digits full-width, the check character typed as a plain X: still the one number
    text = WITH_X[:17].translate(FULL_WIDTH) + "X"
    row = read_one(tmp_path, Feed.civil, {"身份证号": text})
    assert isinstance(row, SourceRow), row
    assert row.id_number == WITH_X and row.id_number.isascii()


@pytest.mark.parametrize(
    ("text", "phone"),
    [(WANG_PHONE.translate(FULL_WIDTH), WANG_PHONE), ("010-68211234".translate(FULL_WIDTH), "01068211234"),
     ("+86 139-1100-2345".translate(FULL_WIDTH), WANG_PHONE)],
)  # fmt: skip
def test_a_phone_typed_in_full_width_digits_is_read_as_its_digits(
    tmp_path: Path, text: str, phone: str
) -> None:
    row = read_one(tmp_path, Feed.civil, {"联系电话": text})
    assert isinstance(row, SourceRow), row
    assert row.phone == phone


def test_a_date_typed_in_full_width_digits_is_read(tmp_path: Path) -> None:
    row = read_one(tmp_path, Feed.civil, {"更新日期": "２０２４０１０５"})
    assert isinstance(row, SourceRow), row
    assert row.observed_at.date() == dt.date(2024, 1, 5)


def test_headers_with_full_width_marks_match(tmp_path: Path) -> None:
    # given headers typed with a full-width asterisk and full-width letters in the unit
    header = [
        "姓名＊" if name == "姓名" else ("联系电话（ＴＥＬ）" if name == "联系电话" else name)
        for name in CIVIL
    ]
    path = tmp_path / "civil.csv"
    path.write_text(",".join(header) + "\n" + ",".join(CIVIL.values()) + "\n", encoding="utf-8")
    (row,) = read_rows(path, Feed.civil)
    assert isinstance(row, SourceRow), row
    assert (row.name, row.phone) == ("王秀英", WANG_PHONE)


# ------------------------------------------------------------------ Excel dates as serial numbers


@pytest.mark.parametrize("text", ["45296", "2024/1/5", "2024年1月5日", "20240105"])
def test_a_csv_date_may_be_an_excel_serial_number_or_text(tmp_path: Path, text: str) -> None:
    row = read_one(tmp_path, Feed.civil, {"更新日期": text})
    assert isinstance(row, SourceRow), row
    assert row.observed_at.date() == dt.date(2024, 1, 5)


def test_a_year_alone_is_not_taken_for_a_serial_number(tmp_path: Path) -> None:
    # 1948 as a serial number would be 1905-05-01: a birth year typed alone must not become that
    row = read_one(tmp_path, Feed.civil, {"身份证号": "", "出生日期": "1948"})
    assert isinstance(row, RowRejection)
    assert (row.code, row.column) == ("date.invalid", "出生日期")


def test_xlsx_dates_stored_as_numbers_are_read_as_excel_serial_numbers(tmp_path: Path) -> None:
    # given date columns whose cells lost their date format (numbers), and one written as digits
    header = list(CIVIL)
    born, updated = header.index("出生日期"), header.index("更新日期")

    def row(key: str, birth: object, update: object) -> list[object]:
        values: list[object] = list({**CIVIL, "人员编号": key}.values())
        values[born], values[updated] = birth, update
        return values

    path = xlsx(
        tmp_path / "civil.xlsx",
        header,
        [
            row("A", 17604, 45296),
            row("B", 17604.0, 45296.5),
            row("C", "1948/3/12", 20240105),
            row("D", None, 1948),
        ],
    )
    a, b, c, d = read_rows(path, Feed.civil)
    # then each is the day Excel shows for it (1948-03-12 is serial 17604, 2024-01-05 is 45296)
    for accepted in (a, b, c):
        assert isinstance(accepted, SourceRow), accepted
        assert (accepted.birth_date, accepted.observed_at.date()) == (
            dt.date(1948, 3, 12),
            dt.date(2024, 1, 5),
        )
    # and a number that cannot be a serial date is not read as one
    assert isinstance(d, RowRejection) and (d.code, d.column) == ("date.invalid", "更新日期")


# ------------------------------------------------------------------ numbers that lost their digits


def test_an_id_number_excel_stored_as_a_number_is_rejected_never_read_as_other_digits(tmp_path: Path) -> None:
    # given ID numbers stored as numbers: Excel keeps 15 significant digits, a program a double
    header = list(INSURANCE)
    at = header.index("身份证号")
    rows = []
    for key, number in (("A", float(LOSSY_ID)), ("B", 1.10108194803015e17), ("C", float(WANG_ID))):
        values: list[object] = list({**INSURANCE, "结算单号": key, "性别": ""}.values())
        values[at] = number
        rows.append(values)
    path = xlsx(tmp_path / "claims.xlsx", header, rows)
    # when it is read
    results = read_rows(path, Feed.insurance)
    # then every such row is rejected for that reason, with its line, and no ID number is made up
    assert [(r.line, r.code, r.column) for r in results if isinstance(r, RowRejection)] == [
        (2, "resident.id_number.numeric", "身份证号"),
        (3, "resident.id_number.numeric", "身份证号"),
        (4, "resident.id_number.numeric", "身份证号"),
    ]
    assert "文本" in results[0].message and "text" in results[0].message  # type: ignore[union-attr]


def test_an_id_number_a_spreadsheet_wrote_in_scientific_notation_is_rejected_for_it(tmp_path: Path) -> None:
    row = read_one(tmp_path, Feed.civil, {"身份证号": "1.10108E+17"})
    assert isinstance(row, RowRejection)
    assert (row.code, row.column) == ("resident.id_number.numeric", "身份证号")


def test_a_15_digit_id_number_stored_as_a_number_is_exact_and_read(tmp_path: Path) -> None:
    header = list(CIVIL)
    values: list[object] = list({**CIVIL, "性别": "", "出生日期": ""}.values())
    values[header.index("身份证号")] = 110108451102031.0
    (row,) = read_rows(xlsx(tmp_path / "civil.xlsx", header, [values]), Feed.civil)
    assert isinstance(row, SourceRow), row
    assert row.id_number is not None and row.id_upgraded_from_15


def test_a_record_key_excel_stored_as_a_number_is_rejected_not_merged_with_another(tmp_path: Path) -> None:
    # given two settlement numbers of 18 digits stored as numbers: one double for both
    header = list(INSURANCE)
    first = {**INSURANCE, "结算单号": 110108202509010001.0}
    second = {**INSURANCE, "结算单号": 110108202509010002.0, "就诊日期": "2025-09-02"}
    path = xlsx(tmp_path / "claims.xlsx", header, [list(first.values()), list(second.values())])
    # when it is read
    results = read_rows(path, Feed.insurance)
    # then neither claim is kept under a made-up number; each is rejected saying why
    assert [(r.line, r.code, r.column, r.source_key) for r in results if isinstance(r, RowRejection)] == [
        (2, "field.format", "结算单号", None),
        (3, "field.format", "结算单号", None),
    ]
    assert "文本" in results[0].message  # type: ignore[union-attr]


def test_every_rejection_of_a_workbook_has_its_line_and_code(tmp_path: Path) -> None:
    header = list(CIVIL)
    rows = [list({**CIVIL, "人员编号": f"K{n}", "联系电话": "12"}.values()) for n in range(3)]
    reader = read_feed(
        xlsx(tmp_path / "civil.xlsx", header, rows), Feed.civil, read_one.__globals__["DIRECTORY"], TODAY
    )
    results = list(reader)
    assert [(r.line, r.code) for r in results] == [(n, "resident.phone.format") for n in (2, 3, 4)]  # type: ignore[union-attr]


# ------------------------------------------------------------------ rows wider than the header


def test_a_csv_line_with_an_unquoted_comma_is_refused_in_its_place_not_cut_to_the_header(
    tmp_path: Path,
) -> None:
    # given a civil file whose second line's address holds an unquoted comma (every later cell
    # shifts one column right), between two good lines
    header = list(CIVIL)
    good = ",".join(CIVIL.values())
    other = good.replace("MZ2025000101", "MZ2025000103").replace(WANG_ID, id_number(sequence="024"))
    shifted = dict(CIVIL, 人员编号="MZ2025000102", 居住地址="翠微路2号院,3号楼2单元501")
    shifted["身份证号"] = id_number(sequence="044")
    path = tmp_path / "civil.csv"
    path.write_text("\n".join([",".join(header), good, ",".join(shifted.values()), other]) + "\n", "utf-8")
    # when it is read
    rows = read_rows(path, Feed.civil)
    # then the shifted line is refused with its line and key (no community: the cells after the
    # comma are not where the header says), and nothing is lost around it
    assert [type(row).__name__ for row in rows] == ["SourceRow", "RowRejection", "SourceRow"]
    refused = rows[1]
    assert isinstance(refused, RowRejection)
    assert (refused.line, refused.code, refused.source_key) == (3, "row.columns", "MZ2025000102")
    assert refused.community_code is None


def test_empty_cells_past_the_header_are_no_reason_to_refuse_a_line(tmp_path: Path) -> None:
    path = tmp_path / "civil.csv"
    path.write_text(",".join(CIVIL) + "\n" + ",".join(CIVIL.values()) + ",,\u3000,\n", "utf-8")
    (row,) = read_rows(path, Feed.civil)
    assert isinstance(row, SourceRow), row
    assert row.source_key == "MZ2025000101"
