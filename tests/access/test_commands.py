"""``yiyang user create-admin``, ``yiyang user add`` and ``yiyang audit verify``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.access.conftest import make_place
from yiyang.access import passwords
from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.models import RoleMembership, User
from yiyang.access.roles import Role
from yiyang.cli import app
from yiyang.config import get_settings
from yiyang.db import Database

runner = CliRunner()


@pytest.fixture
def cli_db(sqlite_db: Database, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    """The command line pointed at the test database."""
    monkeypatch.setenv("YIYANG_DATABASE_URL", str(sqlite_db.engine.url))
    monkeypatch.setenv("YIYANG_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield sqlite_db
    get_settings.cache_clear()


def admins(database: Database) -> list[str]:
    with database.unit_of_work() as session:
        return list(
            session.scalars(
                select(User.username)
                .join(RoleMembership, RoleMembership.user_id == User.id)
                .where(RoleMembership.role == Role.district_admin)
            )
        )


def test_create_admin_reads_the_password_from_stdin(cli_db: Database) -> None:
    # when the first administrator is created
    result = runner.invoke(
        app, ["user", "create-admin", "--username", "admin", "--password-stdin"], input="s3cret-pass\n"
    )
    # then she exists, holds the administrator role and her password works
    assert result.exit_code == 0, result.output
    assert admins(cli_db) == ["admin"]
    with cli_db.unit_of_work() as session:
        user = session.scalars(select(User).where(User.username == "admin")).one()
        assert passwords.verify_password(user.password_hash, "s3cret-pass")
    assert "s3cret-pass" not in result.output


def test_create_admin_prompts_twice_for_the_password(cli_db: Database) -> None:
    result = runner.invoke(
        app, ["user", "create-admin", "--username", "admin"], input="s3cret-pass\ns3cret-pass\n"
    )
    assert result.exit_code == 0, result.output
    assert admins(cli_db) == ["admin"]


def test_a_second_admin_is_refused_unless_forced(cli_db: Database) -> None:
    # given an administrator
    runner.invoke(
        app, ["user", "create-admin", "--username", "admin", "--password-stdin"], input="s3cret-pass\n"
    )
    # when another is created without --force
    refused = runner.invoke(
        app, ["user", "create-admin", "--username", "admin2", "--password-stdin"], input="another-pass\n"
    )
    # then it is refused, with a code, and nobody was added
    assert refused.exit_code == 1
    assert "user.admin.exists" in refused.output
    assert admins(cli_db) == ["admin"]
    # and with --force it is created
    forced = runner.invoke(
        app,
        ["user", "create-admin", "--username", "admin2", "--password-stdin", "--force"],
        input="another-pass\n",
    )
    assert forced.exit_code == 0, forced.output
    assert sorted(admins(cli_db)) == ["admin", "admin2"]


def test_a_short_password_creates_nothing(cli_db: Database) -> None:
    result = runner.invoke(
        app, ["user", "create-admin", "--username", "admin", "--password-stdin"], input="short\n"
    )
    assert result.exit_code == 1 and "auth.password.short" in result.output
    assert admins(cli_db) == []


def test_user_add_places_a_grid_worker_in_her_grid(cli_db: Database) -> None:
    make_place(cli_db)
    # when a grid worker is added without her grid, then with it
    without = runner.invoke(
        app,
        ["user", "add", "--username", "grid.wu", "--role", "grid_worker", "--password-stdin"],
        input="grid-pass-1\n",
    )
    added = runner.invoke(
        app,
        [
            "user",
            "add",
            "--username",
            "grid.wu",
            "--role",
            "grid_worker",
            "--area",
            "110108-G01",
            "--password-stdin",
        ],
        input="grid-pass-1\n",
    )
    # then the first is refused and leaves nothing behind, the second holds the role over that grid
    assert without.exit_code == 1 and "role.area.required" in without.output
    assert added.exit_code == 0, added.output
    with cli_db.unit_of_work() as session:
        membership = session.scalars(select(RoleMembership)).one()
        grid_id = session.scalar(text("SELECT id FROM area WHERE code = '110108-G01'"))
        assert (membership.role, membership.area_id) == (Role.grid_worker, grid_id)


def test_audit_verify_exits_non_zero_on_a_broken_chain(cli_db: Database) -> None:
    # given an intact trail of two events
    with cli_db.unit_of_work() as session:
        for resident_id in (1, 2):
            record_access(session, Actor(user_id=1, username="nurse.li"), action="read", resource_type="resident",
                          resident_id=resident_id)  # fmt: skip
    intact = runner.invoke(app, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "2 events" in intact.output
    # when the first is edited behind the trigger's back
    with cli_db.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_event_no_update"))
        connection.execute(text("UPDATE audit_event SET resident_id = 3 WHERE id = 1"))
    broken = runner.invoke(app, ["audit", "verify"])
    # then verification fails and names the row
    assert broken.exit_code == 1
    assert "event 1" in broken.output
