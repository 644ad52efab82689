"""The ledger's pure rules, and its invariants on the real database under generated histories:
every transaction sums to zero, no volunteer goes below zero, replays never post twice, and expiry
takes exactly what first-in-first-out says is left of old lots."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from yiyang.access import service as access
from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.roles import Role
from yiyang.db import Database
from yiyang.errors import Conflict, Invalid
from yiyang.timebank import service as timebank
from yiyang.timebank.ledger import Credit, Posting, check_postings, expiring_minutes, overdrawn
from yiyang.timebank.models import AccountKind, TimebankAccount, TimebankEntry, TimebankTransaction

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
VALIDITY_DAYS = 365


# -- pure rules ------------------------------------------------------------------------------------


def test_postings_must_balance_and_move_something() -> None:
    check_postings([Posting(1, -30), Posting(2, 30)])
    for bad in ([Posting(1, -30), Posting(2, 20)], [Posting(1, 0), Posting(2, 0)], [Posting(1, 10)]):
        with pytest.raises(Invalid):
            check_postings(bad)


def test_overdraft_is_found_only_on_guarded_accounts() -> None:
    postings = [Posting(1, -60), Posting(2, 60)]
    assert overdrawn({1: 30}, postings, guarded={1}) == [1]
    assert overdrawn({1: 60}, postings, guarded={1}) == []
    assert overdrawn({1: 0}, postings, guarded=set()) == []  # the issuance account may go negative


def test_expiry_takes_what_is_left_of_old_lots_first_in_first_out() -> None:
    cutoff = T0 + dt.timedelta(days=10)
    lots = [Credit(T0, 120), Credit(T0 + dt.timedelta(days=5), 60), Credit(T0 + dt.timedelta(days=20), 600)]
    assert expiring_minutes(lots, debited=0, cutoff=cutoff) == 180
    assert expiring_minutes(lots, debited=150, cutoff=cutoff) == 30  # the spending used the oldest lots
    assert expiring_minutes(lots, debited=500, cutoff=cutoff) == 0  # new lots are never expired early


# -- invariants on the database ----------------------------------------------------------------------

VOLUNTEERS = 3
earn_op = st.tuples(st.just("earn"), st.integers(0, VOLUNTEERS - 1), st.integers(1, 600), st.integers(1, 6))
spend_op = st.tuples(
    st.just("spend"), st.integers(0, VOLUNTEERS - 1), st.integers(1, 600), st.sampled_from("abc")
)
donate_op = st.tuples(
    st.just("donate"), st.integers(0, VOLUNTEERS - 1), st.integers(1, 600), st.sampled_from("xy"),
    st.one_of(st.none(), st.integers(0, VOLUNTEERS - 1)),
)  # fmt: skip
expire_op = st.tuples(st.just("expire"))
history = st.lists(
    st.tuples(st.integers(0, 200), st.one_of(earn_op, spend_op, donate_op, expire_op)),
    min_size=1,
    max_size=25,
)


@dataclass
class Reference:
    """What the ledger should hold, worked out by hand: lots consumed oldest first."""

    lots: dict[int, list[list]] = field(default_factory=lambda: {i: [] for i in range(VOLUNTEERS)})
    posted: dict[str, tuple] = field(default_factory=dict)
    expired: int = 0

    def balance(self, who: int) -> int:
        return sum(remaining for _, remaining in self.lots[who])

    def debit(self, who: int, minutes: int) -> None:
        for lot in self.lots[who]:
            take = min(lot[1], minutes)
            lot[1] -= take
            minutes -= take
        assert minutes == 0

    def expire(self, cutoff: dt.datetime) -> None:
        for lots in self.lots.values():
            for lot in lots:
                if lot[0] < cutoff:
                    self.expired += lot[1]
                    lot[1] = 0


@pytest.fixture
def volunteer_ids(sqlite_db: Database) -> Iterator[list[int]]:
    with sqlite_db.unit_of_work() as session:
        ids = []
        for index in range(VOLUNTEERS):
            user = access.create_user(session, f"volunteer.{index}", password=None)
            access.grant_role(session, user, Role.volunteer)
            ids.append(user.id)
    yield ids


def volunteer(user_id: int) -> Actor:
    return Actor(user_id=user_id, username=f"volunteer.{user_id}", grants=(RoleGrant(Role.volunteer),))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=history)
def test_ledger_invariants_hold_for_any_history(sqlite_db: Database, volunteer_ids: list[int], steps) -> None:  # type: ignore[no-untyped-def]
    session = sqlite_db.sessions()
    reference = Reference()
    now = T0
    try:
        for days, op in steps:
            now += dt.timedelta(days=days)
            kind = op[0]
            if kind == "earn":
                _, who, minutes, source = op
                key = f"earn:service_order:{source}"
                content = ("earn", who, minutes)
                if key in reference.posted and reference.posted[key] != content:
                    with pytest.raises(Conflict):
                        timebank.earn(session, volunteer_ids[who], minutes, source_type="service_order",
                                      source_id=source, now=now, by="test")  # fmt: skip
                    continue
                posted = timebank.earn(
                    session,
                    volunteer_ids[who],
                    minutes,
                    source_type="service_order",
                    source_id=source,
                    now=now,
                    by="t",
                )
                assert posted.replayed == (key in reference.posted)
                if not posted.replayed:
                    reference.posted[key] = content
                    reference.lots[who].append([now, minutes])
            elif kind in ("spend", "donate"):
                who, minutes, client_key = op[1], op[2], op[3]
                target = op[4] if kind == "donate" else None
                if kind == "donate" and target == who:
                    target = None
                key = f"{kind}:{who}:{client_key}"
                content = (kind, who, minutes, target)
                actor = volunteer(volunteer_ids[who])

                def call(
                    actor=actor, minutes=minutes, client_key=client_key, target=target, kind=kind, now=now
                ):  # type: ignore[no-untyped-def]
                    if kind == "spend":
                        return timebank.spend(session, actor, minutes, client_key, None, now)
                    to = volunteer_ids[target] if target is not None else None
                    return timebank.donate(session, actor, minutes, client_key, to, now)

                if key in reference.posted:
                    if reference.posted[key] == content:
                        assert call().replayed
                    else:
                        with pytest.raises(Conflict):
                            call()
                    continue
                if reference.balance(who) < minutes:
                    with pytest.raises(Invalid) as refused:
                        call()
                    assert refused.value.code == "timebank.balance.insufficient"
                    continue
                assert not call().replayed
                reference.posted[key] = content
                reference.debit(who, minutes)
                if target is not None:
                    reference.lots[target].append([now, minutes])
            else:
                timebank.expire(session, now, VALIDITY_DAYS)
                reference.expire(now - dt.timedelta(days=VALIDITY_DAYS))
                # running the sweep again at once expires nothing more
                assert timebank.expire(session, now, VALIDITY_DAYS) == 0
            _check_invariants(session, volunteer_ids, reference)
    finally:
        session.rollback()
        session.close()


def _check_invariants(session, volunteer_ids: list[int], reference: Reference) -> None:  # type: ignore[no-untyped-def]
    # every transaction sums to zero
    unbalanced = session.execute(
        select(TimebankEntry.transaction_id)
        .group_by(TimebankEntry.transaction_id)
        .having(func.sum(TimebankEntry.minutes) != 0)
    ).all()
    assert unbalanced == []
    # all accounts together sum to zero: minutes are only ever moved
    assert (session.scalar(select(func.coalesce(func.sum(TimebankEntry.minutes), 0))) or 0) == 0
    # each volunteer's balance (derived from entries) matches the hand-worked reference, never negative
    for index, user_id in enumerate(volunteer_ids):
        account = session.scalar(select(TimebankAccount).where(TimebankAccount.user_id == user_id))
        derived = timebank.balance(session, account.id) if account else 0
        assert derived == reference.balance(index) >= 0
    # no key was posted twice, and each posted key is one transaction
    assert session.scalar(select(func.count()).select_from(TimebankTransaction)) == len(
        reference.posted
    ) + session.scalar(
        select(func.count()).select_from(TimebankTransaction).where(TimebankTransaction.kind == "expire")
    )
    expired = session.scalar(select(TimebankAccount).where(TimebankAccount.kind == AccountKind.expired))
    assert (timebank.balance(session, expired.id) if expired else 0) == reference.expired


def test_hours_from_a_replayed_source_are_posted_once(sqlite_db: Database, volunteer_ids: list[int]) -> None:
    now = T0
    with sqlite_db.unit_of_work() as session:
        first = timebank.earn(
            session, volunteer_ids[0], 90, source_type="service_order", source_id=7, now=now, by="t"
        )
    for _ in range(3):
        with sqlite_db.unit_of_work() as session:
            again = timebank.earn(
                session, volunteer_ids[0], 90, source_type="service_order", source_id=7, now=now, by="t"
            )
            assert again.replayed and again.transaction.id == first.transaction.id
    with sqlite_db.unit_of_work() as session:
        account = timebank.account_of(session, volunteer_ids[0], now)
        assert timebank.balance(session, account.id) == 90
        with pytest.raises(Conflict) as reused:
            timebank.earn(
                session, volunteer_ids[0], 60, source_type="service_order", source_id=7, now=now, by="t"
            )
        assert reused.value.code == "timebank.key.reused"


def test_hours_summary_and_statement_follow_the_entries(
    sqlite_db: Database, volunteer_ids: list[int]
) -> None:
    a, b = volunteer_ids[0], volunteer_ids[1]
    with sqlite_db.unit_of_work() as session:
        timebank.earn(session, a, 300, source_type="service_order", source_id=1, now=T0, by="t")
        timebank.spend(session, volunteer(a), 60, "k1", "助浴兑换", T0)
        timebank.donate(session, volunteer(a), 30, "k2", None, T0)
        timebank.donate(session, volunteer(a), 45, "k3", b, T0)
        timebank.donate(session, volunteer(b), 15, "k4", a, T0)
    with sqlite_db.unit_of_work() as session:
        account = timebank.account_of(session, a, T0)
        summary = timebank.hours_summary(session, account.id)
        lines = timebank.statement(session, account.id)
    assert (summary.earned, summary.spent, summary.donated, summary.received, summary.expired) == (
        300,
        60,
        75,
        15,
        0,
    )
    assert summary.balance == 300 - 60 - 75 + 15
    assert [line.minutes for line in lines] == [15, -45, -30, -60, 300]
