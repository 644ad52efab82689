"""``yiyang geo import FILE``: the area tree or the organisations, all or nothing."""

from __future__ import annotations

from pathlib import Path

import typer

geo_app = typer.Typer(help="区划与机构 (geography and organisations).", no_args_is_help=True)


@geo_app.command("import")
def geo_import(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV (UTF-8 or GB18030): 层级,编码,名称,上级编码"
    ),
    organisations: bool = typer.Option(
        False,
        "--organisations",
        help="the file lists organisations: 机构编码,机构名称,机构类型,所属区划编码,地址,电话",
    ),
) -> None:
    """导入区划或机构 Import the area tree (or organisations); a file with any rejected row changes nothing."""
    from yiyang.errors import DomainError
    from yiyang.geo.service import import_geography, import_organisations
    from yiyang.migrate import open_database

    db = open_database()
    try:
        with db.unit_of_work() as session:
            report = (import_organisations if organisations else import_geography)(session, file)
    except DomainError as error:  # the whole file is unusable (encoding, missing columns)
        typer.echo(f"[{error.code}] {error.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    for rejection in report.rejections:
        typer.echo(
            f"第{rejection.line}行 line {rejection.line}: [{rejection.code}] {rejection.message}", err=True
        )
    if not report.applied:
        typer.echo(f"未导入 (nothing imported): {len(report.rejections)} 行被拒绝 (rows rejected)", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"已导入 (imported) {report.filename} [{report.encoding}]: 新增 created {report.created}, "
        f"更新 updated {report.updated}, 未变 unchanged {report.unchanged}"
    )
