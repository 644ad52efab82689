"""Fixtures for order tests: cheap password hashing and the small district of district.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from tests.orders.district import District, build
from yiyang.access import passwords
from yiyang.db import Database


@pytest.fixture(autouse=True)
def cheap_hashing() -> Iterator[None]:
    previous = passwords.use_hasher(PasswordHasher.from_parameters(CHEAPEST))
    yield
    passwords.use_hasher(previous)


@pytest.fixture
def place(db: Database) -> District:
    return build(db)
