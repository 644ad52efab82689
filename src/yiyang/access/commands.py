"""``yiyang user ...``, ``yiyang audit verify`` and ``yiyang keys generate|status|rotate``."""

from __future__ import annotations

import sys

import typer

from yiyang.access.roles import ROLES, Role
from yiyang.errors import DomainError

user_app = typer.Typer(help="用户与角色 (users and roles)", no_args_is_help=True)
audit_app = typer.Typer(help="审计日志 (audit trail)", no_args_is_help=True)
keys_app = typer.Typer(help="加密密钥 (encryption keys)", no_args_is_help=True)


def _database():  # type: ignore[no-untyped-def]
    from yiyang.migrate import open_database as database

    return database()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("密码 (password)", hide_input=True, confirmation_prompt=True)


def _fail(error: DomainError) -> None:
    typer.echo(f"{error.code}: {error.message}", err=True)
    raise typer.Exit(code=1)


@user_app.command("create-admin")
def create_admin(
    username: str = typer.Option(..., "--username", help="管理员用户名 (administrator's user name)"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password from standard input"
    ),
    force: bool = typer.Option(False, "--force", help="create another administrator even if one exists"),
) -> None:
    """创建管理员 First run: create the district administrator (refused if one exists, unless --force)."""
    from yiyang.access import service

    password = _read_password(password_stdin)
    database = _database()
    try:
        with database.unit_of_work() as session:
            user = service.create_admin(session, username, password, force=force)
    except DomainError as error:
        _fail(error)
    finally:
        database.dispose()
    typer.echo(f"管理员已创建 (administrator created): {user.username} (id {user.id})")


@user_app.command("add")
def add_user(
    username: str = typer.Option(..., "--username"),
    role: Role = typer.Option(..., "--role", help=", ".join(f"{r.value} {i.zh}" for r, i in ROLES.items())),
    organisation: str | None = typer.Option(None, "--organisation", help="organisation code (机构编码)"),
    area: str | None = typer.Option(None, "--area", help="area code for jurisdictional roles (辖区编码)"),
    resident: int | None = typer.Option(None, "--resident", help="resident id, for a resident's own account"),
    display_name: str | None = typer.Option(None, "--display-name"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password from standard input"
    ),
) -> None:
    """添加用户 Add a user holding one role, in an organisation and, for jurisdictional roles, an area."""
    from yiyang.access import accounts, service

    password = _read_password(password_stdin)
    database = _database()
    try:
        with database.unit_of_work() as session:
            organisation_id, area_id = accounts.place_ids(session, organisation, area)
            user = service.create_user(
                session, username, password=password, display_name=display_name, resident_id=resident
            )
            service.grant_role(session, user, role, organisation_id=organisation_id, area_id=area_id)
    except DomainError as error:
        _fail(error)
    finally:
        database.dispose()
    typer.echo(f"用户已创建 (user created): {user.username} (id {user.id}, {role.value})")


def _account_id(session, username: str) -> int:  # type: ignore[no-untyped-def]
    from yiyang.access import service
    from yiyang.errors import NotFound

    user = service.find_user(session, username)
    if user is None:
        raise NotFound("user.not_found", f"账号不存在 (no account {username})")
    return user.id


def _administer(what, *args, **options):  # type: ignore[no-untyped-def]
    """Run one ``accounts`` change as the command line's system actor (audited) and commit it."""
    from yiyang.access.actor import system_actor
    from yiyang.db import utcnow

    database = _database()
    try:
        with database.unit_of_work() as session:
            return what(session, system_actor("user_admin"), *args, now=utcnow(), **options)
    except DomainError as error:
        _fail(error)
    finally:
        database.dispose()


