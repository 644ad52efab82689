"""Geography: importing the area tree and organisations, households, and tree queries.

The area tree (区 > 街道 > 社区 > 网格) comes from a CSV the district keeps; every area carries a
materialised ``path`` of codes from the district down, so "everything under this street" is one
prefix match. Imports are all-or-nothing: every row is checked first, and a file with any
rejected row changes nothing. Services here do not commit; the caller's unit of work does.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, func, insert, select
from sqlalchemy.orm import Session

from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.access.denials import queue_denial
from yiyang.access.policy import DataCategory, FieldGroup, Purpose
from yiyang.db import allocate_ids, bulk_insert
from yiyang.errors import Forbidden, Invalid, NotFound
from yiyang.geo.models import (
    LEVEL_ORDER,
    Area,
    AreaLevel,
    Household,
    LivingArrangement,
    Organisation,
    OrganisationKind,
)
from yiyang.residents.models import Resident, ResidentStatus
from yiyang.residents.precedence import FactRef, replaces

# Column limits, as in geo/models.py.
AREA_CODE_MAX = 32
AREA_NAME_MAX = 100
AREA_PATH_MAX = 200
ORG_CODE_MAX = 40
ORG_NAME_MAX = 200
ADDRESS_MAX = 200
PHONE_MAX = 40

# 层级 as written in district files, Chinese or English. 镇/乡 sit at street level and 村 at
# community level in the 统计用区划代码 scheme, so files from mixed urban-rural districts import too.
LEVEL_LABELS: dict[str, AreaLevel] = {
    "区": AreaLevel.district,
    "县": AreaLevel.district,
    "district": AreaLevel.district,
    "街道": AreaLevel.street,
    "镇": AreaLevel.street,
    "乡": AreaLevel.street,
    "street": AreaLevel.street,
    "社区": AreaLevel.community,
    "村": AreaLevel.community,
    "community": AreaLevel.community,
    "网格": AreaLevel.grid,
    "grid": AreaLevel.grid,
}

LEVEL_NAMES_ZH: dict[AreaLevel, str] = {
    AreaLevel.district: "区",
    AreaLevel.street: "街道",
    AreaLevel.community: "社区",
    AreaLevel.grid: "网格",
}

ORGANISATION_KIND_LABELS: dict[OrganisationKind, str] = {
    OrganisationKind.health_centre: "社区卫生服务中心",
    OrganisationKind.health_station: "社区卫生服务站",
    OrganisationKind.family_doctor_team: "家庭医生团队",
    OrganisationKind.elderly_care_station: "养老驿站",
    OrganisationKind.elderly_care_institution: "养老机构",
    OrganisationKind.hospital: "医院",
    OrganisationKind.social_organisation: "社会组织",
    OrganisationKind.street_office: "街道办事处",
    OrganisationKind.civil_affairs: "民政局",
    OrganisationKind.health_commission: "卫生健康委员会",
    OrganisationKind.medical_insurance: "医疗保障局",
}

# Other spellings seen in agency files, and the enum values themselves.
_KIND_ALIASES: dict[str, OrganisationKind] = {
    "卫健委": OrganisationKind.health_commission,
    "医保局": OrganisationKind.medical_insurance,
    "社区养老服务驿站": OrganisationKind.elderly_care_station,
    "养老服务驿站": OrganisationKind.elderly_care_station,
    "养老院": OrganisationKind.elderly_care_institution,
    "街道办": OrganisationKind.street_office,
}


class GeoImportError(Invalid):
    """A file that cannot be read at all (encoding, missing columns); no row was looked at."""


@dataclass(frozen=True, slots=True)
class GeoRejection:
    line: int
    code: str  # machine code, e.g. "geo.parent.unknown"
    message: str  # Chinese first, English in brackets
    key: str | None = None  # the row's area or organisation code
    column: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "code": self.code,
            "message": self.message,
            "key": self.key,
            "column": self.column,
        }


@dataclass(slots=True)
class GeoImportReport:
    """What an import did; ``applied`` is false when any row was rejected (then nothing changed)."""

    filename: str
    encoding: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[GeoRejection] = field(default_factory=list)

    @property
    def applied(self) -> bool:
        return not self.rejections


# --- pure helpers -----------------------------------------------------------------------------


def parse_level(raw: str) -> AreaLevel | None:
    """The area level for a 层级 cell (区/街道/社区/网格 or English), or None when unknown."""
    return LEVEL_LABELS.get(normalise_text(raw).lower())


def parse_organisation_kind(raw: str) -> OrganisationKind | None:
    """The organisation kind for a 机构类型 cell: its Chinese label, a known alias or the enum value."""
    text = normalise_text(raw)
    for kind, label in ORGANISATION_KIND_LABELS.items():
        if text == label:
            return kind
    if text in _KIND_ALIASES:
        return _KIND_ALIASES[text]
    try:
        return OrganisationKind(text.lower())
    except ValueError:
        return None


def normalise_text(raw: str | None) -> str:
    """Full-width characters to half-width (NFKC) and every kind of space removed."""
    if not raw:
        return ""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(ch for ch in text if not ch.isspace())


def address_key(address: str | None) -> str:
    """The matching key of an address: spaces gone, full-width to half-width, letters upper case."""
    return normalise_text(address).upper()[:ADDRESS_MAX]


def decode_file(raw: bytes) -> tuple[str, str]:
    """Text and encoding name of a district or agency file: UTF-8 (BOM or not), else GB18030."""
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        raise GeoImportError(
            "geo.import.encoding", "无法识别文件编码，请使用 UTF-8 或 GB18030 (file must be UTF-8 or GB18030)"
        ) from None


def _csv_rows(
    text: str, columns: dict[str, tuple[str, ...]], required: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {field: cell}) for each non-blank row; the header is line 1."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [normalise_text(cell) for cell in next(reader)]
    except StopIteration:
        raise GeoImportError("geo.import.empty", "文件为空 (the file is empty)") from None
    except csv.Error as error:
        raise _malformed(reader.line_num, error) from None
    positions: dict[str, int] = {}
    for name, headers in columns.items():
        for index, cell in enumerate(header):
            if cell in headers or cell.lower() in headers:
                positions[name] = index
                break
    missing = [columns[name][0] for name in required if name not in positions]
    if missing:
        raise GeoImportError(
            "geo.import.header",
            f"缺少必需的列：{'、'.join(missing)} (missing required columns: {', '.join(missing)})",
            missing=missing,
        )
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as error:  # a cell over the csv module's size limit, say: the file is unusable
            raise _malformed(reader.line_num, error) from None
        if cells is None:
            return
        if not any(cell.strip() for cell in cells):
            continue
        values = {
            name: (cells[index].strip() if index < len(cells) else "") for name, index in positions.items()
        }
        yield reader.line_num, values


def _malformed(line: int, error: csv.Error) -> GeoImportError:
    return GeoImportError(
        "geo.import.csv", f"第{line}行CSV格式错误 (malformed CSV at line {line}: {error})", line=line
    )


def control_characters(text: str) -> bool:
    """Whether a cell holds control characters (a NUL, which PostgreSQL cannot store, among them)."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


