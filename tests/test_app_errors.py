"""The app's error handlers answer with JSON whatever an error carries; a handler never 500s itself."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from yiyang.app import create_app
from yiyang.db import Database
from yiyang.errors import Invalid

LONE = "\ud800"  # a lone surrogate: a str may hold it, no UTF-8 can carry it


@pytest.fixture
def app(sqlite_db: Database) -> FastAPI:
    app = create_app(sqlite_db)

    @app.post("/__test/invalid")
    def refuse(body: dict[str, object]) -> None:
        detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
        raise Invalid("test.invalid", f"无效{body.get('text', '')} (invalid)", **detail)  # type: ignore[arg-type]

    @app.get("/__test/odd-detail")
    def odd_detail() -> None:
        raise Invalid("test.odd", "无效 (invalid)", at=dt.date(2026, 11, 24), ratio=float("nan"), ids={3})

    @app.get("/__test/validation")
    def invalid_at_odd_place() -> None:
        # pydantic makes its own locations printable; code that raises the error itself may not
        raise RequestValidationError(
            [{"loc": ("body", LONE), "type": "value_error", "msg": f"bad {LONE}", "input": "secret"}]
        )

    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # a handler that fails would surface as a 500 here, not as an exception in the test
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def post_raw(client: TestClient, url: str, body: object):  # type: ignore[no-untyped-def]
    """Send JSON with \\u escapes, as a client may, so lone surrogates reach the server."""
    return client.post(
        url,
        content=json.dumps(body, ensure_ascii=True).encode(),
        headers={"Content-Type": "application/json"},
    )


def test_a_domain_error_with_a_lone_surrogate_in_message_and_detail_is_still_its_4xx(
    client: TestClient,
) -> None:
    # given a service error whose message, detail key and detail values hold a lone surrogate
    body = {"text": LONE, "detail": {"item": LONE, f"k{LONE}": [LONE, {"x": f"a{LONE}b"}]}}
    # when the app renders it
    response = post_raw(client, "/__test/invalid", body)
    # then the client gets the error's own status and code, with the surrogates replaced
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["code"] == "test.invalid"
    assert answer["message"] == "无效\ufffd (invalid)"
    assert answer["detail"] == {"item": "\ufffd", "k\ufffd": ["\ufffd", {"x": "a\ufffdb"}]}


def test_a_domain_error_with_values_json_cannot_hold_is_still_its_4xx(client: TestClient) -> None:
    # given an error whose detail holds a date, a NaN and a set
    response = client.get("/__test/odd-detail")
    # then it is still the error's 422, each value written as plain JSON
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "test.odd"
    assert response.json()["detail"] == {"at": "2026-11-24", "ratio": None, "ids": [3]}


def test_a_validation_error_at_a_lone_surrogate_key_is_a_422_not_a_500(client: TestClient) -> None:
    # given a validation error whose location and text hold a lone surrogate
    response = client.get("/__test/validation")
    # then it is the usual request.invalid, naming where, made printable
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["code"] == "request.invalid"
    assert answer["detail"] == [{"loc": ["body", "\ufffd"], "type": "value_error", "msg": "bad \ufffd"}]
    assert "secret" not in response.text  # the input itself is never repeated