@user_app.command("list")
def list_users(
    role: Role | None = typer.Option(None, "--role", help="only accounts holding this role"),
    inactive: bool = typer.Option(False, "--inactive", help="only deactivated accounts"),
    query: str | None = typer.Option(None, "--query", help="start of the user name or display name"),
) -> None:
    """用户列表 List accounts with the roles they hold in force."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from yiyang.access import accounts
    from yiyang.access.actor import system_actor

    database = _database()
    try:
        with database.unit_of_work() as session:
            page = accounts.list_accounts(
                session, system_actor("user_admin"), query=query, role=role,
                active=False if inactive else None, limit=10_000,
            )  # fmt: skip
            table = Table("id", "用户名 user", "姓名 name", "状态 status", "角色 roles in force")
            for user in page.users:
                held = [
                    f"{ROLES[m.role].zh} {m.role.value}" + (f" org {m.organisation_id}" if m.organisation_id else "")
                    + (f" area {m.area_id}" if m.area_id else "") + f" #{m.id}"
                    for m in page.memberships[user.id] if m.revoked_at is None
                ]  # fmt: skip
                status = "启用 active" if user.active else "停用 inactive"
                table.add_row(
                    str(user.id),
                    escape(user.username),
                    escape(user.display_name),
                    status,
                    "\n".join(held) or "—",
                )
    finally:
        database.dispose()
    Console().print(table)
    typer.echo(f"共 {page.total} 个账号 ({page.total} accounts)")


@user_app.command("grant")
def grant(
    username: str = typer.Argument(..., help="user name"),
    role: Role = typer.Option(..., "--role", help=", ".join(f"{r.value} {i.zh}" for r, i in ROLES.items())),
    organisation: str | None = typer.Option(None, "--organisation", help="organisation code (机构编码)"),
    area: str | None = typer.Option(None, "--area", help="area code (辖区编码)"),
) -> None:
    """授予角色 Give an account another role."""
    from yiyang.access import accounts

    def _grant(session, actor, *, now):  # type: ignore[no-untyped-def]
        organisation_id, area_id = accounts.place_ids(session, organisation, area)
        return accounts.grant(
            session, actor, _account_id(session, username), role, organisation_id=organisation_id,
            area_id=area_id, now=now,
        )  # fmt: skip

    membership = _administer(_grant)
    typer.echo(f"已授予 (granted): {username} {role.value} #{membership.id}")


@user_app.command("revoke")
def revoke(
    username: str = typer.Argument(..., help="user name"),
    membership: int = typer.Option(..., "--membership", help="the role's number, #N in `yiyang user list`"),
) -> None:
    """撤销角色 End one role of an account; the record of it is kept."""
    from yiyang.access import accounts

    def _revoke(session, actor, *, now):  # type: ignore[no-untyped-def]
        return accounts.revoke(session, actor, _account_id(session, username), membership, now=now)

    ended = _administer(_revoke)
    typer.echo(f"已撤销 (revoked): {username} {ended.role.value} #{ended.id}")


@user_app.command("deactivate")
def deactivate(username: str = typer.Argument(..., help="user name")) -> None:
    """停用账号 Stop an account: no more sign-ins, signed out everywhere now; roles are kept."""
    from yiyang.access import accounts

    revoked = _administer(
        lambda session, actor, *, now: accounts.deactivate(
            session, actor, _account_id(session, username), now=now
        )
    )
    typer.echo(f"已停用 (deactivated): {username}, {revoked} 个登录已注销 (credentials revoked)")


@user_app.command("reactivate")
def reactivate(username: str = typer.Argument(..., help="user name")) -> None:
    """启用账号 Let a stopped account sign in again, with the roles it still holds."""
    from yiyang.access import accounts

    _administer(
        lambda session, actor, *, now: accounts.reactivate(
            session, actor, _account_id(session, username), now=now
        )
    )
    typer.echo(f"已启用 (reactivated): {username}")


@user_app.command("password")
def reset_password(
    username: str = typer.Argument(..., help="user name"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password from standard input"
    ),
) -> None:
    """重置密码 Set a new password for an account; signs it out everywhere."""
    from yiyang.access import accounts

    password = _read_password(password_stdin)
    revoked = _administer(
        lambda session, actor, *, now: accounts.reset_password(
            session, actor, _account_id(session, username), password, now=now
        )
    )
    typer.echo(f"密码已重置 (password reset): {username}, {revoked} 个登录已注销 (credentials revoked)")


@audit_app.command("verify")
def verify() -> None:
    """校验审计链 Check the audit chain; exits 1 and names the first broken row when it does not hold."""
    from yiyang.access.audit import verify_chain

    database = _database()
    try:
        with database.unit_of_work() as session:
            result = verify_chain(session)
    finally:
        database.dispose()
    if result.ok:
        typer.echo(f"审计链完整 (audit chain intact): {result.checked} events, head {result.head_hash}")
        return
    typer.echo(
        f"审计链断开 (audit chain broken) at event {result.first_broken_id}: {result.reason} "
        f"({result.checked} events checked before it)",
        err=True,
    )
    raise typer.Exit(code=1)


@keys_app.command("generate")
def generate() -> None:
    """生成密钥 Print a new field key and blind-index key, as settings lines, for a new deployment."""
    from yiyang.access.crypto import generate_key

    typer.echo(f"YIYANG_FIELD_KEYS=k1:{generate_key()}")
    typer.echo(f"YIYANG_BLIND_INDEX_KEY={generate_key()}")


@keys_app.command("status")
def key_status() -> None:
    """密钥状态 How many stored values each field key sealed, and which configured keys are unused."""
    from yiyang.access import rotation
    from yiyang.access.keys import get_keys

    keys = get_keys()
    database = _database()
    try:
        with database.unit_of_work() as session:
            usage = rotation.key_usage(session)
            retired = rotation.retired_keys(session, keys)
            unknown = rotation.unknown_keys(session, keys)
    finally:
        database.dispose()
    typer.echo(f"当前字段密钥 (current field key): {keys.field_keys.current.kid}")
    for column, counts in usage.items():
        listed = ", ".join(f"{kid}: {count}" for kid, count in sorted(counts.items())) or "—"
        typer.echo(f"  {column:<28} {listed}")
    if retired:
        typer.echo(f"可从 YIYANG_FIELD_KEYS 移除 (no value uses, may be removed): {', '.join(retired)}")
    if unknown:
        typer.echo(_unknown_keys_line(unknown), err=True)


def _unknown_keys_line(unknown: dict[str, int]) -> str:
    named = ", ".join(f"{kid} ({count})" for kid, count in sorted(unknown.items()))
    return (
        f"以下密钥仍有值使用但未配置，这些值无法打开: {named} (keys not configured that stored values "
        "still need: add them back to YIYANG_FIELD_KEYS, behind the current key)"
    )


@keys_app.command("rotate")
def rotate(
    batch_size: int = typer.Option(1000, "--batch-size", min=1, max=100_000, help="rows per transaction"),
    reindex: bool = typer.Option(
        False,
        "--reindex",
        help="recompute blind indexes (automatic when YIYANG_BLIND_INDEX_KEY_PREVIOUS is set)",
    ),
) -> None:
    """密钥轮换 Re-seal every ID number and phone under the current field key (the first in
    YIYANG_FIELD_KEYS) and, after a blind-index key change, recompute the indexes. Reads keep
    working meanwhile; safe to interrupt and run again."""
    from rich.progress import Progress

    from yiyang.access import rotation
    from yiyang.access.keys import get_keys

    keys = get_keys()
    database = _database()
    try:
        with database.unit_of_work() as session:
            todo = sum(rotation.pending(session, keys).values())
            residents = (
                rotation.stale_index_count(session) if reindex or keys.previous_blind_index_keys else 0
            )
        with Progress() as progress:
            task = progress.add_task(f"重新加密 re-sealing under {keys.field_keys.current.kid}", total=todo)
            report = rotation.reseal_all(
                database, keys, batch_size=batch_size, on_progress=lambda _what, n: progress.advance(task, n)
            )
            if reindex or keys.previous_blind_index_keys:
                task = progress.add_task("重建检索索引 re-keying blind indexes", total=None)
                indexed = rotation.reindex_all(
                    database,
                    keys,
                    batch_size=batch_size,
                    on_progress=lambda _what, n: progress.advance(task, n),
                )
                report.reindexed, report.redigested = indexed.reindexed, indexed.redigested
                report.conflicts += indexed.conflicts
                for column, count in indexed.unreadable.items():
                    report.unreadable[column] = report.unreadable.get(column, 0) + count
        with database.unit_of_work() as session:
            left = sum(rotation.pending(session, keys).values())
            retired = rotation.retired_keys(session, keys)
            unknown = rotation.unknown_keys(session, keys)
    finally:
        database.dispose()
    resealed = ", ".join(f"{column} {count}" for column, count in report.resealed.items())
    typer.echo(f"已重新加密 (re-sealed): {resealed}")
    if reindex or keys.previous_blind_index_keys:
        typer.echo(
            f"已重建索引 (blind indexes re-keyed): {report.reindexed} residents, "
            f"{report.redigested} record digests (of {residents} residents checked)"
        )
    if report.unreadable:
        # Running again does not help these: the key they need has to come back (or they are damaged).
        listed = ", ".join(f"{column} {count}" for column, count in report.unreadable.items())
        typer.echo(f"无法打开、已跳过的值 (values that did not open, skipped): {listed}", err=True)
        if unknown:
            typer.echo(_unknown_keys_line(unknown), err=True)
        raise typer.Exit(code=1)
    if left:
        typer.echo(f"仍有 {left} 个值未用当前密钥 (values still under older keys: run again)", err=True)
        raise typer.Exit(code=1)
    if retired:
        typer.echo(f"可从 YIYANG_FIELD_KEYS 移除 (no value uses, may be removed): {', '.join(retired)}")
    if keys.previous_blind_index_keys:
        typer.echo("可移除 YIYANG_BLIND_INDEX_KEY_PREVIOUS (every index uses the current blind-index key)")
