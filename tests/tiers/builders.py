"""Residents, agency rows and answer sets for the tier and capture tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.assessments.builders import points_totalling
from yiyang.assessments.scoring import GBT42195_ITEMS
from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel
from yiyang.residents.identity import check_character
from yiyang.sources.models import Feed
from yiyang.sources.records import ConditionFact, SourceRow
from yiyang.sources.service import ImportReport, import_source_rows

DISTRICT, STREET, COMMUNITY, OTHER_COMMUNITY = "110108", "110108001", "110108001001", "110108001002"
# GB/T 42195-2022 totals inside each level's band.
CAPABILITY_TOTALS = {"intact": 90, "mild": 70, "moderate": 50, "severe": 35, "total": 10}


def make_id(birth: str, sequence: str) -> str:
    first17 = "110108" + birth + sequence
    return first17 + check_character(first17)


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


def seed_areas(database: Database) -> dict[str, int]:
    """District > street > two communities; returns code -> area id."""
    with database.unit_of_work() as session:
        district = Area(level=AreaLevel.district, code=DISTRICT, name="海淀区", path=DISTRICT)
        session.add(district)
        session.flush()
        street = Area(
            level=AreaLevel.street,
            code=STREET,
            name="万寿路街道",
            parent_id=district.id,
            path=f"{DISTRICT}/{STREET}",
        )
        session.add(street)
        session.flush()
        ids = {DISTRICT: district.id, STREET: street.id}
        for code, name in ((COMMUNITY, "甲社区"), (OTHER_COMMUNITY, "乙社区")):
            area = Area(
                level=AreaLevel.community,
                code=code,
                name=name,
                parent_id=street.id,
                path=f"{street.path}/{code}",
            )
            session.add(area)
            session.flush()
            ids[code] = area.id
    return ids


def health_row(
    key: str, sequence: str = "002", *, conditions: list[ConditionFact] | None = None, **overrides: Any
) -> SourceRow:
    values: dict[str, Any] = dict(
        feed=Feed.health, line=2, source_key=key, observed_at=at("2025-03-01"), name="王秀兰",
        id_number=make_id("19450312", sequence), sex="F", birth_date=dt.date(1945, 3, 12),
        address="万寿路12号3栋401室", community_code=COMMUNITY, conditions=conditions or [],
    )  # fmt: skip
    values.update(overrides)
    return SourceRow(**values)


def insurance_row(
    key: str, sequence: str, code: str, display: str, visit: str, **overrides: Any
) -> SourceRow:
    values: dict[str, Any] = dict(
        feed=Feed.insurance, line=2, source_key=key, observed_at=at(visit), name="王秀兰",
        id_number=make_id("19450312", sequence), sex="F", birth_date=dt.date(1945, 3, 12),
        attributes={"insurance_type": "resident"}, conditions=[ConditionFact(code, display)],
    )  # fmt: skip
    values.update(overrides)
    return SourceRow(**values)


def civil_row(
    key: str, sequence: str, capability: str, observed: str = "2024-06-01", **overrides: Any
) -> SourceRow:
    values: dict[str, Any] = dict(
        feed=Feed.civil, line=2, source_key=key, observed_at=at(observed), name="王秀兰",
        id_number=make_id("19450312", sequence), sex="F", birth_date=dt.date(1945, 3, 12),
        community_code=COMMUNITY, attributes={"capability_level": capability},
    )  # fmt: skip
    values.update(overrides)
    return SourceRow(**values)


def run(database: Database, feed: Feed, rows: list[SourceRow]) -> ImportReport:
    with database.unit_of_work() as session:
        return import_source_rows(session, feed, rows, label="test.csv")


def resident_id_of(report: ImportReport, key: str) -> int:
    return report.resident_ids[key]


def capability_answers(level: str, **context: Any) -> dict[str, Any]:
    """A GB/T 42195-2022 answer set whose total falls in ``level``'s band."""
    return {**points_totalling(GBT42195_ITEMS, CAPABILITY_TOTALS[level]), **context}
