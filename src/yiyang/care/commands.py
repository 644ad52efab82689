"""``yiyang care ...``: the care day job from the command line (and a scheduler calling it)."""

from __future__ import annotations

import datetime as dt
import json

import typer

care_app = typer.Typer(
    help="闭环服务 (closed-loop care): contracts, work items, overdue lists.", no_args_is_help=True
)


@care_app.command("day")
def day_command(
    at: str = typer.Option(
        None,
        help="run as of this ISO date-time (default: now; without a zone, UTC), e.g. 2026-12-01T06:00+08:00",
    ),
) -> None:
    """每日服务任务 Expire contracts, generate due work, mark overdue and escalate: the daily care job."""
    from yiyang.care.day import run_care_day
    from yiyang.db import utcnow
    from yiyang.migrate import open_database

    try:
        now = dt.datetime.fromisoformat(at) if at else utcnow()
    except ValueError:
        raise typer.BadParameter(f"not an ISO date-time: {at!r}", param_hint="--at") from None
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    database = open_database()
    try:
        report = run_care_day(database, now)
    finally:
        database.dispose()
    typer.echo(json.dumps(report.as_json()))
