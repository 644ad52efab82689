"""Reading the agency feeds (卫健 health file, 医保 settlement list, 民政 elderly roster).

A pure reader: a CSV or XLSX file in, one ``SourceRow`` or ``RowRejection`` per data row out,
in file order, with the line number a person sees in a text editor or Excel (header = line 1
when it is the first line). Whole-file problems raise ``FeedError``. No database: the caller
passes the community directory in, and links and stores what comes out.

Speed matters (a district's files hold about a million rows), so the common path of a cell is
a dictionary lookup or a few string tests: dates, communities, grids and diagnosis cells repeat,
and each distinct text is parsed once per reader; the checks that name a problem run only when
the quick path misses. ``docs/feeds.md`` is the reference for the columns, values and rejection
codes.

Dates are calendar days; ``observed_at`` and ``effective_at`` are that day at 00:00 UTC
(08:00 in Asia/Shanghai), so the calendar day reads the same in UTC and in China time.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from yiyang.access.redaction import redact_pii
from yiyang.db import CHINA_TZ
from yiyang.errors import DomainError
from yiyang.residents.identity import CHECK_CHARS, WEIGHTS, IdNumberError, parse_id_number
from yiyang.residents.names import MAX_NAME_LENGTH, NAME_SPECIAL, NameTooLong, registry_name
from yiyang.sources import vocab
from yiyang.sources.models import Feed
from yiyang.sources.records import (
    FEED_COLUMNS,
    Column,
    ConditionFact,
    ObservationFact,
    RowRejection,
    SourceRow,
)

EARLIEST_YEAR = 1890  # as GB 11643 validation in residents.identity: older is a typing error
HEADER_SEARCH_ROWS = 10  # title rows above the header ("XX社区老年人花名册") are skipped
SAMPLE_BYTES = 1 << 20
# Excel's day numbers (1900 date system): serial 45296 is 2024-01-05. Only five-digit serials are
# read as dates (1927-05-18 on): a four-digit number in a date column is a year typed alone.
EXCEL_EPOCH = dt.date(1899, 12, 30)
SERIAL_DAYS = (10_000, 100_000)
# A double holds every integer below 2**53 exactly; Excel keeps 15 significant digits. An 18-digit
# ID number or record key stored as a number has lost its last digits: never read them as digits.
EXACT_NUMBERS = 2**53
# The record key of a workbook row whose key cell is such a number (``FeedReader._key_error``):
# longer than any key, so the row loops' length check sends it to the error path.
LOST_DIGITS_KEY = "\x00" * 65
_SCIENTIFIC = re.compile(r"\d(?:\.\d*)?E[+-]?\d+")

# LOINC codes of the measurements a health file carries.
LOINC_BP_PANEL = "85354-9"
LOINC_FASTING_GLUCOSE = "14771-0"
SYSTOLIC_RANGE = (60.0, 300.0)  # mmHg
DIASTOLIC_RANGE = (30.0, 200.0)  # mmHg
GLUCOSE_RANGE = (1.0, 40.0)  # mmol/L
# GB 11643: the sequence digits' part of the weighted sum, and the sex the 17th digit gives.
_SEQUENCE_SUMS = {
    f"{n:03d}": sum(int(digit) * weight for digit, weight in zip(f"{n:03d}", WEIGHTS[14:], strict=True))
    for n in range(1000)
}
_SEQUENCE_SEX = {digit: "M" if int(digit) % 2 else "F" for digit in "0123456789"}
_SBP_LOW, _SBP_HIGH = SYSTOLIC_RANGE
_DBP_LOW, _DBP_HIGH = DIASTOLIC_RANGE
_GLUCOSE_LOW, _GLUCOSE_HIGH = GLUCOSE_RANGE

# The fields each feed reads, in the order the row functions unpack them.
HEALTH_FIELDS = (
    "source_key", "name", "id_number", "sex", "birth_date", "phone", "address", "community", "grid",
    "living_arrangement", "insurance_type", "conditions", "systolic", "diastolic", "fasting_glucose",
    "measured_on", "updated_on",
)  # fmt: skip
INSURANCE_FIELDS = (
    "source_key", "name", "id_number", "sex", "birth_date", "phone", "insurance_type", "visit_date",
    "facility", "diagnosis_code", "diagnosis_name", "long_prescription", "total_cost",
)  # fmt: skip
CIVIL_FIELDS = (
    "source_key", "name", "id_number", "sex", "birth_date", "phone", "address", "community",
    "living_arrangement", "capability_level", "disability_cert_grade", "dibao", "tekun", "updated_on",
)  # fmt: skip
FEED_FIELDS: dict[Feed, tuple[str, ...]] = {
    Feed.health: HEALTH_FIELDS,
    Feed.insurance: INSURANCE_FIELDS,
    Feed.civil: CIVIL_FIELDS,
}
DATE_FIELDS = frozenset({"birth_date", "measured_on", "updated_on", "visit_date"})

AREA_LEVELS = {
    "区": "district", "县": "district", "district": "district",
    "街道": "street", "镇": "street", "乡": "street", "street": "street",
    "社区": "community", "村": "community", "community": "community",
    "网格": "grid", "grid": "grid",
}  # fmt: skip
_COMMUNITY_SUFFIXES = ("社区居民委员会", "居民委员会", "村民委员会", "社区居委会", "居委会", "村委会", "社区")


class FeedError(DomainError):
    """A whole-file problem: no row can be read until the file is fixed."""

    status_code = 422


class RowError(DomainError):
    """One row's problem; the reader reports it as a ``RowRejection`` and goes on."""

    status_code = 422

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        # Messages quote the cell at fault; an ID number or phone typed into the wrong column would
        # travel with it into reports, the CLI and import_run.rejections (docs/feeds.md).
        super().__init__(code, redact_pii(message))
        self.field = field


def china_today() -> dt.date:
    return dt.datetime.now(CHINA_TZ).date()


# ---------------------------------------------------------------- communities and grids


def community_key(name: str) -> str:
    """A community name without spaces or its 社区/居委会 suffix, for lenient matching."""
    key = "".join(name.split())
    for suffix in _COMMUNITY_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