# --- the area tree ----------------------------------------------------------------------------

GEOGRAPHY_COLUMNS: dict[str, tuple[str, ...]] = {
    "level": ("层级", "level"),
    "code": ("编码", "区划编码", "code"),
    "name": ("名称", "区划名称", "name"),
    "parent_code": ("上级编码", "上级区划编码", "parent_code"),
}


@dataclass(slots=True)
class _AreaRow:
    line: int
    level: AreaLevel
    code: str
    name: str
    parent_code: str


@dataclass(frozen=True, slots=True)
class _KnownArea:
    id: int
    level: AreaLevel
    name: str
    parent_code: str | None
    path: str


def _known_areas(session: Session) -> dict[str, _KnownArea]:
    rows = session.execute(select(Area.id, Area.code, Area.level, Area.name, Area.parent_id, Area.path)).all()
    code_of = {row.id: row.code for row in rows}
    return {
        row.code: _KnownArea(row.id, row.level, row.name, code_of.get(row.parent_id), row.path)
        for row in rows
    }


def import_geography(session: Session, path: Path | str) -> GeoImportReport:
    """Import or update the area tree from a CSV with 层级,编码,名称,上级编码.

    Rows may come in any order. A re-import updates names and changes nothing else; a row that
    would move an area, change its level, or hang it under an unknown or wrong-level parent is
    rejected with its line number, and then no row of the file is applied.
    """
    path = Path(path)
    text, encoding = decode_file(path.read_bytes())
    report = GeoImportReport(filename=path.name, encoding=encoding)
    rows: dict[str, _AreaRow] = {}
    levels_in_file: dict[str, AreaLevel] = {}  # also from rows rejected for other reasons
    first_line: dict[str, int] = {}
    reject = report.rejections.append

    for line, values in _csv_rows(text, GEOGRAPHY_COLUMNS, ("level", "code", "name", "parent_code")):
        report.rows += 1
        # Codes as keys: a full-width digit or a space typed into one is not a different code.
        code, name, parent_code = (
            normalise_text(values["code"]),
            values["name"],
            normalise_text(values["parent_code"]),
        )
        level = parse_level(values["level"])
        if not code:
            reject(GeoRejection(line, "geo.code.missing", "编码为空 (code is empty)", None, "编码"))
            continue
        if code in first_line:
            reject(
                GeoRejection(
                    line,
                    "geo.code.duplicate",
                    f"编码重复，第{first_line[code]}行已出现 (duplicate code, first on line {first_line[code]})",
                    code,
                    "编码",
                )
            )
            continue
        first_line[code] = line
        if level is None:
            reject(
                GeoRejection(
                    line,
                    "geo.level.unknown",
                    f"层级“{values['level']}”无效，应为区/街道/社区/网格 (level must be district/street/community/grid)",
                    code,
                    "层级",
                )
            )
            continue
        levels_in_file[code] = level
        problem = _row_problem(level, code, name, parent_code)
        if problem:
            reject(GeoRejection(line, problem[0], problem[1], code, problem[2]))
            continue
        rows[code] = _AreaRow(line, level, code, name, parent_code)

    known = _known_areas(session)
    paths: dict[str, str] = {}
    for row in rows.values():
        problem = _relation_problem(row, rows, levels_in_file, known)
        if problem:
            reject(GeoRejection(row.line, problem[0], problem[1], row.code, problem[2]))
            continue
        area_path = _path_of(row.code, rows, known, paths)
        if area_path is not None and len(area_path) > AREA_PATH_MAX:
            reject(
                GeoRejection(
                    row.line,
                    "geo.path.too_long",
                    f"层级路径超过{AREA_PATH_MAX}字符 (path too long)",
                    row.code,
                    "编码",
                )
            )

    if report.rejections:
        report.rejections.sort(key=lambda rejection: rejection.line)
        return report

    ids = {code: area.id for code, area in known.items()}
    for level in LEVEL_ORDER:
        new_areas: list[tuple[str, Area]] = []
        for row in rows.values():
            if row.level is not level:
                continue
            existing = known.get(row.code)
            if existing is None:
                area = Area(
                    level=level,
                    code=row.code,
                    name=row.name,
                    parent_id=ids[row.parent_code] if row.parent_code else None,
                    path=paths[row.code],
                )
                session.add(area)
                new_areas.append((row.code, area))
            elif existing.name != row.name:
                session.get_one(Area, existing.id).name = row.name
                report.updated += 1
            else:
                report.unchanged += 1
        session.flush()
        for code, area in new_areas:
            ids[code] = area.id
        report.created += len(new_areas)
    return report


