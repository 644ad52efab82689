"""A GET's unit of work commits its read audits without waiting for the WAL flush on PostgreSQL;
anything that changes data keeps the full wait."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from yiyang.app import create_app
from yiyang.config import Settings
from yiyang.db import Database
from yiyang.deps import SessionDep

pytestmark = pytest.mark.postgres


def _probe_app(database: Database, **settings: object) -> TestClient:
    app = create_app(database, Settings(**settings))

    def show(session: SessionDep) -> str:
        return session.execute(text("SHOW synchronous_commit")).scalar_one()

    app.get("/probe")(show)
    app.post("/probe")(show)
    return TestClient(app)


def test_a_get_relaxes_its_commit_and_a_post_does_not(pg_db: Database) -> None:
    client = _probe_app(pg_db)
    assert client.get("/probe").json() == "off"
    assert client.post("/probe").json() == "on"
    # and the relaxation is local to that transaction
    with pg_db.unit_of_work() as session:
        assert session.execute(text("SHOW synchronous_commit")).scalar_one() == "on"


def test_the_setting_keeps_every_commit_durable(pg_db: Database) -> None:
    client = _probe_app(pg_db, audit_reads_durable=True)
    assert client.get("/probe").json() == "on"