@dataclass
class CommunityDirectory:
    """What a file may write in 所属社区 (a 12-digit code or a name), and the grids of each.

    ``by_code``: community code -> name; ``by_name``: name -> codes (two communities in
    different streets may share a name); ``grids``: grid code -> its community's code.
    """

    by_code: dict[str, str]
    by_name: dict[str, list[str]]
    grids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_key: dict[str, list[str]] = {}
        for name, codes in self.by_name.items():
            known = self._by_key.setdefault(community_key(name), [])
            known.extend(code for code in codes if code not in known)

    @classmethod
    def from_areas(cls, areas: Iterable[tuple[str, str, str, str | None]]) -> CommunityDirectory:
        """Built from (level, code, name, parent code) rows, level in Chinese (社区) or English."""
        by_code: dict[str, str] = {}
        by_name: dict[str, list[str]] = {}
        grids: dict[str, str] = {}
        for level, code, name, parent in areas:
            kind = AREA_LEVELS.get(level.strip())
            if kind == "community":
                by_code[code] = name
                by_name.setdefault(name, []).append(code)
            elif kind == "grid" and parent:
                grids[code] = parent
        return cls(by_code, by_name, grids)

    @classmethod
    def from_geography_csv(cls, path: Path) -> CommunityDirectory:
        """Built from a geography file with the columns 层级,编码,名称,上级编码."""
        encoding = detect_encoding(path)
        with open(path, encoding=_python_encoding(encoding), newline="") as handle:
            rows = [
                [cell.strip() for cell in row] for row in csv.reader(handle) if any(c.strip() for c in row)
            ]
        if not rows:
            raise FeedError("feed.empty", "文件中没有数据 (the file is empty)")
        header = [normalise_header(cell) for cell in rows[0]]
        wanted = ("层级", "编码", "名称", "上级编码")
        missing = [name for name in wanted if name not in header]
        if missing:
            raise _missing_headers(missing)
        at = [header.index(name) for name in wanted]
        areas = []
        for row in rows[1:]:
            row += [""] * (len(header) - len(row))
            level, code, name, parent = (row[i] for i in at)
            areas.append((level, code, name, parent or None))
        return cls.from_areas(areas)

    def resolve(self, text: str) -> str:
        """The 12-digit community code a cell means; raises ``RowError`` when unknown or ambiguous."""
        text = text.strip()
        if text in self.by_code:
            return text
        codes = self.by_name.get(text) or self._by_key.get(community_key(text))
        if not codes:
            raise RowError(
                "geo.community.unknown",
                f"所属社区不在区划目录中：{text[:40]} (community not found in the geography directory)",
            )
        if len(codes) > 1:
            raise RowError(
                "geo.community.ambiguous",
                f"社区名称“{text[:40]}”对应多个社区，请填写12位社区编码 "
                "(community name matches several communities; write its 12-digit code)",
            )
        return codes[0]

    def resolve_grid(self, text: str, community_code: str) -> str:
        """A grid code in the row's community: the full code, or its local number ("01")."""
        text = text.strip()
        community = self.grids.get(text)
        code = text
        if community is None and text.isdigit() and len(text) <= 3:
            code = f"{community_code}-{text.zfill(2)}"
            community = self.grids.get(code)
        if community is None:
            raise RowError("geo.grid.unknown", f"所属网格不存在：{text[:40]} (grid not found)")
        if community != community_code:
            raise RowError(
                "geo.grid.unknown",
                f"网格{text[:40]}不属于该行的社区 (grid does not belong to the row's community)",
            )
        return code


# ---------------------------------------------------------------- values


_DATE_WITH_SEPARATORS = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")
_ICD10 = re.compile(r"([A-Z]\d{2})(?:\.(\d*)(?:X\d*)*)?")
_CONDITION_SPLIT = re.compile(r"[;；,，、\n]+")
_CODE_FIRST = re.compile(r"([A-Za-z]\d{2}(?:\.[0-9Xx]*)?)\s*(.*)", re.S)
_CODE_LAST = re.compile(r"(.*?)\s*[（(]\s*([A-Za-z]\d{2}(?:\.[0-9Xx]*)?)\s*[）)]", re.S)
_HEADER_UNIT = re.compile(r"[（(\[【〔][^（(\[【〔]*[）)\]】〕]$")
_CODE_DISPLAY = {code: display for code, display in reversed(list(vocab.CONDITION_NAMES.values()))}


def code_display(code: str) -> str | None:
    """The vocabulary's name for a code, or for its three-character category (E11.9 -> 2型糖尿病)."""
    return _CODE_DISPLAY.get(code) or _CODE_DISPLAY.get(code[:3])


def normalise_header(text: object) -> str:
    """A header as matched: no spaces (full-width included), no "*" marks, no trailing (unit)."""
    # NFKC: full-width letters, brackets and ＊ as their ASCII forms (headers are few: no cost).
    header = "".join(unicodedata.normalize("NFKC", str(text)).replace("\ufeff", "").split()).strip("*")
    return _HEADER_UNIT.sub("", header).strip("*")


def parse_date_text(text: str) -> dt.date:
    """YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYYMMDD or YYYY年M月D日, an optional time after it,
    in ASCII or full-width digits; or a five-digit Excel serial number (a date cell saved as
    General: 45296 is 2024-01-05)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)  # full-width digits and separators
    text = text.strip().split(" ", 1)[0].split("T", 1)[0]
    if len(text) == 8 and text.isdigit() and text.isascii():
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    if len(text) == 5 and text.isdigit() and text.isascii() and text[0] != "0":
        return EXCEL_EPOCH + dt.timedelta(days=int(text))
    match = _DATE_WITH_SEPARATORS.fullmatch(text)
    if not match:
        raise ValueError(text)
    return dt.date(int(match[1]), int(match[2]), int(match[3]))


def parse_icd10(text: str) -> str | None:
    """An ICD-10 code in upper case (letter, 2 digits, optional .digits), or None.

    The Chinese clinical and insurance editions extend codes with "x" parts ("I10.x00x002",
    "E11.900x001"); the WHO part before the first "x" is kept.
    """
    match = _ICD10.fullmatch(text.strip().upper())
    if not match:
        return None
    return f"{match[1]}.{match[2]}" if match[2] else match[1]


def _python_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding == "utf-8" else encoding


def detect_encoding(path: Path) -> str:
    """The file's encoding: "utf-8" if its start decodes strictly as UTF-8 (BOM or not), else "gb18030"."""
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    final = len(sample) < SAMPLE_BYTES
    for encoding in ("utf-8", "gb18030"):  # GBK and GB2312 files are GB18030 subsets
        try:
            codecs.getincrementaldecoder(encoding)("strict").decode(sample, final=final)
        except UnicodeDecodeError:
            continue
        return encoding
    raise FeedError(
        "feed.encoding", "文件编码无法识别，请另存为UTF-8或GB18030 (file is neither UTF-8 nor GB18030)"
    )


def _missing_headers(missing: list[str]) -> FeedError:
    names = "、".join(missing)
    return FeedError(
        "feed.header.missing",
        f"缺少必需的列：{names} (missing required columns: {', '.join(missing)})",
        missing=missing,
    )


def _xlsx_text(value: object) -> str:
    """A non-date cell as text: 13800138000.0 -> "13800138000", dates as YYYY-MM-DD."""
    if value is None:
        return ""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is float:
        if not -EXACT_NUMBERS < value < EXACT_NUMBERS:  # type: ignore[operator]
            # Digits past the 15th are Excel's rounding, not the file's: shown as Excel shows them
            # (1.10108194803015E+17), never written out as made-up digits.
            return f"{value:.15G}"
        return str(int(value)) if value.is_integer() else repr(value)  # type: ignore[attr-defined]
    if kind is bool:
        return "1" if value else "0"
    if kind is dt.datetime:
        if value.time() == dt.time():  # type: ignore[attr-defined]
            return value.date().isoformat()  # type: ignore[attr-defined]
        return value.isoformat(sep=" ")  # type: ignore[attr-defined]
    if kind is dt.date:
        return value.isoformat()  # type: ignore[attr-defined]
    return str(value)