def _row_problem(level: AreaLevel, code: str, name: str, parent_code: str) -> tuple[str, str, str] | None:
    """What is wrong with a row on its own: (code, message, column), or None."""
    if len(code) > AREA_CODE_MAX:
        return "geo.code.too_long", f"编码超过{AREA_CODE_MAX}字符 (code too long)", "编码"
    if "/" in code or control_characters(code):
        # '/' joins the codes of a path: "S1/C9" would sit inside street S1's subtree, and its scope.
        return (
            "geo.code.invalid",
            "编码不能含有“/”或控制字符 (a code cannot contain '/' or control characters)",
            "编码",
        )
    if not name:
        return "geo.name.missing", "名称为空 (name is empty)", "名称"
    if len(name) > AREA_NAME_MAX:
        return "geo.name.too_long", f"名称超过{AREA_NAME_MAX}字符 (name too long)", "名称"
    if control_characters(name):
        return "geo.name.invalid", "名称不能含有控制字符 (a name cannot contain control characters)", "名称"
    if level is AreaLevel.district and parent_code:
        return "geo.parent.unexpected", "区是最上一级，不应有上级编码 (a district has no parent)", "上级编码"
    if level is not AreaLevel.district and not parent_code:
        return (
            "geo.parent.missing",
            f"{LEVEL_NAMES_ZH[level]}必须填写上级编码 (a {level.value} needs a parent code)",
            "上级编码",
        )
    if parent_code == code:
        return "geo.parent.self", "上级编码不能是自身 (an area cannot be its own parent)", "上级编码"
    return None


