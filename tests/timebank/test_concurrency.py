"""Two writers at once on PostgreSQL: the same source posts once, and two spends cannot together
take a volunteer below zero."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from yiyang.access import service as access
from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.roles import Role
from yiyang.db import Database
from yiyang.errors import DomainError
from yiyang.timebank import service as timebank
from yiyang.timebank.models import TimebankTransaction

pytestmark = pytest.mark.postgres
NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)


def _volunteer(database: Database) -> int:
    with database.unit_of_work() as session:
        user = access.create_user(session, "volunteer.race", password=None)
        access.grant_role(session, user, Role.volunteer)
        return user.id


def _race(database: Database, work: Callable[[Any], Any], writers: int = 2) -> list[Any]:
    barrier = threading.Barrier(writers)
    results: list[Any] = [None] * writers

    def run(index: int) -> None:
        barrier.wait()
        try:
            with database.unit_of_work() as session:
                results[index] = work(session)
        except DomainError as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_the_same_source_posted_by_two_writers_at_once_is_one_transaction(pg_db: Database) -> None:
    user_id = _volunteer(pg_db)
    with pg_db.unit_of_work() as session:  # accounts exist, so both writers race on the posting itself
        timebank.account_of(session, user_id, NOW)
        timebank.system_account(session, timebank.AccountKind.issuance, NOW)
    results = _race(
        pg_db,
        lambda s: (
            timebank.earn(s, user_id, 120, source_type="service_order", source_id=1, now=NOW, by="t").replayed
        ),
        writers=4,
    )
    assert sorted(results) == [False, True, True, True]
    with pg_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(TimebankTransaction)) == 1
        assert timebank.balance(session, timebank.account_of(session, user_id, NOW).id) == 120


def test_two_spends_at_once_cannot_overdraw(pg_db: Database) -> None:
    user_id = _volunteer(pg_db)
    with pg_db.unit_of_work() as session:
        timebank.earn(session, user_id, 100, source_type="service_order", source_id=1, now=NOW, by="t")
        timebank.system_account(session, timebank.AccountKind.redeemed, NOW)
    actor = Actor(user_id=user_id, username="volunteer.race", grants=(RoleGrant(Role.volunteer),))
    counter = iter(range(100))
    lock = threading.Lock()

    def spend(session: Any) -> int:
        with lock:
            key = f"k{next(counter)}"
        return timebank.spend(session, actor, 70, key, None, NOW).transaction.id

    results = _race(pg_db, spend)
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(refused) == 1 and refused[0].code == "timebank.balance.insufficient"
    with pg_db.unit_of_work() as session:
        assert timebank.balance(session, timebank.account_of(session, user_id, NOW).id) == 30


def test_a_retried_spend_racing_the_first_is_its_replay_not_a_refusal(pg_db: Database) -> None:
    # given exactly the hours for one spend, sent twice at once with the same key (a client retry)
    user_id = _volunteer(pg_db)
    with pg_db.unit_of_work() as session:
        timebank.earn(session, user_id, 60, source_type="service_order", source_id=1, now=NOW, by="t")
        timebank.system_account(session, timebank.AccountKind.redeemed, NOW)
    actor = Actor(user_id=user_id, username="volunteer.race", grants=(RoleGrant(Role.volunteer),))
    results = _race(pg_db, lambda s: timebank.spend(s, actor, 60, "retry-1", None, NOW).replayed)
    # then one posts and the other answers with it, as a retry after the first committed would
    assert sorted(results) == [False, True]
    with pg_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(TimebankTransaction)) == 2
        assert timebank.balance(session, timebank.account_of(session, user_id, NOW).id) == 0
