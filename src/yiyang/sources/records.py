"""What every feed is read into: one ``SourceRow`` per accepted line, and the column spec.

The column spec is data: the Chinese headers community centres and agencies export, the
field each one fills, and whether it is required. ``docs/feeds.md`` documents the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from yiyang.sources.models import Feed


@dataclass(frozen=True, slots=True)
class Column:
    field: str
    headers: tuple[str, ...]  # the first is canonical; the rest are accepted aliases
    required: bool = False


@dataclass(slots=True)
class ConditionFact:
    code: str  # ICD-10, upper case, e.g. "I10", "E11.9"
    display: str | None = None
    long_prescription: bool = False


@dataclass(slots=True)
class ObservationFact:
    code: str  # LOINC
    value: float
    unit: str
    effective_at: dt.datetime
    value2: float | None = None  # diastolic for the 85354-9 BP panel


@dataclass(slots=True)
class SourceRow:
    """A validated line from a feed, in the registry's own terms."""

    feed: Feed
    line: int
    source_key: str
    observed_at: dt.datetime
    name: str
    id_number: str | None = None  # normalised 18-character form when present and valid
    id_upgraded_from_15: bool = False
    sex: str | None = None  # "M" / "F"
    birth_date: dt.date | None = None
    phone: str | None = None
    address: str | None = None
    community_code: str | None = None  # resolved 12-digit code
    grid_code: str | None = None
    # Profile attributes other than identity: insurance_type, living_arrangement,
    # dibao, tekun, disability_cert_grade, capability_level.
    attributes: dict[str, object] = field(default_factory=dict)
    conditions: list[ConditionFact] = field(default_factory=list)
    observations: list[ObservationFact] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RowRejection:
    line: int
    code: str  # machine code, e.g. "resident.id_number.checksum"
    message: str  # Chinese first, English in brackets
    source_key: str | None = None
    column: str | None = None
    # The community the row names, when the geography knows it: who may read the rejection.
    community_code: str | None = None


# 卫健 WS 365-style resident health file (居民健康档案), one row per resident.
HEALTH_COLUMNS = (
    Column("source_key", ("健康档案编号", "档案编号"), required=True),
    Column("name", ("姓名",), required=True),
    Column("sex", ("性别",), required=True),
    Column("birth_date", ("出生日期",), required=True),
    Column("id_number", ("身份证号", "身份证件号码")),
    Column("phone", ("联系电话", "本人电话")),
    Column("address", ("现住址",)),
    Column("community", ("所属社区", "社区编码"), required=True),
    Column("grid", ("所属网格",)),
    Column("living_arrangement", ("居住情况",)),
    Column("insurance_type", ("医疗费用支付方式", "医保类型")),
    Column("conditions", ("慢病诊断", "疾病史")),
    Column("systolic", ("收缩压",)),
    Column("diastolic", ("舒张压",)),
    Column("fasting_glucose", ("空腹血糖",)),
    Column("measured_on", ("测量日期",)),
    Column("updated_on", ("更新日期", "建档日期"), required=True),
)

# 医保 outpatient/inpatient settlement list (结算清单), one row per claim.
INSURANCE_COLUMNS = (
    Column("source_key", ("结算单号",), required=True),
    Column("name", ("参保人姓名", "姓名"), required=True),
    Column("id_number", ("身份证号", "证件号码")),
    Column("sex", ("性别",)),
    Column("birth_date", ("出生日期",)),
    Column("phone", ("联系电话",)),
    Column("insurance_type", ("参保类型", "险种类型"), required=True),
    Column("visit_date", ("就诊日期", "结算日期"), required=True),
    Column("facility", ("定点医药机构", "定点机构")),
    Column("diagnosis_code", ("诊断编码", "主要诊断编码"), required=True),
    Column("diagnosis_name", ("诊断名称", "主要诊断名称")),
    Column("long_prescription", ("长处方",)),
    Column("total_cost", ("医疗总费用",)),
)

# 民政 elderly roster (老年人花名册), one row per elder.
CIVIL_COLUMNS = (
    Column("source_key", ("人员编号",), required=True),
    Column("name", ("姓名",), required=True),
    Column("id_number", ("身份证号",)),
    Column("sex", ("性别",)),
    Column("birth_date", ("出生日期",)),
    Column("phone", ("联系电话",)),
    Column("address", ("居住地址", "现住址")),
    Column("community", ("所属社区", "社区编码"), required=True),
    Column("living_arrangement", ("居住状况",)),
    Column("capability_level", ("失能等级", "能力等级")),
    Column("disability_cert_grade", ("残疾等级", "残疾证等级")),
    Column("dibao", ("低保",)),
    Column("tekun", ("特困",)),
    Column("updated_on", ("更新日期", "登记日期"), required=True),
)

FEED_COLUMNS: dict[Feed, tuple[Column, ...]] = {
    Feed.health: HEALTH_COLUMNS,
    Feed.insurance: INSURANCE_COLUMNS,
    Feed.civil: CIVIL_COLUMNS,
}


def payload_of(row: SourceRow) -> dict[str, Any]:
    """The normalised, JSON-ready content of a row: what is hashed and stored."""
    payload: dict[str, Any] = {
        "name": row.name,
        "id_number": row.id_number,
        "sex": row.sex,
        "birth_date": row.birth_date.isoformat() if row.birth_date else None,
        "phone": row.phone,
        "address": row.address,
        "community_code": row.community_code,
        "grid_code": row.grid_code,
    }
    for key in sorted(row.attributes):
        payload[key] = row.attributes[key]
    if row.conditions:
        payload["conditions"] = [[c.code, c.display, c.long_prescription] for c in row.conditions]
    if row.observations:
        payload["observations"] = [
            [o.code, o.value, o.value2, o.unit, o.effective_at.isoformat()] for o in row.observations
        ]
    return payload
