"""No log line holds an ID number or a phone: every logger captured, SQL statements and their
parameters included, through an import and the API calls that look people up and reveal."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.access.conftest import PASSWORD, add_user
from tests.access.pii_samples import WANG_ID, WANG_PHONE, import_samples, sample_pii
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database


def test_no_log_line_holds_an_id_number_or_phone_from_the_data(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # given every logger at its most talkative, SQLAlchemy's statements and parameters included
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    app = create_app(db)
    client = TestClient(app)
    # when the sample files are imported and people are looked up, read, revealed and mistyped
    import_samples(db)
    add_user(db, "dr.zhao", Role.family_doctor)
    token = client.post("/api/auth/login", json={"username": "dr.zhao", "password": PASSWORD}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    (wang,) = [item["id"] for item in client.get("/api/residents", params={"q": WANG_ID}).json()["items"]]
    client.get("/api/residents", params={"q": WANG_PHONE})
    client.get(f"/api/residents/{wang}")
    client.get(f"/api/residents/{wang}/sources")
    client.get("/fhir/Patient", params={"identifier": WANG_ID})
    client.get(f"/fhir/Patient/{wang}")
    revealed = client.post(
        f"/api/residents/{wang}/reveal",
        json={"field": "id_number", "reason": f"核对 {WANG_ID}"},
        headers=headers,
    )
    assert revealed.json()["value"] == WANG_ID
    client.post(f"/api/residents/{wang}/reveal", json={"field": WANG_PHONE, "reason": "x"}, headers=headers)
    client.get(f"/api/residents/{WANG_ID}")  # an ID number where an id belongs: 422
    # then lines were logged (SQL included), and none holds any ID number or phone of the data
    lines = [record.getMessage() for record in caplog.records]
    lines += [record.exc_text or "" for record in caplog.records]
    logged = "\n".join(lines) + caplog.text
    assert any(record.name.startswith("sqlalchemy.engine") for record in caplog.records)
    assert len(caplog.records) > 50
    leaked = sorted(value for value in sample_pii(db) if value in logged)
    assert leaked == []
