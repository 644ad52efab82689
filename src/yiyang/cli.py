"""The ``yiyang`` command line. Wiring only: each command calls a domain's service."""

from __future__ import annotations

import typer

from yiyang.access.redaction import install_pii_redaction
from yiyang.config import get_settings
from yiyang.migrate import open_database

app = typer.Typer(
    help="医养 yiyang: 社区医养结合服务平台 (community medical-and-elderly care platform).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """医养 yiyang: 社区医养结合服务平台 (community medical-and-elderly care platform)."""
    # Every command's process, not only the web app's: the worker's and ingest's tracebacks and
    # an import's rejected rows must not carry an ID number or a phone into a log line.
    install_pii_redaction()


@app.command()
def migrate() -> None:
    """数据库迁移 Apply database migrations (SQLite file or YIYANG_DATABASE_URL)."""
    open_database().dispose()
    typer.echo("database is at the latest schema")


@app.command()
def serve(
    host: str = typer.Option(None, help="address to listen on (default YIYANG_HOST, else 127.0.0.1)"),
    port: int = typer.Option(None, help="port to listen on (default YIYANG_PORT, else 8000)"),
    jobs: bool = typer.Option(
        None, "--jobs/--no-jobs", help="run the timed jobs in this process (default: on for SQLite)"
    ),
) -> None:
    """启动服务 Serve the web app, JSON API and FHIR facade."""
    import uvicorn

    from yiyang.app import create_app
    from yiyang.jobs import Scheduler, install_jobs

    settings = get_settings()
    database = open_database()
    web = create_app(database, settings)
    # Called as a function (the demo), an option left out arrives as typer's default object.
    run_jobs = jobs if isinstance(jobs, bool) else database.engine.dialect.name == "sqlite"
    if run_jobs:
        install_jobs()  # the embedded default: no separate `yiyang worker`
        Scheduler(database).start()
    uvicorn.run(web, host=host or settings.host, port=port or settings.port, log_level="info")


from yiyang.sources.commands import import_app  # noqa: E402

app.add_typer(import_app, name="import")

from yiyang.demo.commands import demo_command  # noqa: E402

app.command("demo")(demo_command)

from yiyang.geo.commands import geo_app  # noqa: E402

app.add_typer(geo_app, name="geo")

from yiyang.assessments.commands import score_command  # noqa: E402

app.command("score")(score_command)

from yiyang.access.commands import audit_app, keys_app, user_app  # noqa: E402

app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")

from yiyang.devices.ingest import ingest_command  # noqa: E402

app.command("ingest")(ingest_command)

from yiyang.devices.commands import devices_app, simulate_command  # noqa: E402

app.add_typer(devices_app, name="devices")
app.command("simulate")(simulate_command)

from yiyang.tiers.commands import tiers_app  # noqa: E402

app.add_typer(tiers_app, name="tiers")
from yiyang.care.orders.commands import orders_app  # noqa: E402
from yiyang.timebank.commands import timebank_app  # noqa: E402

app.add_typer(orders_app, name="orders")
app.add_typer(timebank_app, name="timebank")

from yiyang.care.commands import care_app  # noqa: E402

app.add_typer(care_app, name="care")


from yiyang.jobs import worker_command  # noqa: E402

app.command("worker")(worker_command)


if __name__ == "__main__":
    app()
