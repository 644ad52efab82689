"""Answer sets with a chosen total, built from an instrument's own item table."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from yiyang.assessments.scoring import Item


def points_totalling(items: Sequence[Item], total: int) -> dict[str, int]:
    """One allowed score per item adding up to ``total`` (raises if no such answer set exists)."""
    options = [tuple(sorted(item.allowed, reverse=True)) for item in items]

    @cache
    def solve(index: int, remaining: int) -> tuple[int, ...] | None:
        if index == len(options):
            return () if remaining == 0 else None
        for value in options[index]:
            if value <= remaining:
                rest = solve(index + 1, remaining - value)
                if rest is not None:
                    return (value, *rest)
        return None

    chosen = solve(0, total)
    if chosen is None:
        raise ValueError(f"no answer set totals {total}")
    return {item.code: value for item, value in zip(items, chosen, strict=True)}


def best(items: Sequence[Item]) -> dict[str, int]:
    return {item.code: item.max_points for item in items}


def yes_count(
    items: Sequence[Item], count: int, scoring_answer: dict[str, bool] | None = None
) -> dict[str, Any]:
    """The first ``count`` items answered the way that scores a point, the rest the other way."""
    scoring_answer = scoring_answer or {}
    answers = {}
    for index, item in enumerate(items):
        scores_on = scoring_answer.get(item.code, True)
        answers[item.code] = scores_on if index < count else not scores_on
    return answers
