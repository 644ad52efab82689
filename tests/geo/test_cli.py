"""``yiyang geo import`` end to end through the real command line app and a migrated SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.geo.files import write
from yiyang.cli import app
from yiyang.config import get_settings
from yiyang.db import Database
from yiyang.geo.models import Area, Organisation


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("YIYANG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("YIYANG_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


def stored(data_dir: Path, model: type) -> int:
    database = Database(f"sqlite:///{data_dir / 'yiyang.db'}")
    try:
        with database.sessions() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0
    finally:
        database.dispose()


def test_imports_areas_then_organisations(
    data_dir: Path, geography_file: Path, organisations_file: Path
) -> None:
    runner = CliRunner()
    areas = runner.invoke(app, ["geo", "import", str(geography_file)])
    organisations = runner.invoke(app, ["geo", "import", "--organisations", str(organisations_file)])
    assert areas.exit_code == 0 and organisations.exit_code == 0, areas.output + organisations.output
    assert "created 9" in areas.stdout
    assert stored(data_dir, Area) == 9 and stored(data_dir, Organisation) == 4


def test_a_file_with_a_bad_row_exits_non_zero_and_imports_nothing(data_dir: Path, tmp_path: Path) -> None:
    bad = write(
        tmp_path / "bad.csv",
        "层级,编码,名称,上级编码\n区,110108,海淀区,\n社区,110108001001,孤儿社区,110108001\n",
    )
    outcome = CliRunner().invoke(app, ["geo", "import", str(bad)])
    assert outcome.exit_code == 1
    assert "第3行" in outcome.stderr and "geo.parent.unknown" in outcome.stderr
    assert stored(data_dir, Area) == 0


def test_a_file_missing_columns_is_refused_with_its_code(data_dir: Path, tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["geo", "import", str(write(tmp_path / "x.csv", "层级,编码\n区,1\n"))])
    assert outcome.exit_code == 1 and "geo.import.header" in outcome.stderr


def test_an_unreadable_csv_exits_non_zero_with_its_code(data_dir: Path, tmp_path: Path) -> None:
    huge = write(tmp_path / "huge.csv", '层级,编码,名称,上级编码\n区,110108,"' + "x" * 200_000 + '",\n')
    outcome = CliRunner().invoke(app, ["geo", "import", str(huge)])
    assert outcome.exit_code == 1 and "geo.import.csv" in outcome.stderr
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit)
