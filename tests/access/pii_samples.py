"""The sample agency files imported through the real pipeline, and the ID numbers and phones
they carry in the form the registry would store them (normalised by the feed readers)."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import MetaData, select

from yiyang.db import Database
from yiyang.geo.service import community_directory, import_geography
from yiyang.sources.feeds import CommunityDirectory, read_feed
from yiyang.sources.models import Feed
from yiyang.sources.records import SourceRow
from yiyang.sources.service import import_file

SAMPLES = Path(__file__).parents[2] / "docs" / "samples"
FILES = ((Feed.health, "health.csv"), (Feed.insurance, "insurance_gb18030.csv"), (Feed.civil, "civil.xlsx"))
WANG_ID, WANG_PHONE = "110108194803120242", "13911002345"  # 王秀英 in health.csv


def import_samples(database: Database) -> None:
    with database.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    for feed, name in FILES:
        import_file(database, feed, SAMPLES / name)


def sample_pii(database: Database) -> set[str]:
    """Every ID number and phone the sample rows carry, as read (and normalised) by the readers."""
    with database.unit_of_work() as session:
        directory = CommunityDirectory(*community_directory(session))
    values: set[str] = set()
    for feed, name in FILES:
        for item in read_feed(SAMPLES / name, feed, directory):
            if isinstance(item, SourceRow):
                values.update(v for v in (item.id_number, item.phone) if v)
    # and the raw cells of the text files, rejected rows included (a mistyped number is still personal)
    for name, encoding in (("health.csv", "utf-8-sig"), ("insurance_gb18030.csv", "gb18030")):
        with (SAMPLES / name).open(encoding=encoding, newline="") as handle:
            for row in csv.DictReader(handle):
                for heading, cell in row.items():
                    if cell and any(word in heading for word in ("身份证", "证件号码", "电话")):
                        values.add(cell.strip())
    digits = {"".join(ch for ch in v if ch.isdigit() or ch == "X") for v in values}
    return values | {d for d in digits if len(d) >= 7}


def database_text(database: Database) -> str:
    """Every row of every table, as text: what someone holding a copy of the database can read."""
    metadata = MetaData()
    metadata.reflect(database.engine)
    parts = []
    with database.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                parts.append(" ".join(str(value) for value in row))
    return "\n".join(parts)
