"""A scratch PostgreSQL database for one benchmark run, created beside the admin URL's database."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def add_scratch_arguments(parser: argparse.ArgumentParser) -> None:
    """``--pg-url`` (where to create the scratch database) and ``--keep``."""
    parser.add_argument(
        "--pg-url", default=ADMIN_URL, help="an existing database to create the bench database from"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")


@contextmanager
def scratch_database(admin_url: str, *, keep: bool = False) -> Iterator[str]:
    """Yields the URL of a new, empty database; drops it afterwards unless ``keep``."""
    name = f"yiyang_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
