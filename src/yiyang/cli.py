"""The ``yiyang`` command line. Wiring only: each command calls a domain's service."""

from __future__ import annotations

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
    from yiyang.migrate import upgrade

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


if __name__ == "__main__":
    app()
