"""``yiyang import {health,insurance,civil} FILE``: an agency file through the import pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from yiyang.errors import DomainError
from yiyang.sources.models import Feed

import_app = typer.Typer(
    help="数据导入 Import an agency file (卫健 health / 医保 insurance / 民政 civil affairs).",
    no_args_is_help=True,
)
console = Console(stderr=True)

COUNT_LABELS = {
    "rows": "行 rows",
    "accepted": "新增 accepted",
    "linked_id_number": "  身份证号精确关联 linked by ID",
    "linked_probabilistic": "  概率匹配关联 linked by match",
    "new_resident": "  新建居民 new residents",
    "linked_review": "  待人工核对 sent to review",
    "updated": "更新 updated",
    "unchanged": "未变 unchanged",
    "rejected": "拒绝 rejected",
}


def run_import(feed: Feed, path: Path, report: Path | None) -> None:
    from yiyang.migrate import open_database as database
    from yiyang.sources.service import import_file

    if not path.is_file():
        console.print(f"[red]文件不存在 (no such file): {path}")
        raise typer.Exit(2)
    db = database()
    with Progress(
        TextColumn(f"[bold]{feed.value}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task("import", total=None)
        try:
            result = import_file(
                db, feed, path,
                on_total=lambda n: progress.update(task, total=n),
                on_progress=lambda n: progress.update(task, completed=n),
                on_wait=lambda: progress.console.print(
                    "[yellow]另一导入正在进行，等待其完成 (another import is running; waiting for it to finish)"
                ),
            )  # fmt: skip
        except DomainError as error:
            progress.stop()
            console.print(f"[red]{error.code}: {error.message}")
            if error.detail:
                console.print(json.dumps(error.detail, ensure_ascii=False))
            raise typer.Exit(1) from None
        finally:
            db.dispose()
    table = Table(title=f"{path.name}: run {result.run_id}, {result.elapsed_s:.1f}s")
    table.add_column("")
    table.add_column("", justify="right")
    for key, label in COUNT_LABELS.items():
        if result.counts.get(key):
            table.add_row(label, f"{result.counts[key]:,}")
    Console().print(table)
    for rejection in result.rejections[:20]:
        console.print(f"  第{rejection.line}行 line {rejection.line}: {rejection.code} {rejection.message}")
    if len(result.rejections) > 20:
        console.print(f"  ... {len(result.rejections) - 20} more rejections; see --report")
    if report:
        report.write_text(json.dumps(result.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        console.print(f"report written to {report}")


def _command(feed: Feed):  # type: ignore[no-untyped-def]
    def command(
        file: Path = typer.Argument(..., help="CSV (UTF-8 or GB18030) or XLSX file"),
        report: Path = typer.Option(None, "--report", help="write every outcome and rejection as JSON here"),
    ) -> None:
        run_import(feed, file, report)

    command.__doc__ = {
        Feed.health: "卫健 WS 365-style resident health file (居民健康档案). See docs/feeds.md.",
        Feed.insurance: "医保 settlement list: visits/claims with ICD-10 diagnoses. See docs/feeds.md.",
        Feed.civil: "民政 elderly roster: disability, living arrangement, subsidies. See docs/feeds.md.",
    }[feed]
    return command


for _feed in (Feed.health, Feed.insurance, Feed.civil):
    import_app.command(_feed.value)(_command(_feed))