def _relation_problem(
    row: _AreaRow,
    rows: dict[str, _AreaRow],
    levels_in_file: dict[str, AreaLevel],
    known: dict[str, _KnownArea],
) -> tuple[str, str, str] | None:
    """What is wrong with a row against its parent and the areas already stored."""
    existing = known.get(row.code)
    if existing is not None and existing.level is not row.level:
        return (
            "geo.level.changed",
            f"已有区划层级为{LEVEL_NAMES_ZH[existing.level]}，不能改为{LEVEL_NAMES_ZH[row.level]}"
            f" (existing {existing.level.value} cannot become a {row.level.value})",
            "层级",
        )
    if existing is not None and (existing.parent_code or "") != row.parent_code:
        return (
            "geo.parent.changed",
            f"已有区划的上级为{existing.parent_code or '无'}，导入不能移动区划 (an import cannot move an existing area)",
            "上级编码",
        )
    if row.level is AreaLevel.district:
        return None
    parent_level = levels_in_file.get(row.parent_code)
    if parent_level is None and row.parent_code in known:
        parent_level = known[row.parent_code].level
    if parent_level is None:
        return (
            "geo.parent.unknown",
            f"上级编码{row.parent_code}不存在 (unknown parent code)",
            "上级编码",
        )
    expected = LEVEL_ORDER[LEVEL_ORDER.index(row.level) - 1]
    if parent_level is not expected:
        return (
            "geo.level.order",
            f"{LEVEL_NAMES_ZH[row.level]}的上级应为{LEVEL_NAMES_ZH[expected]}，而{row.parent_code}是{LEVEL_NAMES_ZH[parent_level]}"
            f" (a {row.level.value}'s parent must be a {expected.value}, not a {parent_level.value})",
            "层级",
        )
    return None


def _path_of(
    code: str, rows: dict[str, _AreaRow], known: dict[str, _KnownArea], paths: dict[str, str]
) -> str | None:
    """The materialised path of an area in the file or the store; None when an ancestor was rejected."""
    if code in paths:
        return paths[code]
    if code in known:
        result: str | None = known[code].path
    elif code in rows:
        parent = rows[code].parent_code
        if not parent:
            result = code
        else:
            parent_path = _path_of(parent, rows, known, paths)
            result = f"{parent_path}/{code}" if parent_path else None
    else:
        return None
    if result is not None:
        paths[code] = result
    return result


# --- organisations ----------------------------------------------------------------------------

ORGANISATION_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("机构编码", "统一社会信用代码", "code"),
    "name": ("机构名称", "name"),
    "kind": ("机构类型", "kind"),
    "area_code": ("所属区划编码", "所属区划", "区划编码", "area_code"),
    "address": ("地址", "机构地址", "address"),
    "phone": ("电话", "联系电话", "phone"),
}


