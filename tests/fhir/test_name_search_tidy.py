"""A Patient name search tidies each value as the registry stores names (``registry_name``): a space
typed into a Chinese name, or another form of the 间隔号, still finds the resident."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from yiyang.db import Database

from .test_api import add_community, add_resident, client, names, search  # noqa: F401 - fixture

__all__ = ["client"]


@pytest.fixture
def people(sqlite_db: Database) -> None:
    community_id = add_community(sqlite_db)
    add_resident(sqlite_db, "欧阳秀兰", sex="F", birth_date=dt.date(1948, 3, 12), community_id=community_id)
    add_resident(
        sqlite_db, "阿依古丽·买买提", sex="F", birth_date=dt.date(1950, 1, 2), community_id=community_id
    )
    add_resident(
        sqlite_db, "Anna Maria Lee", sex="F", birth_date=dt.date(1951, 1, 2), community_id=community_id
    )


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("欧阳 秀兰", ["欧阳秀兰"]),
        (" 欧阳　秀兰 ", ["欧阳秀兰"]),  # a full-width space too
        ("秀 兰,王", ["欧阳秀兰"]),  # each OR value on its own
        ("阿依古丽・买买提", ["阿依古丽·买买提"]),  # the katakana middle dot for the 间隔号
        ("阿依古丽 . 买买提", ["阿依古丽·买买提"]),
        ("Anna  Maria", ["Anna Maria Lee"]),  # a Latin name keeps single spaces
    ],
)
def test_a_name_search_value_is_tidied_as_names_are_stored(
    client: TestClient, people: None, value: str, found: list[str]
) -> None:
    assert names(search(client, name=value)) == found


def test_a_value_longer_than_any_stored_name_is_no_match_not_a_refusal(
    client: TestClient, people: None
) -> None:
    # within the search's own limit (64 characters) but longer than a stored name (30)
    assert search(client, name="欧阳 " * 15).total == 0
