"""Sign-in throttling as a pure rule: given the recent failures, may another attempt be made?

Counting lives in the database (``sign_in_attempt``) so the limit holds across app processes;
this module only decides. The window slides: an attempt is refused while ``limit`` or more
failures fall within the last ``window``, and the refusal says when the oldest of the failures
that must expire will have left the window.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    window: dt.timedelta = dt.timedelta(minutes=15)
    max_failures_per_account: int = 5
    max_failures_per_client: int = 20


def retry_after(
    failures: Sequence[dt.datetime], now: dt.datetime, limit: int, window: dt.timedelta
) -> int | None:
    """Seconds to wait before the next attempt, or None when it may be made now.

    ``failures`` are the failure times that count (any order); those outside the window are ignored.
    """
    recent = sorted(moment for moment in failures if now - moment < window)
    if len(recent) < limit:
        return None
    # Once len(recent) - limit + 1 of the oldest have left the window, fewer than `limit` remain.
    releasing = recent[len(recent) - limit]
    return max(1, math.ceil((releasing + window - now).total_seconds()))