def import_organisations(session: Session, path: Path | str) -> GeoImportReport:
    """Import or update organisations from a CSV with 机构编码,机构名称,机构类型,所属区划编码,地址,电话.

    Areas must be imported first. An existing code gets its other columns updated; a file with
    any rejected row changes nothing.
    """
    path = Path(path)
    text, encoding = decode_file(path.read_bytes())
    report = GeoImportReport(filename=path.name, encoding=encoding)
    area_ids = dict(session.execute(select(Area.code, Area.id)).all())
    accepted: dict[str, tuple[int, dict[str, object]]] = {}
    reject = report.rejections.append

    for line, values in _csv_rows(text, ORGANISATION_COLUMNS, ("code", "name", "kind", "area_code")):
        report.rows += 1
        code, area_code = normalise_text(values["code"]), normalise_text(values["area_code"])
        address = values.get("address") or None
        phone = values.get("phone") or None
        kind = parse_organisation_kind(values["kind"])
        problem: tuple[str, str, str] | None = None
        if not code:
            problem = (
                "geo.organisation.code_missing",
                "机构编码为空 (organisation code is empty)",
                "机构编码",
            )
        elif len(code) > ORG_CODE_MAX:
            problem = (
                "geo.organisation.code_too_long",
                f"机构编码超过{ORG_CODE_MAX}字符 (code too long)",
                "机构编码",
            )
        elif code in accepted:
            problem = (
                "geo.organisation.duplicate",
                f"机构编码重复，第{accepted[code][0]}行已出现 (duplicate organisation code)",
                "机构编码",
            )
        elif not values["name"]:
            problem = (
                "geo.organisation.name_missing",
                "机构名称为空 (organisation name is empty)",
                "机构名称",
            )
        elif len(values["name"]) > ORG_NAME_MAX:
            problem = (
                "geo.organisation.name_too_long",
                f"机构名称超过{ORG_NAME_MAX}字符 (name too long)",
                "机构名称",
            )
        elif kind is None:
            labels = "/".join(ORGANISATION_KIND_LABELS.values())
            problem = (
                "geo.organisation.kind",
                f"机构类型“{values['kind']}”无效，应为{labels} (unknown organisation kind)",
                "机构类型",
            )
        elif garbled := next(
            (
                column
                for column, cell in (
                    ("机构编码", code),
                    ("机构名称", values["name"]),
                    ("地址", address),
                    ("电话", phone),
                )
                if cell and control_characters(cell)
            ),
            None,
        ):
            problem = (
                "geo.organisation.text",
                f"{garbled}含有控制字符 (control characters in this column)",
                garbled,
            )
        elif area_code not in area_ids:
            problem = (
                "geo.organisation.area",
                f"所属区划编码{area_code or '(空)'}不存在，请先导入区划 (unknown area code; import the areas first)",
                "所属区划编码",
            )
        elif address and len(address) > ADDRESS_MAX:
            problem = (
                "geo.organisation.address_too_long",
                f"地址超过{ADDRESS_MAX}字符 (address too long)",
                "地址",
            )
        elif phone and len(phone) > PHONE_MAX:
            problem = ("geo.organisation.phone_too_long", f"电话超过{PHONE_MAX}字符 (phone too long)", "电话")
        if problem:
            reject(GeoRejection(line, problem[0], problem[1], code or None, problem[2]))
            continue
        accepted[code] = (
            line,
            {
                "name": values["name"],
                "kind": kind,
                "area_id": area_ids[area_code],
                "address": address,
                "phone": phone,
            },
        )

    if report.rejections:
        return report

    existing = {org.code: org for org in session.scalars(select(Organisation))}
    for code, (_line, fields) in accepted.items():
        organisation = existing.get(code)
        if organisation is None:
            session.add(Organisation(code=code, **fields))
            report.created += 1
            continue
        changed = False
        for name, value in fields.items():
            if getattr(organisation, name) != value:
                setattr(organisation, name, value)
                changed = True
        if changed:
            report.updated += 1
        else:
            report.unchanged += 1
    session.flush()
    return report


# --- the directory the feed reader resolves communities with -------------------------------


class CommunityDirectoryData(NamedTuple):
    """Lookups a feed reader needs to resolve 所属社区 / 所属网格 cells to community codes.

    A tuple in the field order of ``sources.feeds.CommunityDirectory`` (which normalises names
    itself), so ``CommunityDirectory(*data)`` builds one.
    """

    by_code: dict[str, str]  # community code -> name
    by_name: dict[str, list[str]]  # name -> codes (two streets may each have a 和平里社区)
    grids: dict[str, str]  # grid code -> its community's code


def community_directory(session: Session) -> CommunityDirectoryData:
    communities = session.execute(
        select(Area.id, Area.code, Area.name).where(Area.level == AreaLevel.community).order_by(Area.code)
    ).all()
    code_of = {row.id: row.code for row in communities}
    by_name: dict[str, list[str]] = {}
    for row in communities:
        by_name.setdefault(row.name, []).append(row.code)
    grids = {
        row.code: code_of[row.parent_id]
        for row in session.execute(
            select(Area.code, Area.parent_id).where(Area.level == AreaLevel.grid).order_by(Area.code)
        )
        if row.parent_id in code_of
    }
    by_code = {row.code: row.name for row in communities}
    return CommunityDirectoryData(by_code=by_code, by_name=by_name, grids=grids)


