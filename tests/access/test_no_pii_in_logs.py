"""No log line holds an ID number or a phone: every logger captured, SQL statements and their
parameters included, through an import and the API calls that look people up and reveal."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.access.pii_samples import WANG_ID, WANG_PHONE, import_samples, sample_pii
from yiyang.app import create_app
from yiyang.db import Database

from ..signed_in import sign_in_as_clinician


def test_no_log_line_holds_an_id_number_or_phone_from_the_data(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # given every logger at its most talkative, SQLAlchemy's statements and parameters included
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    app = create_app(db)
    client = TestClient(app)
    # when the sample files are imported and a family doctor contracted with everyone (who also keeps
    # the registry) looks people up, reads them, reveals an ID number and mistypes
    import_samples(db)
    sign_in_as_clinician(client, db)
    found = client.get("/api/residents", params={"q": WANG_ID})
    assert found.status_code == 200, found.text
    (wang,) = [item["id"] for item in found.json()["items"]]
    assert client.get("/api/residents", params={"q": WANG_PHONE}).json()["total"] == 1
    assert client.get(f"/api/residents/{wang}").status_code == 200
    assert client.get(f"/api/residents/{wang}/sources").status_code == 200
    assert client.get("/fhir/Patient", params={"identifier": WANG_ID}).json()["total"] == 1
    assert client.get(f"/fhir/Patient/{wang}").status_code == 200
    revealed = client.post(
        f"/api/residents/{wang}/reveal", json={"field": "id_number", "reason": f"核对 {WANG_ID}"}
    )
    assert revealed.json()["value"] == WANG_ID
    mistyped = client.post(f"/api/residents/{wang}/reveal", json={"field": WANG_PHONE, "reason": "x"})
    assert mistyped.status_code == 422
    assert client.get(f"/api/residents/{WANG_ID}").status_code == 422  # an ID number where an id belongs
    # then lines were logged (SQL included), and none holds any ID number or phone of the data
    lines = [record.getMessage() for record in caplog.records]
    lines += [record.exc_text or "" for record in caplog.records]
    logged = "\n".join(lines) + caplog.text
    assert any(record.name.startswith("sqlalchemy.engine") for record in caplog.records)
    assert len(caplog.records) > 50
    leaked = sorted(value for value in sample_pii(db) if value in logged)
    assert leaked == []
