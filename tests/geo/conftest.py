"""Fixtures for the geography tests: the small district of tests/geo/files.py on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.geo.files import GEOGRAPHY, ORGANISATIONS, write


@pytest.fixture
def geography_file(tmp_path: Path) -> Path:
    return write(tmp_path / "geography.csv", GEOGRAPHY)


@pytest.fixture
def organisations_file(tmp_path: Path) -> Path:
    return write(tmp_path / "organisations.csv", ORGANISATIONS)