# --- households -------------------------------------------------------------------------------


@dataclass(slots=True)
class HouseholdCache:
    """Households an import has seen, by (community id, address key). One per import run."""

    ids: dict[tuple[int, str], int] = field(default_factory=dict)
    loaded: set[int] = field(default_factory=set)  # communities whose stored households are in ``ids``

    def load(self, session: Session, community_ids: Sequence[int]) -> None:
        wanted = [cid for cid in dict.fromkeys(community_ids) if cid not in self.loaded]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = session.execute(
                select(Household.id, Household.community_id, Household.address_key)
                .where(Household.community_id.in_(chunk))
                .order_by(Household.id)
            )
            for row in rows:
                self.ids.setdefault((row.community_id, row.address_key), row.id)
            self.loaded.update(chunk)


def _require_key(address: str | None) -> str:
    key = address_key(address)
    if not key:
        raise Invalid(
            "geo.household.address_missing",
            "缺少住址，无法确定家庭户 (an address is needed to find the household)",
        )
    return key


def household_for(
    session: Session,
    address: str,
    community_id: int,
    grid_id: int | None,
    cache: HouseholdCache,
    living_arrangement: LivingArrangement | None = None,
) -> int:
    """The id of the household at this address in this community, created when there is none.

    Addresses match on ``address_key`` (spaces removed, full-width to half-width), so
    "学院路１２号 3栋" and "学院路12号3栋" are one household.
    """
    key = _require_key(address)
    cache.load(session, [community_id])
    household_id = cache.ids.get((community_id, key))
    if household_id is None:
        household_id = session.execute(
            insert(Household)
            .values(
                address=address.strip()[:ADDRESS_MAX],
                address_key=key,
                community_id=community_id,
                grid_id=grid_id,
                living_arrangement=living_arrangement,
            )
            .returning(Household.id)
        ).scalar_one()
        cache.ids[(community_id, key)] = household_id
    return household_id


def household_ids(
    session: Session,
    entries: Sequence[tuple[str, int, int | None]],
    cache: HouseholdCache,
) -> list[int]:
    """Many ``household_for`` at once for bulk imports: (address, community id, grid id) -> id.

    Missing households are written with one bulk insert before this returns, so the ids can be
    used in foreign keys straight away.
    """
    keys = [_require_key(address) for address, _community, _grid in entries]
    cache.load(session, [community for _address, community, _grid in entries])
    new: dict[tuple[int, str], tuple[str, int | None]] = {}
    for key, (address, community_id, grid_id) in zip(keys, entries, strict=True):
        if (community_id, key) not in cache.ids and (community_id, key) not in new:
            new[(community_id, key)] = (address.strip()[:ADDRESS_MAX], grid_id)
    if new:
        allocated = allocate_ids(session, "household", len(new))
        rows = []
        for household_id, ((community_id, key), (address, grid_id)) in zip(
            allocated, new.items(), strict=True
        ):
            rows.append((household_id, address, key, community_id, grid_id))
            cache.ids[(community_id, key)] = household_id
        bulk_insert(session, "household", ("id", "address", "address_key", "community_id", "grid_id"), rows)
    return [cache.ids[(community_id, key)] for key, (_a, community_id, _g) in zip(keys, entries, strict=True)]


@dataclass(frozen=True, slots=True)
class HouseholdSummary:
    household: Household
    community: Area
    grid: Area | None
    member_count: int


def get_household(session: Session, household_id: int) -> Household:
    household = session.get(Household, household_id)
    if household is None:
        raise NotFound("geo.household.not_found", "家庭户不存在 (household not found)")
    return household


def household_members(
    session: Session, household_id: int, visible: ColumnElement[bool] | None = None
) -> list[int]:
    """The ids of the household's active residents, optionally only those ``visible`` selects."""
    query = select(Resident.id).where(
        Resident.household_id == household_id, Resident.status == ResidentStatus.active
    )
    if visible is not None:
        query = query.where(visible)
    return list(session.scalars(query.order_by(Resident.id)))


