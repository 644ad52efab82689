"""``yiyang timebank``: the expiry sweep."""

from __future__ import annotations

import typer

from yiyang.timebank.ledger import MIN_VALIDITY_DAYS

timebank_app = typer.Typer(help="时间银行 (time bank): hours expiry.", no_args_is_help=True)


@timebank_app.command("expire")
def expire(
    validity_days: int | None = typer.Option(
        None,
        "--validity-days",
        min=MIN_VALIDITY_DAYS,
        max=36_500,
        help="hours older than this many days lapse (default YIYANG_TIMEBANK_VALIDITY_DAYS, else 1095)",
    ),
) -> None:
    """时长过期 Expire hours past their validity, oldest first (run daily; running it twice expires nothing more)."""
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
