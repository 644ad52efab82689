"""alert-rule override flags stored as JSON booleans

Until this revision an override's ``enabled``, ``tier_fact`` and ``living_alone_only`` were read
with ``bool()``, so the API accepted text such as ``"false"`` and the rule ran as if it said true.
The rules now accept only ``true`` or ``false`` (``alerts.rules._flag``) and would refuse to
compile a resident's or tier's rules that still hold text. Each such value becomes the boolean it
says: ``"false"``, ``"0"``, ``"no"``, ``"否"``, ``"off"`` and empty text are false; ``"true"``,
``"1"``, ``"yes"``, ``"是"`` and ``"on"`` true (what the person who wrote it meant, not what the
old reading did). A number is true unless zero, a null drops the key (the rule's default), and any
other value keeps how it ran (``bool()``). The downgrade leaves the booleans.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

Written by hand; runs on SQLite and PostgreSQL alike.
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = ("enabled", "tier_fact", "living_alone_only")
FALSE_WORDS = {"false", "0", "no", "n", "off", "否", ""}
TRUE_WORDS = {"true", "1", "yes", "y", "on", "是"}


def as_flag(value: Any) -> bool | None:
    """The boolean a stored flag meant; None for a null (the key is dropped)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in FALSE_WORDS:
            return False
        if word in TRUE_WORDS:
            return True
    return bool(value)


def upgrade() -> None:
    bind = op.get_bind()
    overrides = sa.table("alert_rule_override", sa.column("id", sa.Integer), sa.column("params", sa.JSON))
    for override_id, params in bind.execute(sa.select(overrides.c.id, overrides.c.params)).all():
        if isinstance(params, str):  # a driver that hands JSON back as text
            params = json.loads(params)
        if not isinstance(params, dict) or all(isinstance(params.get(f, False), bool) for f in FLAGS):
            continue
        fixed = dict(params)
        for flag in FLAGS:
            if flag in fixed and not isinstance(fixed[flag], bool):
                meant = as_flag(fixed[flag])
                if meant is None:
                    del fixed[flag]
                else:
                    fixed[flag] = meant
        bind.execute(overrides.update().where(overrides.c.id == override_id).values(params=fixed))


def downgrade() -> None:
    pass  # the booleans stay: they are what the rules read either way