def household_summary(session: Session, household: Household, member_count: int) -> HouseholdSummary:
    """A household with its community and grid, and how many of its residents are counted."""
    return HouseholdSummary(
        household=household,
        community=session.get_one(Area, household.community_id),
        grid=session.get(Area, household.grid_id) if household.grid_id else None,
        member_count=member_count,
    )


@dataclass(frozen=True, slots=True)
class HouseholdView:
    """A household as one reader may see it: ``living`` says whether the reader's roles see the
    living field group (living arrangement, household size); ``summary.member_count`` counts
    only the members the reader may see."""

    summary: HouseholdSummary
    living: bool
    living_arrangement: LivingArrangement | None = None  # only when ``living``


def household_arrangement(
    statements: Iterable[tuple[LivingArrangement, dict[str, Any] | None]],
) -> LivingArrangement | None:
    """How a household lives, from its members' current values and their provenance.

    The members' profiles are kept up to date by every import, merge and correction; the
    ``household`` row's own column is only what the first member said when the household was
    first seen. Members who disagree are decided by the registry's precedence rule for the
    attribute (民政 over a health record, then the newer observation); a value no record stands
    behind fills only a gap."""
    chosen: LivingArrangement | None = None
    chosen_ref: FactRef | None = None
    for value, provenance in statements:
        ref = _fact_ref((provenance or {}).get("living_arrangement"))
        if chosen is None or (
            ref is not None and (chosen_ref is None or replaces("living_arrangement", chosen_ref, ref)[0])
        ):
            chosen, chosen_ref = value, ref
    return chosen


def _fact_ref(stored: object) -> FactRef | None:
    try:
        return FactRef.from_json(stored) if isinstance(stored, list) else None
    except (IndexError, TypeError, ValueError):  # provenance written by hand: no evidence to weigh
        return None


def members_arrangement(session: Session, household_id: int) -> LivingArrangement | None:
    """``household_arrangement`` over the household's active residents."""
    rows = session.execute(
        select(Resident.living_arrangement, Resident.provenance)
        .where(
            Resident.household_id == household_id,
            Resident.status == ResidentStatus.active,
            Resident.living_arrangement.is_not(None),
        )
        .order_by(Resident.id)
    ).all()
    return household_arrangement((row.living_arrangement, row.provenance) for row in rows)


def read_household(session: Session, actor: Actor, household_id: int, now: dt.datetime) -> HouseholdView:
    """A household for a reader who may see at least one of its members (identity), audited.

    A household's address and how its people live are data about them (an elder living alone),
    so the members decide: each one the reader sees gets an allowed audit row; when the reader
    sees none, a break-the-glass opening on any member lets a clinician in (audited as such), else
    the first member's refusal is the answer (``access.scope`` / ``access.consent`` /
    ``access.role``, audited as denied), and a household with no active member is refused as out
    of scope, since nobody in it can be seen through.
    """
    household = get_household(session, household_id)
    visible = policy.visible_residents(session, actor, category=DataCategory.identity, now=now)
    seen = household_members(session, household_id, visible)
    if not seen:
        members = household_members(session, household_id)
        if not members:
            queue_denial(
                session, actor, action="read", resource_type="household", resident_id=None,
                field_group=DataCategory.identity.value, purpose=Purpose.care.value, reason="access.scope",
                at=now,
            )  # fmt: skip
            raise Forbidden("access.scope", policy.DENIALS["access.scope"])
        seen = _opened_member(session, actor, members, now)
    else:
        for resident_id in seen:
            policy.authorize(
                session, actor, resident_id, category=DataCategory.identity, what="household", now=now
            )
    # The living group as the grants that reach these members show it, not any role the reader holds.
    living = any(
        FieldGroup.living in shown for shown in policy.listed_groups(session, actor, seen, now=now).values()
    )
    # The members the reader sees, or the one a break-the-glass opening let them see.
    summary = household_summary(session, household, len(seen))
    arrangement = members_arrangement(session, household_id) if living else None
    return HouseholdView(summary=summary, living=living, living_arrangement=arrangement)


