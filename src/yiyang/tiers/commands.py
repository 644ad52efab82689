"""``yiyang tiers``: the nightly sweep and the rules in force."""

from __future__ import annotations

import datetime as dt
import json

import typer

tiers_app = typer.Typer(help="红黄绿分级 (red / yellow / green tiers).", no_args_is_help=True)


@tiers_app.command("sweep")
def sweep(
    as_of: str = typer.Option(
        None, "--as-of", help="the day to decide for, YYYY-MM-DD (default: today, China time)"
    ),
) -> None:
    """每日复核 Re-decide every resident's tier (run nightly: time-limited facts expire without a new record)."""
    from yiyang.migrate import open_database as database
    from yiyang.tiers.service import sweep_tiers

    day = None
    if as_of:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            typer.echo(f"日期格式应为 YYYY-MM-DD (the date must be YYYY-MM-DD): {as_of}", err=True)
            raise typer.Exit(2) from None
    db = database()
    try:
        with db.unit_of_work() as session:
            report = sweep_tiers(session, as_of=day)
    finally:
        db.dispose()
    typer.echo(
        f"已分级 (decided) {report.residents} 人: 变更 changed {report.changed}, 理由更新 updated {report.updated}, "
        f"未变 unchanged {report.unchanged}, 新建议计划 proposed plans {report.proposed_plans}; "
        f"{dict(report.by_tier)} in {report.elapsed_s:.1f}s"
    )


@tiers_app.command("rules")
def rules() -> None:
    """分级规则 Print the rules in force (defaults changed by YIYANG_TIER_RULES_FILE) as JSON."""
    from yiyang.tiers.service import current_rules

    typer.echo(json.dumps([rule.as_json() for rule in current_rules()], ensure_ascii=False, indent=2))
