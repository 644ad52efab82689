"""Fixtures for order tests: the small district of district.py."""

from __future__ import annotations

import pytest

from tests.orders.district import District, build
from yiyang.db import Database


@pytest.fixture
def place(db: Database) -> District:
    return build(db)