def _opened_member(session: Session, actor: Actor, members: Sequence[int], now: dt.datetime) -> list[int]:
    """The member a break-the-glass opening lets this reader see, audited as such; else the first
    member's refusal (raised, audited). The glass is opened on one resident, any member."""
    if any(policy.SCOPES[grant.role].break_glass for grant in actor.grants):
        for resident_id in members:  # refusals here are not recorded: only the one raised below
            if policy.permitted(
                session, actor, resident_id, category=DataCategory.identity, what="household", now=now
            ):
                return [resident_id]
    policy.authorize(session, actor, members[0], category=DataCategory.identity, what="household", now=now)
    return members[:1]  # not reached while access is enforced: the reader sees none of them


def counts_residents(actor: Actor) -> bool:
    """Whether the actor's roles count residents (identity) for statistics (``SCOPES[...].statistics``)."""
    return policy.is_system(actor) or any(
        DataCategory.identity in policy.SCOPES[grant.role].statistics for grant in actor.grants
    )


# --- tree queries -----------------------------------------------------------------------------


def get_area(session: Session, area_id: int) -> Area:
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound("geo.area.not_found", "区划不存在 (area not found)")
    return area


def list_areas(
    session: Session,
    level: AreaLevel | None = None,
    parent_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Area]:
    query = select(Area)
    if level is not None:
        query = query.where(Area.level == level)
    if parent_id is not None:
        query = query.where(Area.parent_id == parent_id)
    return list(session.scalars(query.order_by(Area.path).limit(limit).offset(offset)))


def list_children(session: Session, area_id: int) -> list[Area]:
    return list(session.scalars(select(Area).where(Area.parent_id == area_id).order_by(Area.code)))


def areas_under(
    session: Session, path: str, level: AreaLevel | None = None, include_self: bool = False
) -> list[Area]:
    """Every area below the one at ``path`` (a prefix match on the materialised path)."""
    query = select(Area).where(Area.path.startswith(path + "/", autoescape=True))
    if include_self:
        query = select(Area).where((Area.path == path) | Area.path.startswith(path + "/", autoescape=True))
    if level is not None:
        query = query.where(Area.level == level)
    return list(session.scalars(query.order_by(Area.path)))


def resident_counts(
    session: Session, areas: Sequence[Area], visible: ColumnElement[bool] | None = None
) -> dict[int, int]:
    """Active residents per area: by grid for grids, else by community summed up the tree.

    ``visible`` (``policy.visible_residents`` for statistics) limits what is counted."""
    counts: dict[int, int] = {}
    counted = Resident.status == ResidentStatus.active
    if visible is not None:
        counted = and_(counted, visible)
    grid_ids = [area.id for area in areas if area.level is AreaLevel.grid]
    if grid_ids:
        per_grid = dict(
            session.execute(
                select(Resident.grid_id, func.count(Resident.id))
                .where(Resident.grid_id.in_(grid_ids), counted)
                .group_by(Resident.grid_id)
            ).all()
        )
        counts.update({grid_id: per_grid.get(grid_id, 0) for grid_id in grid_ids})
    others = [area for area in areas if area.level is not AreaLevel.grid]
    if not others:
        return counts
    per_community = dict(
        session.execute(
            select(Resident.community_id, func.count(Resident.id))
            .where(Resident.community_id.is_not(None), counted)
            .group_by(Resident.community_id)
        ).all()
    )
    community_paths = session.execute(
        select(Area.id, Area.path).where(Area.level == AreaLevel.community)
    ).all()
    for area in others:
        if area.level is AreaLevel.community:
            counts[area.id] = per_community.get(area.id, 0)
            continue
        prefix = area.path + "/"
        counts[area.id] = sum(
            per_community.get(row.id, 0) for row in community_paths if row.path.startswith(prefix)
        )
    return counts


def list_organisations(
    session: Session,
    kind: OrganisationKind | None = None,
    area_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Organisation]:
    """Organisations, optionally of one kind and in one area or anywhere below it."""
    query = select(Organisation)
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    if area_id is not None:
        area = get_area(session, area_id)
        under = select(Area.id).where(
            (Area.id == area.id) | Area.path.startswith(area.path + "/", autoescape=True)
        )
        query = query.where(Organisation.area_id.in_(under))
    return list(session.scalars(query.order_by(Organisation.code).limit(limit).offset(offset)))