def _xlsx_date(value: object, epoch: dt.date = EXCEL_EPOCH) -> object:
    """A date cell stays a date (Excel date cells arrive as datetimes), and so does a five-digit
    number (a date cell that lost its format: Excel's serial day, from the workbook's epoch);
    anything else as text."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    kind = type(value)
    if (kind is int or kind is float) and SERIAL_DAYS[0] <= value < SERIAL_DAYS[1]:  # type: ignore[operator]
        return epoch + dt.timedelta(days=int(value))  # type: ignore[call-overload]
    return _xlsx_text(value)


@dataclass(slots=True)
class _Layout:
    """Where each field is in the file: found once from the header."""

    header_line: int  # 1-based line/row of the header
    end_line: int  # last physical line of the header record (CSV headers may span lines)
    indices: dict[str, int]  # field -> column index
    headers: dict[str, str]  # field -> header as written in the file
    width: int


def _match_header(
    cells: list[str], columns: tuple[Column, ...]
) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Field -> column index for one candidate header row, and the required headers it lacks."""
    aliases: dict[str, tuple[str, int]] = {}
    for column in columns:
        for rank, header in enumerate(column.headers):
            aliases[normalise_header(header)] = (column.field, rank)
    indices: dict[str, int] = {}
    headers: dict[str, str] = {}
    ranks: dict[str, int] = {}
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        header = normalise_header(cell)
        if not header:
            continue
        if header in seen and header in aliases:
            raise FeedError(
                "feed.header.duplicate",
                f"列名重复：{header} (column appears twice: {header})",
                column=header,
            )
        seen[header] = index
        known = aliases.get(header)
        if known is None:
            continue
        name, rank = known
        if name in ranks and ranks[name] <= rank:
            continue  # 所属社区 beats 社区编码: the canonical header wins over an alias
        indices[name], headers[name], ranks[name] = index, str(cell).strip(), rank
    missing = [column.headers[0] for column in columns if column.required and column.field not in indices]
    return indices, headers, missing


def _find_header(records: Iterable[tuple[int, int, list[str]]], columns: tuple[Column, ...]) -> _Layout:
    """The first row (of the first few) that holds every required header."""
    best: list[str] | None = None
    for line, end_line, cells in records:
        indices, headers, missing = _match_header(cells, columns)
        if not missing:
            return _Layout(line, end_line, indices, headers, len(cells))
        if best is None or len(missing) < len(best):
            best = missing
    if best is None:
        raise FeedError("feed.empty", "文件中没有表头和数据 (the file has no header row)")
    raise _missing_headers(best)


# ---------------------------------------------------------------- the reader


