"""The ledger's rules as pure functions: balanced postings, no overdraft, first-in-first-out expiry.

Hours are kept as whole minutes (integers), so sums are exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from yiyang.errors import Invalid

MAX_MINUTES = 100_000 * 60  # one posting moves at most 100,000 hours
# The shortest validity of earned hours an expiry may use (setting, command or API): a slip (1 for
# 365) would otherwise take every volunteer's hours at once, and the ledger never gives them back.
MIN_VALIDITY_DAYS = 30


@dataclass(frozen=True, slots=True)
class Posting:
    account_id: int
    minutes: int  # positive: into the account; negative: out of it


def check_postings(postings: Sequence[Posting]) -> None:
    """A transaction moves minutes between at least two accounts and sums to zero."""
    if len(postings) < 2:
        raise Invalid("timebank.posting.legs", "记账至少涉及两个账户 (a posting needs two accounts)")
    for posting in postings:
        if posting.minutes == 0 or abs(posting.minutes) > MAX_MINUTES:
            raise Invalid(
                "timebank.posting.amount", "记账时长须非零且有上限 (minutes must be non-zero and bounded)"
            )
    if sum(p.minutes for p in postings) != 0:
        raise Invalid("timebank.posting.unbalanced", "借贷不平 (entries must sum to zero)")


def overdrawn(balances: Mapping[int, int], postings: Iterable[Posting], guarded: set[int]) -> list[int]:
    """Guarded accounts (volunteers') that these postings would take below zero."""
    after = dict(balances)
    for posting in postings:
        after[posting.account_id] = after.get(posting.account_id, 0) + posting.minutes
    return sorted(account for account in guarded if after.get(account, 0) < 0)


@dataclass(frozen=True, slots=True)
class Credit:
    """Minutes that came into an account at a time (a lot, for expiry)."""

    at: dt.datetime
    minutes: int


def expiring_minutes(credits: Sequence[Credit], debited: int, cutoff: dt.datetime) -> int:
    """Minutes to expire now: what is left of the lots credited before ``cutoff``.

    First in, first out: everything that ever left the account (spent, donated, already expired:
    ``debited``, a positive number) used the oldest lots first, so of the lots older than the cutoff
    what remains is their total less everything debited, never below zero.
    """
    return expiring_from_totals(sum(c.minutes for c in credits if c.at < cutoff), debited)


def expiring_from_totals(old_credited: int, debited: int) -> int:
    """``expiring_minutes`` from two sums, as the database computes them in one aggregate."""
    return max(0, old_credited - debited)
