"""social organisations' people in a role of their own

A social organisation's people held the station-staff role, so acceptance asked the resident's
consent for the civil-affairs recipient class, which is implied where a resident recorded nothing.
Consent names social organisations with volunteers (the social class, explicit permit only): their
memberships move to the ``social_worker`` role, whose scope carries that class.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

Written by hand; runs on SQLite and PostgreSQL alike.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OF_SOCIAL_ORGANISATIONS = (
    "organisation_id IN (SELECT id FROM organisation WHERE kind = 'social_organisation')"
)


def upgrade() -> None:
    op.execute(
        f"UPDATE role_membership SET role = 'social_worker' WHERE role = 'station_staff' AND {_OF_SOCIAL_ORGANISATIONS}"
    )


def downgrade() -> None:
    op.execute(
        f"UPDATE role_membership SET role = 'station_staff' WHERE role = 'social_worker' AND {_OF_SOCIAL_ORGANISATIONS}"
    )
