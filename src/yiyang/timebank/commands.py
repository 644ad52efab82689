"""``yiyang timebank``: the expiry sweep."""

from __future__ import annotations

import typer

from yiyang.timebank.service import DEFAULT_VALIDITY_DAYS

timebank_app = typer.Typer(help="时间银行 (time bank): hours expiry.", no_args_is_help=True)


@timebank_app.command("expire")
def expire(
    validity_days: int = typer.Option(
        DEFAULT_VALIDITY_DAYS, "--validity-days", min=1, max=36_500, help="hours older than this lapse"
    ),
) -> None:
    """Expire hours past their validity, oldest first (run daily; running it twice expires nothing more)."""
    from yiyang.db import utcnow
    from yiyang.migrate import open_database
    from yiyang.timebank.service import expire as expire_hours

    db = open_database()
    try:
        with db.unit_of_work() as session:
            minutes = expire_hours(session, utcnow(), validity_days)
    finally:
        db.dispose()
    typer.echo(f"已过期 expired {minutes / 60:.1f} 小时 hours")
