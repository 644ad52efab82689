"""The ``yiyang`` command line. Wiring only: each command calls a domain's service."""

from __future__ import annotations

from pathlib import Path

import typer

from yiyang.config import get_settings

app = typer.Typer(
    help="yiyang 医养: community medical-and-elderly care platform.",
    no_args_is_help=True,
    add_completion=False,
)


def database():  # type: ignore[no-untyped-def]
    """The configured database, migrated to the latest schema."""
    from yiyang.db import Database
    from yiyang.events import install_handlers
    from yiyang.migrate import upgrade

    install_handlers()
    db = Database(settings=get_settings())
    upgrade(db.engine)
    return db


@app.command()
def migrate() -> None:
    """Apply database migrations (SQLite file or YIYANG_DATABASE_URL)."""
    database().dispose()
    typer.echo("database is at the latest schema")


@app.command()
def serve(
    host: str = typer.Option(None, help="address to listen on (default 127.0.0.1)"),
    port: int = typer.Option(None, help="port to listen on (default 8000)"),
) -> None:
    """Serve the web app, JSON API and FHIR facade."""
    import uvicorn

    from yiyang.app import create_app

    settings = get_settings()
    web = create_app(database(), settings)
    uvicorn.run(web, host=host or settings.host, port=port or settings.port, log_level="info")


from yiyang.sources.commands import import_app  # noqa: E402

app.add_typer(import_app, name="import")

from yiyang.demo.commands import demo_command  # noqa: E402

app.command("demo")(demo_command)

geo_app = typer.Typer(help="区划与机构 (geography and organisations).", no_args_is_help=True)
app.add_typer(geo_app, name="geo")


@geo_app.command("import")
def geo_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV (UTF-8 or GB18030): 层级,编码,名称,上级编码"),
    organisations: bool = typer.Option(
        False, "--organisations", help="the file lists organisations: 机构编码,机构名称,机构类型,所属区划编码,地址,电话"
    ),
) -> None:
    """Import the area tree (or organisations); a file with any rejected row changes nothing."""
    from yiyang.errors import DomainError
    from yiyang.geo.service import import_geography, import_organisations

    db = database()
    try:
        with db.unit_of_work() as session:
            report = (import_organisations if organisations else import_geography)(session, file)
    except DomainError as error:  # the whole file is unusable (encoding, missing columns)
        typer.echo(f"[{error.code}] {error.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    for rejection in report.rejections:
        typer.echo(f"第{rejection.line}行 line {rejection.line}: [{rejection.code}] {rejection.message}", err=True)
    if not report.applied:
        typer.echo(f"未导入 (nothing imported): {len(report.rejections)} 行被拒绝 (rows rejected)", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"已导入 (imported) {report.filename} [{report.encoding}]: 新增 created {report.created}, "
        f"更新 updated {report.updated}, 未变 unchanged {report.unchanged}"
    )


from yiyang.assessments.commands import score_command  # noqa: E402

app.command("score")(score_command)

from yiyang.access.commands import audit_app, keys_app, user_app  # noqa: E402

app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")

from yiyang.devices.ingest import ingest_command  # noqa: E402

app.command("ingest")(ingest_command)

from yiyang.tiers.commands import tiers_app  # noqa: E402

app.add_typer(tiers_app, name="tiers")


if __name__ == "__main__":
    app()
