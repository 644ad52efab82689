"""A staff page's error is a page in the site's layout (zh-CN first, English on request), with the
error's message, a way back and its own status; the JSON API and FHIR keep their JSON bodies."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from yiyang.app import create_app
from yiyang.db import Database
from yiyang.errors import Conflict

from ..access.conftest import PASSWORD, add_user
from ..signed_in import sign_in_as_clinician

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
LONE = "\ud800"  # a lone surrogate: a str may hold it, no UTF-8 can carry it


@pytest.fixture
def app(sqlite_db: Database) -> FastAPI:
    app = create_app(sqlite_db)

    @app.get("/__test/page-conflict", include_in_schema=False)
    def page_conflict() -> None:
        raise Conflict("test.conflict", f"已被他人处理{LONE} (taken meanwhile)", headers={"Retry-After": "5"})

    @app.get("/__test/page-crash", include_in_schema=False)
    def page_crash() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
def client(app: FastAPI, sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        sign_in_as_clinician(client, sqlite_db)
        yield client


def is_error_page(response, status_code: int) -> bool:  # type: ignore[no-untyped-def]
    return (
        response.status_code == status_code
        and response.headers["content-type"].startswith("text/html")
        and '<header class="bar">' in response.text  # the site's layout, with its navigation
        and '"code"' not in response.text
    )


@pytest.mark.parametrize("url", ["/residents?page=0", "/residents/abc", "/alerts?page=-1", "/orders?page=0"])
def test_a_bad_value_on_a_page_is_a_422_page_not_json(client: TestClient, url: str) -> None:
    # when a browser asks a staff page with a value it cannot take
    response = client.get(url, headers=BROWSER)
    # then it gets an HTML page with the message, the parameter at fault and a link back
    assert is_error_page(response, 422), response.text
    assert "请求参数无效 (invalid request)" in response.text
    assert "无法完成操作" in response.text and "返回" in response.text
    assert re.search(r'<a href="/[^"]*">← 返回</a>', response.text)
    assert ("page" if "page" in url else "resident_id") in response.text


def test_the_error_page_speaks_english_on_request(client: TestClient) -> None:
    response = client.get("/residents?page=0&lang=en", headers=BROWSER)
    assert is_error_page(response, 422)
    assert "That could not be done" in response.text and "Back" in response.text


def test_the_way_back_is_the_page_the_person_came_from_on_this_site(client: TestClient) -> None:
    came = client.get(
        "/residents?page=0", headers={**BROWSER, "Referer": "http://testserver/alerts?state=open"}
    )
    assert '<a href="/alerts?state=open">' in came.text
    elsewhere = client.get("/residents?page=0", headers={**BROWSER, "Referer": "https://evil.example/x"})
    assert "evil.example" not in elsewhere.text and '<a href="/residents">' in elsewhere.text


def test_a_domain_error_in_a_page_keeps_its_status_and_headers(client: TestClient) -> None:
    # given a page whose service refuses with a Conflict (its message holding a lone surrogate)
    response = client.get("/__test/page-conflict", headers=BROWSER)
    # then it is the Conflict's 409 as a page, with its Retry-After, never a 500
    assert is_error_page(response, 409), response.text
    assert "已被他人处理\ufffd (taken meanwhile)" in response.text
    assert response.headers["retry-after"] == "5"


def test_an_unexpected_error_in_a_page_is_a_500_page(client: TestClient) -> None:
    response = client.get("/__test/page-crash", headers=BROWSER)
    assert is_error_page(response, 500)
    assert "服务器内部错误 (internal error)" in response.text and "a bug" not in response.text


def test_the_api_and_fhir_keep_their_json_even_for_a_browser(client: TestClient) -> None:
    for url in ("/api/residents/abc", "/fhir/Patient/abc", "/api/alerts?limit=0"):
        response = client.get(url, headers=BROWSER)
        # FHIR answers an OperationOutcome (application/fhir+json), the API its {"code", "message"}
        assert "json" in response.headers["content-type"] and response.json(), url
        assert 400 <= response.status_code < 500 and '<header class="bar">' not in response.text, url


def test_a_client_not_asking_for_html_keeps_the_json_body(client: TestClient) -> None:
    # scripts and tools (Accept */* or JSON) get the body they always got
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "text/html;q=0, application/json"}):
        response = client.get("/residents?page=0", headers=headers)
        assert response.status_code == 422 and response.json()["code"] == "request.invalid"
    assert client.get("/__test/page-conflict").json()["code"] == "test.conflict"


def test_a_signed_out_browser_is_still_sent_to_sign_in(sqlite_db: Database) -> None:
    with TestClient(create_app(sqlite_db)) as client:
        away = client.get("/residents?page=0", headers=BROWSER, follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"].startswith("/login?next=/residents")


def test_a_form_without_its_csrf_token_is_refused_with_a_403_page(sqlite_db: Database) -> None:
    add_user(sqlite_db, "zhao.nurse")
    with TestClient(create_app(sqlite_db)) as client:
        signed = client.post(
            "/login", data={"username": "zhao.nurse", "password": PASSWORD}, follow_redirects=False
        )
        assert signed.status_code == 303
        refused = client.post("/logout", headers=BROWSER, follow_redirects=False)
        assert is_error_page(refused, 403), refused.text
        assert "无权访问" in refused.text