class FeedReader:
    """The rows of one agency file, validated; iterate it (more than once if need be)."""

    def __init__(
        self, path: Path, feed: Feed, communities: CommunityDirectory, today: dt.date | None = None
    ) -> None:
        if feed not in FEED_FIELDS:
            raise FeedError("feed.unsupported", f"不支持的数据来源：{feed} (not a file feed: {feed})")
        self.path = Path(path)
        self.feed = feed
        self.communities = communities
        self.today = today or china_today()
        self.columns = FEED_COLUMNS[feed]
        self.encoding: str | None = None
        self.format = self._detect_format()
        self._delimiter = ","
        self._quoted = False
        if self.format == "csv":
            self.encoding = detect_encoding(self.path)
            self._layout = self._csv_layout()
        else:
            self._layout = self._xlsx_layout()
        self.headers = dict(self._layout.headers)  # field -> header as written
        self._labels = {c.field: self._layout.headers.get(c.field, c.headers[0]) for c in self.columns}
        fields = FEED_FIELDS[feed]
        width = self._layout.width
        self._pick = itemgetter(*(self._layout.indices.get(name, width) for name in fields))
        # Parsed once per distinct text: dates, ID birth dates, communities, grids, diagnoses.
        self._dates: dict[object, object] = {}
        self._moments: dict[object, dt.datetime] = {}
        self._id_heads: dict[str, tuple[dt.date, int] | None] = {}
        self._community_codes: dict[str, str | RowError] = {}
        self._grid_codes: dict[tuple[str, str], str | RowError] = {}
        self._condition_cells: dict[str, tuple[tuple[str, str | None], ...] | RowError] = {}
        self._diagnosis_cells: dict[tuple[str, str], tuple[tuple[str, str | None], ...] | RowError] = {}

    # ------------------------------------------------------------ files

    def _detect_format(self) -> str:
        try:
            with open(self.path, "rb") as handle:
                magic = handle.read(8)
        except OSError as error:
            raise FeedError(
                "feed.unreadable", f"无法打开文件 (cannot open the file: {error.strerror})"
            ) from None
        suffix = self.path.suffix.lower()
        if magic.startswith(b"PK\x03\x04") or suffix in {".xlsx", ".xlsm"}:
            return "xlsx"
        if magic.startswith(b"\xd0\xcf\x11\xe0") or suffix in {".xls", ".et", ".ods", ".numbers"}:
            raise FeedError(
                "feed.format",
                "不支持的文件格式，请另存为xlsx或csv (unsupported file format; save it as .xlsx or .csv)",
            )
        return "csv"

    def _open_text(self) -> Any:
        assert self.encoding is not None
        return open(self.path, encoding=_python_encoding(self.encoding), newline="")

    def _csv_layout(self) -> _Layout:
        with self._open_text() as handle:
            try:
                first = ""
                for first in handle:
                    if first.strip():
                        break
                self._delimiter = "\t" if first.count("\t") > first.count(",") else ","
                self._quoted = '"' in first
                handle.seek(0)
                reader = csv.reader(handle, delimiter=self._delimiter)
                records = []
                start = 1
                for cells in reader:
                    if any(cell.strip() for cell in cells):
                        records.append((start, reader.line_num, cells))
                        if len(records) == HEADER_SEARCH_ROWS:
                            break
                    start = reader.line_num + 1
            except UnicodeDecodeError:
                raise self._encoding_error(self._first_undecodable_line()) from None
            except csv.Error as error:
                raise FeedError("feed.format", f"CSV格式错误 (malformed CSV: {error})") from None
        return _find_header(records, self.columns)

    def _first_undecodable_line(self) -> int | None:
        """The line of the first bytes the file's encoding cannot decode."""
        # No UTF-8 or GB18030 character contains a newline byte: lines split before decoding.
        assert self.encoding is not None
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    raw.decode(self.encoding)
                except UnicodeDecodeError:
                    return number
        return None

    def _encoding_error(self, line: int | None) -> FeedError:
        where = f"第{line}行" if line else "文件中"
        return FeedError(
            "feed.encoding",
            f"{where}有无法按{self.encoding}解码的字节，请统一另存为UTF-8 "
            f"(bytes that are not {self.encoding}{f' at line {line}' if line else ''}; save the file as UTF-8)",
            line=line,
        )

    def _workbook(self) -> Any:
        from openpyxl import load_workbook

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # openpyxl warns about styles it does not read
                return load_workbook(self.path, read_only=True, data_only=True)
        except Exception as error:  # a damaged or mislabelled workbook fails in many ways, all "unreadable"
            raise FeedError(
                "feed.unreadable", f"无法读取Excel文件 (cannot read the Excel file: {type(error).__name__})"
            ) from None

    def _xlsx_layout(self) -> _Layout:
        workbook = self._workbook()
        try:
            sheet = workbook.worksheets[0]
            records = []
            for number, values in enumerate(
                sheet.iter_rows(max_row=HEADER_SEARCH_ROWS * 3, values_only=True), 1
            ):
                cells = [_xlsx_text(value).strip() for value in values]
                if any(cells):
                    records.append((number, number, cells))
                    if len(records) == HEADER_SEARCH_ROWS:
                        break
            self._max_row = sheet.max_row
        finally:
            workbook.close()
        return _find_header(records, self.columns)

    def count_rows(self) -> int:
        """Data rows for a progress bar: lines after the header (blank trailing lines included)."""
        if self.format == "xlsx":
            if self._max_row is None or self._max_row <= self._layout.end_line:  # no or a stale dimension
                workbook = self._workbook()
                try:
                    self._max_row = sum(1 for _ in workbook.worksheets[0].iter_rows(values_only=True))
                finally:
                    workbook.close()
            return max(0, self._max_row - self._layout.end_line)
        lines = 0
        last = b"\n"
        with open(self.path, "rb") as handle:
            while chunk := handle.read(SAMPLE_BYTES):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        if last != b"\n":
            lines += 1
        return max(0, lines - self._layout.end_line)

    # ------------------------------------------------------------ rows

    def __iter__(self) -> Iterator[SourceRow | RowRejection]:
        rows = {
            Feed.health: self._health_rows,
            Feed.insurance: self._insurance_rows,
            Feed.civil: self._civil_rows,
        }[self.feed]
        if self.format != "csv":
            return rows(self._xlsx_values())
        return self._in_line_order(rows, [])

    def _in_line_order(
        self,
        rows: Callable[[Iterable[tuple[int, tuple[Any, ...]]]], Iterator[SourceRow | RowRejection]],
        overflowed: list[RowRejection],
    ) -> Iterator[SourceRow | RowRejection]:
        """The rows, with the CSV lines refused before the row loop in their place by line."""
        for row in rows(self._csv_values(overflowed)):
            if overflowed:
                yield from overflowed
                overflowed.clear()
            yield row
        yield from overflowed

    def _csv_values(self, overflowed: list[RowRejection]) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(line, the feed's fields) for each non-blank row of a CSV file; a row with more filled
        cells than the header has columns goes to ``overflowed`` instead."""
        delimiter = self._delimiter
        blank = delimiter + " \t\r\n\u3000"
        end_line = self._layout.end_line
        pick, width = self._pick, self._layout.width
        line = 0
        with self._open_text() as handle:
            try:
                for _ in range(end_line):
                    next(handle, None)
                line = end_line
                if self._quoted:  # a fully quoted export: csv reads it all
                    reader = csv.reader(handle, delimiter=delimiter)
                    for cells in reader:
                        start, line = line + 1, end_line + reader.line_num
                        if values := self._values(cells, start, overflowed):
                            yield start, values
                    return
                for text in handle:
                    line += 1
                    if '"' in text:  # a quoted cell, perhaps over several lines
                        reader = csv.reader(chain((text,), handle), delimiter=delimiter)
                        cells = next(reader, [])
                        start, line = line, line + reader.line_num - 1
                        if values := self._values(cells, start, overflowed):
                            yield start, values
                        continue
                    cells = text.rstrip("\r\n").split(delimiter)
                    if len(cells) != width:
                        if values := self._values(cells, line, overflowed):
                            yield line, values
                        continue
                    cells.append("")  # where absent optional columns point
                    values = pick(cells)
                    if values[0] or text.strip(blank):  # no record key: perhaps a row of empty cells
                        yield line, values
            except UnicodeDecodeError:
                raise self._encoding_error(self._first_undecodable_line()) from None
            except csv.Error as error:
                raise FeedError(
                    "feed.format", f"第{line}行CSV格式错误 (malformed CSV at line {line}: {error})"
                ) from None

    def _xlsx_values(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        width = self._layout.width
        fields = FEED_FIELDS[self.feed]
        date_columns = {
            self._layout.indices[f] for f in fields if f in DATE_FIELDS and f in self._layout.indices
        }
        key_at = self._layout.indices["source_key"]
        workbook = self._workbook()
        try:
            epoch = workbook.epoch.date()  # 1904 for a workbook from old Mac Excel
            sheet = workbook.worksheets[0]
            first = self._layout.end_line + 1
            for number, row in enumerate(sheet.iter_rows(min_row=first, values_only=True), first):
                cells: list[Any] = [
                    _xlsx_date(value, epoch) if index in date_columns else _xlsx_text(value)
                    for index, value in enumerate(row[:width])
                ]
                key = row[key_at] if key_at < len(row) else None
                if key.__class__ is float and not -EXACT_NUMBERS < key < EXACT_NUMBERS:  # type: ignore[operator]
                    cells[key_at] = LOST_DIGITS_KEY  # a long key stored as a number: not its digits
                if values := self._values(cells):
                    yield number, values
        finally:
            workbook.close()

    def _values(
        self, cells: list[Any], line: int = 0, overflowed: list[RowRejection] | None = None
    ) -> tuple[Any, ...] | None:
        """The feed's fields from a row of any length; None for a blank row, or for a CSV row
        (``overflowed`` given) with filled cells past the header's last column."""
        if not any(cell.strip() if cell.__class__ is str else cell is not None for cell in cells):
            return None
        width = self._layout.width
        if len(cells) > width:
            # An unquoted comma in an address shifts every later cell: cutting the row to the
            # header's width would store a wrong value under the right header.
            if overflowed is not None and any(cell.strip() for cell in cells[width:]):
                # No community: the cells after the comma are not where the header says.
                key = self._pick([*cells[:width], ""])[0]
                overflowed.append(self._rejection(self._overflow_error(len(cells), width), line, key))
                return None
            del cells[width:]
        else:
            cells.extend([""] * (width - len(cells)))
        cells.append("")
        return self._pick(cells)  # type: ignore[no-any-return]

    # The three row loops share one shape: unpack the feed's fields, check each by a dictionary
    # lookup on the common path (a helper method on a miss or a problem), and build the row.
    # A helper raises RowError; the loop turns it into the row's rejection.

    def _health_rows(
        self, records: Iterable[tuple[int, tuple[Any, ...]]]
    ) -> Iterator[SourceRow | RowRejection]:
        claim: Any = {}.setdefault
        identity, communities, grids = self._identity, self._community_codes.get, self._grid_codes.get
        moments, condition_cells, special_name = (
            self._moments.get,
            self._condition_cells.get,
            NAME_SPECIAL.search,
        )
        living_terms = vocab.LIVING_ARRANGEMENTS.get
        insurance_terms = {**vocab.PAYMENT_METHOD_CODES, **vocab.INSURANCE_TYPES}.get
        feed, condition = Feed.health, ConditionFact
        for line, values in records:
            (
                key, name, id_number, sex, birth_date, phone, address, community, grid, living, insurance,
                conditions, systolic, diastolic, glucose, measured_on, updated_on,
            ) = values  # fmt: skip
            try:
                key = key.strip()
                if not key or len(key) > 64 or claim(key, line) != line:
                    raise self._key_error(key, claim)
                name = name.strip()
                if not name or len(name) > MAX_NAME_LENGTH or special_name(name):
                    name = self._name(name)
                id_number, upgraded, sex, birth_date = identity(id_number, sex, birth_date, True)
                phone = self._phone(phone) if phone else None
                address = self._text(address, "address", 200) if address else None
                community_code = communities(community)
                if community_code.__class__ is not str:
                    community_code = self._community(community)
                grid_code = None
                if grid:
                    grid_code = grids((grid, community_code))
                    if grid_code.__class__ is not str:
                        grid_code = self._grid(grid, community_code)
                attributes: dict[str, object] = {}
                if living and (
                    term := living_terms(living)
                    or self._term(vocab.LIVING_ARRANGEMENTS, living, "living_arrangement")
                ):
                    attributes["living_arrangement"] = term
                if insurance and (
                    term := insurance_terms(insurance) or self._insurance_type(insurance, True)
                ):
                    attributes["insurance_type"] = term
                facts = []
                if conditions:
                    pairs = condition_cells(conditions)
                    if pairs.__class__ is not tuple:
                        pairs = self._condition_pairs(conditions)
                    facts = [condition(code, display) for code, display in pairs]
                observations = []
                if systolic or diastolic or glucose:
                    observations = self._measurements(systolic, diastolic, glucose, measured_on)
                observed_at = moments(updated_on) or self._moment(updated_on, "updated_on")
                yield SourceRow(
                    feed, line, key, observed_at, name, id_number, upgraded, sex, birth_date, phone, address,
                    community_code, grid_code, attributes, facts, observations,
                )  # fmt: skip
            except RowError as error:
                yield self._rejection(error, line, key, community)

    def _insurance_rows(
        self, records: Iterable[tuple[int, tuple[Any, ...]]]
    ) -> Iterator[SourceRow | RowRejection]:
        claim: Any = {}.setdefault
        identity, moments, special_name = self._identity, self._moments.get, NAME_SPECIAL.search
        insurance_terms = vocab.INSURANCE_TYPES.get
        feed = Feed.insurance
        for line, values in records:
            (
                key, name, id_number, sex, birth_date, phone, insurance, visit_date, facility, diagnosis_code,
                diagnosis_name, long_prescription, total_cost,
            ) = values  # fmt: skip
            try:
                key = key.strip()
                if not key or len(key) > 64 or claim(key, line) != line:
                    raise self._key_error(key, claim)
                name = name.strip()
                if not name or len(name) > MAX_NAME_LENGTH or special_name(name):
                    name = self._name(name)
                id_number, upgraded, sex, birth_date = identity(id_number, sex, birth_date, False)
                phone = self._phone(phone) if phone else None
                term = (insurance and insurance_terms(insurance)) or self._insurance_type(insurance, False)
                attributes: dict[str, object] = {"insurance_type": term}
                observed_at = moments(visit_date) or self._moment(visit_date, "visit_date")
                long = self._flag(long_prescription, "long_prescription") if long_prescription else False
                facts = self._diagnoses(diagnosis_code, diagnosis_name, bool(long))
                if facility and (facility := self._text(facility, "facility", 200)):
                    attributes["facility"] = facility
                if total_cost and (total_cost := total_cost.strip()):
                    attributes["total_cost"] = self._cost(total_cost)
                yield SourceRow(
                    feed, line, key, observed_at, name, id_number, upgraded, sex, birth_date, phone, None, None,
                    None, attributes, facts, [],
                )  # fmt: skip
            except RowError as error:
                yield self._rejection(error, line, key)

    def _civil_rows(
        self, records: Iterable[tuple[int, tuple[Any, ...]]]
    ) -> Iterator[SourceRow | RowRejection]:
        claim: Any = {}.setdefault
        identity, communities, moments = self._identity, self._community_codes.get, self._moments.get
        special_name, term, flag = NAME_SPECIAL.search, self._term, self._flag
        living_terms, capability_terms = vocab.LIVING_ARRANGEMENTS.get, vocab.CAPABILITY_LEVELS.get
        feed = Feed.civil
        for line, values in records:
            (
                key, name, id_number, sex, birth_date, phone, address, community, living, capability,
                disability, dibao, tekun, updated_on,
            ) = values  # fmt: skip
            try:
                key = key.strip()
                if not key or len(key) > 64 or claim(key, line) != line:
                    raise self._key_error(key, claim)
                name = name.strip()
                if not name or len(name) > MAX_NAME_LENGTH or special_name(name):
                    name = self._name(name)
                id_number, upgraded, sex, birth_date = identity(id_number, sex, birth_date, False)
                phone = self._phone(phone) if phone else None
                address = self._text(address, "address", 200) if address else None
                community_code = communities(community)
                if community_code.__class__ is not str:
                    community_code = self._community(community)
                attributes: dict[str, object] = {}
                if living and (
                    value := living_terms(living)
                    or term(vocab.LIVING_ARRANGEMENTS, living, "living_arrangement")
                ):
                    attributes["living_arrangement"] = value
                if capability and (
                    value := capability_terms(capability)
                    or term(vocab.CAPABILITY_LEVELS, capability, "capability_level")
                ):
                    attributes["capability_level"] = value
                if disability and (
                    value := term(vocab.DISABILITY_GRADES, disability, "disability_cert_grade")
                ):
                    attributes["disability_cert_grade"] = value
                if dibao and (value := flag(dibao, "dibao")) is not None:
                    attributes["dibao"] = value
                if tekun and (value := flag(tekun, "tekun")) is not None:
                    attributes["tekun"] = value
                observed_at = moments(updated_on) or self._moment(updated_on, "updated_on")
                yield SourceRow(
                    feed, line, key, observed_at, name, id_number, upgraded, sex, birth_date, phone, address,
                    community_code, None, attributes, [], [],
                )  # fmt: skip
            except RowError as error:
                yield self._rejection(error, line, key, community)

    # ------------------------------------------------------------ fields (misses and problems)

    def _overflow_error(self, cells: int, width: int) -> RowError:
        return RowError(
            "row.columns",
            f"本行有{cells}列，多于表头的{width}列；含逗号的内容请加英文双引号 "
            f"(this line has {cells} cells but the header {width}; quote a value that holds a comma)",
        )

    def _rejection(self, error: RowError, line: int, key: object, community: object = None) -> RowRejection:
        column = self._labels.get(error.field) if error.field else None
        source_key = key.strip() if isinstance(key, str) and key != LOST_DIGITS_KEY else None
        community_code = self._row_community(community) if community else None
        return RowRejection(line, error.code, error.message, source_key or None, column, community_code)

    def _row_community(self, raw: object) -> str | None:
        """The community a rejected row names, resolved even when an earlier column stopped the row:
        an area's registry keepers read only their communities' rejections (docs/access.md)."""
        if not isinstance(raw, str):
            return None
        try:
            return self._community(raw)
        except RowError:
            return None  # empty, unknown or ambiguous: names no community

    def _key_error(self, key: str, claim: Any) -> RowError:
        if not key:
            return self._required("source_key")
        label = self._labels["source_key"]
        if key == LOST_DIGITS_KEY:
            return RowError(
                "field.format",
                f"{label}被Excel存为数字，末几位已丢失，请将该列设为文本后重新导出 "
                f"({label} was stored as a number and lost its last digits; format the column as text "
                "and export again)",
                "source_key",
            )
        if len(key) > 64:
            return RowError(
                "field.format", f"{label}超过64个字符 ({label} longer than 64 characters)", "source_key"
            )
        first = claim(key, 0)
        return RowError(
            "source.duplicate_key",
            f"{label}与第{first}行重复，本行未导入 (same {label} as line {first}; this line was skipped)",
            "source_key",
        )

    def _required(self, name: str) -> RowError:
        label = self._labels[name]
        return RowError("field.required", f"必填项“{label}”为空 (required value {label} is empty)", name)

    def _name(self, name: str) -> str:
        if not name:
            raise self._required("name")
        try:
            return registry_name(name)
        except NameTooLong as error:
            raise RowError(error.code, error.message, "name") from None

    def _identity(
        self, id_raw: str, sex_raw: str, birth_raw: object, required: bool
    ) -> tuple[str | None, bool, str | None, dt.date | None]:
        """ID number, whether upgraded from 15 digits, sex and birth date, agreeing with each other."""
        sex = vocab.SEX.get(sex_raw, "?") if sex_raw else None
        if sex == "?":
            sex = self._sex(sex_raw)
        birth = None
        if birth_raw:
            birth = self._dates.get(birth_raw)
            if birth.__class__ is not dt.date:
                birth = self._date(birth_raw, "birth_date")
        number = None
        if id_raw:
            # GB 11643 check on the common path: the weighted sum is the part of the first 14
            # digits (remembered with their birth date) plus the part of the sequence digits.
            if (
                len(id_raw) == 18
                and (head := self._id_heads.get(id_raw[:14]))
                and (tail := _SEQUENCE_SUMS.get(id_raw[14:17])) is not None
                and CHECK_CHARS[(head[1] + tail) % 11] == id_raw[17]
            ):
                number, id_birth, id_sex, upgraded = id_raw, head[0], _SEQUENCE_SEX[id_raw[16]], False
            else:
                number, id_birth, id_sex, upgraded = self._id_number(id_raw)
        if number is not None:
            if sex is not None and sex != id_sex:
                raise RowError(
                    "resident.sex.mismatch",
                    "性别与身份证号不一致 (sex does not agree with the ID number)",
                    "sex",
                )
            if birth is not None and birth != id_birth:
                raise RowError(
                    "resident.birth_date.mismatch",
                    "出生日期与身份证号不一致 (birth date does not agree with the ID number)",
                    "birth_date",
                )
            return number, upgraded, id_sex, id_birth  # type: ignore[return-value]
        if required and not (sex_raw and sex_raw.strip()):
            raise self._required("sex")
        if birth is None:
            if required:
                raise self._required("birth_date")
            raise RowError(
                "resident.identity.insufficient",
                "无身份证号时须填写出生日期 (without an ID number the birth date is required)",
                "birth_date",
            )
        return None, False, sex, birth  # type: ignore[return-value]

    def _sex(self, raw: str) -> str | None:
        text = raw.strip()
        sex = vocab.SEX.get(text, "?") if text else None
        if sex == "?":
            raise RowError("field.vocabulary", f"性别取值无法识别：{text[:10]} (sex not recognised)", "sex")
        return sex

    def _id_number(self, raw: str) -> tuple[str | None, dt.date | None, str | None, bool]:
        """An ID number off the fast path: padded, lower-case x, 15 digits, unseen birth date, or wrong."""
        text = unicodedata.normalize("NFKC", raw).strip().upper()  # full-width digits and Ｘ/ｘ too
        if not text or text in vocab.BLANK_MARKERS:
            return None, None, None, False
        if _SCIENTIFIC.fullmatch(text):
            raise RowError(
                "resident.id_number.numeric",
                "身份证号被存为数字，末几位已丢失，请将该列设为文本后重新导出 "
                "(ID number was stored as a number and lost its last digits; format the column as text "
                "and export again)",
                "id_number",
            )
        if not text.isascii():  # digits of another script: GB 11643 numbers are ASCII digits and X
            raise RowError(
                "resident.id_number.format",
                "身份证号应为18位（或旧式15位）数字 (ID number must be 18 digits, or 15)",
                "id_number",
            )
        if len(text) == 18 and text[:17].isdigit() and text.isascii():
            head = self._id_head(text[:14])
            tail = _SEQUENCE_SUMS[text[14:17]]
            if head and CHECK_CHARS[(head[1] + tail) % 11] == text[17]:
                return text, head[0], _SEQUENCE_SEX[text[16]], False
        try:
            resident_id = parse_id_number(text, self.today)
        except IdNumberError as error:
            message = error.message
            if error.code == "resident.id_number.checksum":  # its hint would reveal part of the number
                message = "身份证号校验位错误 (ID number check character is wrong)"
            raise RowError(error.code, message, "id_number") from None
        return resident_id.number, resident_id.birth_date, resident_id.sex, resident_id.upgraded_from_15

    def _id_head(self, head: str) -> tuple[dt.date, int] | None:
        """Birth date and weighted-sum part of an ID number's first 14 digits; None if impossible."""
        found = self._id_heads.get(head)
        if found is None and head not in self._id_heads:
            try:
                birth = dt.date(int(head[6:10]), int(head[10:12]), int(head[12:14]))
            except ValueError:
                birth = None
            if birth and birth.year >= EARLIEST_YEAR and birth <= self.today:
                found = (
                    birth,
                    sum(int(digit) * weight for digit, weight in zip(head, WEIGHTS[:14], strict=True)),
                )
            self._remember(self._id_heads, head, found)
        return found

    def _phone(self, raw: str) -> str | None:
        if (
            len(raw) == 11
            and raw.isdigit()
            and raw.isascii()
            and raw[0] == "1"
            and raw[1] in "3456789"
            and raw.count("0") < 8
        ):
            return raw  # the common case: a plain mobile number
        phone = raw.strip()
        if not phone.isascii():
            phone = unicodedata.normalize("NFKC", phone).strip()  # full-width digits, ＋, －, （）
        if not phone or phone in vocab.BLANK_MARKERS:
            return None
        for mark in (" ", "-", "\u3000", "(", ")", "（", "）"):
            phone = phone.replace(mark, "")
        if phone.endswith(".0"):  # a number that went through a spreadsheet as a float
            phone = phone[:-2]
        if phone.startswith("+86"):
            phone = phone[3:]
        elif phone.startswith("0086"):
            phone = phone[4:]
        if phone.isdigit() and phone.isascii():
            if phone.count("0") >= 8 or len(set(phone)) == 1:
                return None  # a placeholder (00000000000, 13800000000): no phone, as in linkage
            if len(phone) == 11 and phone[0] == "1" and phone[1] in "3456789":
                return phone  # mobile
            if 10 <= len(phone) <= 12 and phone[0] == "0" and phone[1] != "0":
                return phone  # landline: 0 + area code + local number
        raise RowError(
            "resident.phone.format",
            "联系电话应为11位手机号或带区号的固定电话 (phone must be an 11-digit mobile or a landline with area code)",
            "phone",
        )

    def _text(self, raw: str, name: str, limit: int) -> str | None:
        text = raw.strip()
        if text in vocab.BLANK_MARKERS:
            return None
        if len(text) > limit:
            label = self._labels[name]
            raise RowError(
                "field.format", f"{label}超过{limit}个字 ({label} longer than {limit} characters)", name
            )
        return text or None

    def _number(self, text: str, name: str) -> float:
        try:
            return float(text)
        except ValueError:
            label = self._labels[name]
            raise RowError("field.format", f"{label}应为数字 ({label} must be a number)", name) from None

    def _cost(self, text: str) -> float:
        cost = self._number(text.replace(",", ""), "total_cost")
        if not cost >= 0:
            label = self._labels["total_cost"]
            raise RowError("field.format", f"{label}不能为负数 ({label} cannot be negative)", "total_cost")
        return cost

    def _term(self, vocabulary: dict[str, Any], raw: str, name: str) -> Any:
        """A vocabulary value for a cell the plain lookup missed: padded, blank or unknown."""
        text = raw.strip()
        if not text:
            return None
        value = vocabulary.get(text, "?")
        if value == "?":
            label = self._labels[name]
            raise RowError(
                "field.vocabulary",
                f"{label}的取值无法识别：{text[:20]} (value not in the vocabulary of {label})",
                name,
            )
        return value

    def _flag(self, raw: str, name: str) -> bool | None:
        value = vocab.YES_NO.get(raw)
        return self._term(vocab.YES_NO, raw, name) if value is None else value

    def _insurance_type(self, raw: str, codes: bool) -> str | None:
        text = raw.strip() if raw else ""
        if not text:
            if codes:  # optional in the health file
                return None
            raise self._required("insurance_type")
        return vocab.insurance_type(text, codes=codes)

    def _date(self, raw: object, name: str) -> dt.date | None:
        """A date cell, parsed once per distinct text; None when blank."""
        if not raw:
            return None
        hit = self._dates.get(raw)
        if hit is None:
            hit = self._parse_date(raw)
        if hit.__class__ is dt.date:
            return hit  # type: ignore[return-value]
        if hit == "":
            return None
        code, message = hit  # type: ignore[misc]
        label = self._labels[name]
        raise RowError(code, f"{label}{message}", name)

    def _parse_date(self, raw: object) -> object:
        if isinstance(raw, dt.date):
            day: dt.date | None = raw
        elif not (text := str(raw).strip()):
            self._remember(self._dates, raw, "")
            return ""
        else:
            try:
                day = parse_date_text(text)
            except ValueError:
                day = None
        result: object
        if day is None or day.year < EARLIEST_YEAR:
            result = ("date.invalid", "不是有效日期 (not a valid date; use YYYY-MM-DD)")
        elif day > self.today:
            result = ("date.future", "晚于今天 (date is in the future)")
        else:
            result = day
        self._remember(self._dates, raw, result)
        return result

    def _moment(self, raw: object, name: str) -> dt.datetime:
        """A required date cell as that day at 00:00 UTC (see the module docstring)."""
        day = self._date(raw, name)
        if day is None:
            raise self._required(name)
        moment = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        self._remember(self._moments, raw, moment)
        return moment

    @staticmethod
    def _remember(cache: dict[Any, Any], key: object, value: object) -> None:
        if len(cache) < 200_000:  # bounded: a hostile file cannot grow it without end
            cache[key] = value

    def _community(self, raw: str) -> str:
        code = self._community_codes.get(raw)
        if code is None:
            text = raw.strip()
            if not text:
                raise self._required("community")
            try:
                code = self.communities.resolve(text)
            except RowError as error:
                code = error
            self._remember(self._community_codes, raw, code)
        if code.__class__ is str:
            return code  # type: ignore[return-value]
        raise RowError(code.code, code.message, "community")  # type: ignore[union-attr]

    def _grid(self, raw: str, community_code: str) -> str | None:
        code = self._grid_codes.get((raw, community_code))
        if code is None:
            if not raw.strip() or raw.strip() in vocab.BLANK_MARKERS:
                return None
            try:
                code = self.communities.resolve_grid(raw, community_code)
            except RowError as error:
                code = error
            self._remember(self._grid_codes, (raw, community_code), code)
        if code.__class__ is str:
            return code  # type: ignore[return-value]
        raise RowError(code.code, code.message, "grid")  # type: ignore[union-attr]

    def _condition_pairs(self, raw: str) -> tuple[tuple[str, str | None], ...]:
        parsed = self._condition_cells.get(raw)
        if parsed is None:
            try:
                parsed = parse_conditions(raw)
            except RowError as error:
                parsed = error
            self._remember(self._condition_cells, raw, parsed)
        if parsed.__class__ is RowError:
            raise RowError(parsed.code, parsed.message, "conditions")  # type: ignore[union-attr]
        return parsed  # type: ignore[return-value]

    def _diagnoses(self, code_raw: str, name_raw: str, long_prescription: bool) -> list[ConditionFact]:
        pairs = self._diagnosis_cells.get((code_raw, name_raw))
        if pairs is None:
            try:
                pairs = parse_diagnoses(code_raw, name_raw)
            except RowError as error:
                pairs = error
            self._remember(self._diagnosis_cells, (code_raw, name_raw), pairs)
        if pairs.__class__ is RowError:
            raise RowError(pairs.code, pairs.message, "diagnosis_code")  # type: ignore[union-attr]
        if not pairs:
            raise self._required("diagnosis_code")
        return [ConditionFact(code, display, long_prescription) for code, display in pairs]  # type: ignore[union-attr]

    def _measurements(
        self, systolic: str, diastolic: str, glucose: str, measured_on: object
    ) -> list[ObservationFact]:
        """Blood pressure and fasting glucose; the checks that name a problem run only on a miss."""
        effective_at = self._moments.get(measured_on)
        if effective_at is not None:
            try:
                observations = []
                if systolic or diastolic:
                    high, low = float(systolic), float(diastolic)
                    if not (_SBP_LOW <= high <= _SBP_HIGH and _DBP_LOW <= low <= _DBP_HIGH and high > low):
                        raise ValueError
                    observations.append(ObservationFact(LOINC_BP_PANEL, high, "mm[Hg]", effective_at, low))
                if glucose:
                    value = float(glucose)
                    if not _GLUCOSE_LOW <= value <= _GLUCOSE_HIGH:
                        raise ValueError
                    observations.append(ObservationFact(LOINC_FASTING_GLUCOSE, value, "mmol/L", effective_at))
                return observations
            except ValueError:
                pass  # blank, padded, not a number or out of range: the exact checks say which
        return self._checked_measurements(systolic, diastolic, glucose, measured_on)

    def _checked_measurements(
        self, systolic: str, diastolic: str, glucose: str, measured_on: object
    ) -> list[ObservationFact]:
        systolic, diastolic, glucose = systolic.strip(), diastolic.strip(), glucose.strip()
        if not (systolic or diastolic or glucose):
            return []
        effective_at = self._moments.get(measured_on) or self._moment(measured_on, "measured_on")  # type: ignore[arg-type]
        observations: list[ObservationFact] = []
        if systolic or diastolic:
            if not systolic or not diastolic:
                raise RowError(
                    "observation.incomplete",
                    "收缩压和舒张压须同时填写 (systolic and diastolic pressure go together)",
                    "diastolic" if systolic else "systolic",
                )
            high = self._number(systolic, "systolic")
            low = self._number(diastolic, "diastolic")
            if not SYSTOLIC_RANGE[0] <= high <= SYSTOLIC_RANGE[1]:
                raise _out_of_range("收缩压", "systolic", SYSTOLIC_RANGE, "mmHg")
            if not DIASTOLIC_RANGE[0] <= low <= DIASTOLIC_RANGE[1]:
                raise _out_of_range("舒张压", "diastolic", DIASTOLIC_RANGE, "mmHg")
            if high <= low:
                raise RowError(
                    "observation.range",
                    "收缩压应高于舒张压 (systolic must be higher than diastolic)",
                    "diastolic",
                )
            observations.append(ObservationFact(LOINC_BP_PANEL, high, "mm[Hg]", effective_at, low))
        if glucose:
            value = self._number(glucose, "fasting_glucose")
            if not GLUCOSE_RANGE[0] <= value <= GLUCOSE_RANGE[1]:
                raise _out_of_range("空腹血糖", "fasting_glucose", GLUCOSE_RANGE, "mmol/L")
            observations.append(ObservationFact(LOINC_FASTING_GLUCOSE, value, "mmol/L", effective_at))
        return observations


def _out_of_range(label: str, name: str, bounds: tuple[float, float], unit: str) -> RowError:
    low, high = (f"{bound:g}" for bound in bounds)
    return RowError(
        "observation.range",
        f"{label}超出合理范围{low}-{high} {unit} ({label} outside {low}-{high} {unit})",
        name,
    )


def parse_conditions(text: str) -> tuple[tuple[str, str | None], ...]:
    """A 慢病诊断 / 疾病史 cell as (ICD-10 code, display) pairs; raises ``RowError`` on an unknown item.

    Items are separated by ; ； , ， 、 and each is a code ("I10"), a code and a name
    ("I10 高血压", "高血压(I10)") or a name in the vocabulary ("高血压").
    """
    found: dict[str, str | None] = {}
    for part in _CONDITION_SPLIT.split(text):
        item = part.strip()
        if not item or item in vocab.NO_CONDITION:
            continue
        code: str | None
        display: str | None = None
        if item[0].isascii() and item[0].isalpha() and item not in vocab.CONDITION_NAMES:
            match = _CODE_FIRST.fullmatch(item)
            code = parse_icd10(match[1]) if match else None
            if code is None:
                raise RowError(
                    "condition.code",
                    f"诊断编码不是ICD-10格式：{item[:20]} (not an ICD-10 code, e.g. I10 or E11.9)",
                )
            display = match[2].strip() if match and match[2].strip() else code_display(code)  # type: ignore[index]
        elif (match := _CODE_LAST.fullmatch(item)) and (code := parse_icd10(match[2])):
            display = match[1].strip() or code_display(code)
        else:
            known = vocab.CONDITION_NAMES.get(item)
            if known is None:
                raise RowError(
                    "condition.unknown",
                    f"无法识别的疾病名称：{item[:20]}，请写ICD-10编码 (unknown diagnosis; write its ICD-10 code)",
                )
            code, display = known
        found.setdefault(code, display[:100] if display else None)
    return tuple(found.items())


def parse_diagnoses(codes: str, names: str) -> tuple[tuple[str, str | None], ...]:
    """诊断编码 and 诊断名称 cells as (ICD-10 code, display) pairs; raises ``RowError`` on a bad code.

    Several codes are separated as in ``parse_conditions``; the names pair up with them when
    they are as many, and a single code takes the whole name cell.
    """
    code_items = [part.strip() for part in _CONDITION_SPLIT.split(codes) if part.strip()] if codes else []
    name_items = [part.strip() for part in _CONDITION_SPLIT.split(names) if part.strip()] if names else []
    if len(name_items) != len(code_items):  # one name for several codes cannot be shared out
        name_items = [names.strip()] if len(code_items) == 1 and names else []
    found: dict[str, str | None] = {}
    for index, text in enumerate(code_items):
        code = parse_icd10(text)
        if code is None:
            raise RowError(
                "condition.code",
                f"诊断编码不是ICD-10格式：{text[:20]} (diagnosis code is not ICD-10, e.g. I10 or E11.9)",
            )
        display = (name_items[index] if index < len(name_items) else "") or code_display(code)
        found.setdefault(code, display[:100] if display else None)
    return tuple(found.items())


def read_feed(
    path: Path, feed: Feed, communities: CommunityDirectory, today: dt.date | None = None
) -> FeedReader:
    """Open an agency file: checks its format, encoding and header now; rows come on iteration."""
    return FeedReader(path, feed, communities, today)
