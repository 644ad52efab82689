"""Agency files through the whole pipeline: read, validate, link, fold, write, report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from yiyang.db import Database
from yiyang.geo.service import import_geography
from yiyang.residents.models import Condition, Resident, SourceRecord
from yiyang.sources.feeds import FeedError
from yiyang.sources.models import Feed, ImportRun, RunStatus
from yiyang.sources.service import import_file

SAMPLES = Path(__file__).parents[2] / "docs" / "samples"


@pytest.fixture
def district(db: Database) -> Database:
    with db.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    return db


def counts(database: Database) -> dict[str, int]:
    with database.unit_of_work() as session:
        return {
            model.__tablename__: session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Resident, SourceRecord, Condition)
        }


def test_three_feeds_join_into_one_profile_per_person(district: Database) -> None:
    # when the health, insurance (GB18030) and civil-affairs (xlsx) samples are imported
    health = import_file(district, Feed.health, SAMPLES / "health.csv")
    insurance = import_file(district, Feed.insurance, SAMPLES / "insurance_gb18030.csv")
    civil = import_file(district, Feed.civil, SAMPLES / "civil.xlsx")
    # then each is read in its encoding, its documented rejections are reported by line
    assert (health.encoding, insurance.encoding, civil.encoding) == ("utf-8", "gb18030", None)
    assert [(r.line, r.code) for r in health.rejections] == [
        (6, "resident.id_number.checksum"), (7, "observation.range"), (9, "source.duplicate_key"),
        (10, "condition.unknown"), (13, "geo.community.unknown"),
    ]  # fmt: skip
    assert [r.line for r in insurance.rejections] == [6, 8, 10, 11]
    # and claims for people of the health file link to them; the rest are people new to the registry
    assert insurance.counts["accepted"] == insurance.counts["rows"] - 4
    assert insurance.counts["linked_id_number"] == 5 and insurance.counts["new_resident"] == 2
    assert civil.counts["accepted"] + civil.counts["rejected"] == civil.counts["rows"]
    with district.unit_of_work() as session:
        wang = session.execute(select(Resident).where(Resident.name == "王秀英")).scalar_one()
        feeds = {
            r.feed
            for r in session.execute(
                select(SourceRecord).where(SourceRecord.resident_id == wang.id)
            ).scalars()
        }
        assert feeds >= {"health", "insurance"}
        # the Chinese name survived GB18030 and the 15-digit ID was upgraded
        li = session.execute(select(Resident).where(Resident.name == "李建国")).scalar_one()
        assert li.id_number is not None and len(li.id_number) == 18


def test_reimporting_a_file_changes_nothing(district: Database) -> None:
    import_file(district, Feed.health, SAMPLES / "health.csv")
    before = counts(district)
    again = import_file(district, Feed.health, SAMPLES / "health.csv")
    assert again.counts["unchanged"] == again.counts["rows"] - again.counts["rejected"]
    assert again.counts["accepted"] == 0 and again.counts.get("updated", 0) == 0
    assert counts(district) == before


def test_a_file_with_a_missing_column_is_refused_whole(district: Database, tmp_path: Path) -> None:
    broken = tmp_path / "health.csv"
    lines = (SAMPLES / "health.csv").read_text(encoding="utf-8").splitlines()
    broken.write_text("\n".join([lines[0].replace("姓名", "名字"), *lines[1:]]), encoding="utf-8")
    with pytest.raises(FeedError) as error:
        import_file(district, Feed.health, broken)
    assert error.value.code == "feed.header.missing"
    assert counts(district) == {"resident": 0, "source_record": 0, "condition": 0}
    with district.unit_of_work() as session:
        run = session.execute(select(ImportRun)).scalar_one()
        assert run.status == RunStatus.failed


def test_cli_import_writes_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from yiyang.cli import app
    from yiyang.config import get_settings

    monkeypatch.setenv("YIYANG_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("YIYANG_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(app, ["geo", "import", str(SAMPLES / "geography.csv")]).exit_code == 0
        copy = tmp_path / "health.csv"
        shutil.copy(SAMPLES / "health.csv", copy)
        report = tmp_path / "report.json"
        result = runner.invoke(app, ["import", "health", str(copy), "--report", str(report)])
        assert result.exit_code == 0, result.output
        body = json.loads(report.read_text(encoding="utf-8"))
        assert body["status"] == "applied"
        assert body["counts"]["rejected"] == 5
        assert {"line": 6, "code": "resident.id_number.checksum"}.items() <= body["rejections"][0].items()
        # no ID number or phone from the file appears in the report's messages
        assert "13911002345" not in report.read_text(encoding="utf-8")
        missing = runner.invoke(app, ["import", "health", str(tmp_path / "nope.csv")])
        assert missing.exit_code == 2
    finally:
        get_settings.cache_clear()
