"""Every ``yiyang`` command redacts its log lines, not only the web app: the worker and ingest
processes log job failures with their tracebacks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from yiyang.access.redaction import ID_NUMBER_MARK, PHONE_MARK
from yiyang.cli import app
from yiyang.config import get_settings

ID_NUMBER, PHONE = "110105194912310027", "13812345678"


@pytest.fixture
def plain_records() -> Iterator[None]:
    """A process whose log records are not yet redacted (another test may have created the app)."""
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    yield
    logging.setLogRecordFactory(previous)


def test_a_command_redacts_what_any_logger_logs_afterwards(
    plain_records: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given a process that has not created the web app, whose log records are plain
    assert not getattr(logging.getLogRecordFactory(), "redacts_pii", False)
    monkeypatch.setenv("YIYANG_DATABASE_URL", f"sqlite:///{tmp_path / 'yiyang.db'}")
    monkeypatch.setenv("YIYANG_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    # when a command runs (any: the worker and ingest start the same way)
    try:
        result = CliRunner().invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    # then a job failure logged afterwards carries neither the ID number nor the phone
    with caplog.at_level(logging.ERROR):
        try:
            raise RuntimeError(f"delivery to {PHONE} for {ID_NUMBER} failed")
        except RuntimeError:
            logging.getLogger("yiyang.jobs").exception("job failed")
    text = caplog.text
    assert ID_NUMBER not in text and PHONE not in text
    assert ID_NUMBER_MARK in text and PHONE_MARK in text
