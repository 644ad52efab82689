"""alert-rule override thresholds within a million either way

The rules now refuse a threshold past ±1,000,000 (``alerts.rules.MAX_THRESHOLD``): no reading
comes near it, and an integer too large for a JSON store failed the write. An override stored
before (say ``["59408-5", ">=", 1e7]``, written to mean "never") would now fail to compile, and
with it the resident's or tier's rules at every reading. Each such threshold is set to the bound
with its sign, which fires exactly as seldom: never. The downgrade leaves the bounded values.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07

Written by hand; runs on SQLite and PostgreSQL alike.
"""

import json
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BOUND = 1_000_000  # alerts.rules.MAX_THRESHOLD when this was written


def bounded(condition: Any) -> Any:
    """A ``[reading, op, value]`` condition with its value within the bound; others as they are."""
    if not isinstance(condition, list) or len(condition) != 3:
        return condition
    value = condition[2]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return condition
    if abs(value) <= BOUND:
        return condition
    return [condition[0], condition[1], BOUND if value > 0 else -BOUND]


def upgrade() -> None:
    bind = op.get_bind()
    overrides = sa.table("alert_rule_override", sa.column("id", sa.Integer), sa.column("params", sa.JSON))
    for override_id, params in bind.execute(sa.select(overrides.c.id, overrides.c.params)).all():
        if isinstance(params, str):  # a driver that hands JSON back as text
            params = json.loads(params)
        if not isinstance(params, dict) or not isinstance(params.get("when"), list):
            continue
        when = [bounded(condition) for condition in params["when"]]
        if when != params["when"]:
            bind.execute(
                overrides.update()
                .where(overrides.c.id == override_id)
                .values(params={**params, "when": when})
            )


def downgrade() -> None:
    pass  # the bounded thresholds stay: they fire exactly as the old ones did
