"""An address no route serves, or a page asked with a method it does not take, answers a browser with
the site's error page; a script (no text/html in Accept), the JSON API, FHIR and /static keep their
bodies exactly as before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from yiyang.app import create_app
from yiyang.db import Database

from ..signed_in import sign_in_as_clinician
from .test_error_pages import BROWSER, is_error_page


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_db), raise_server_exceptions=False) as client:
        sign_in_as_clinician(client, sqlite_db)
        yield client


@pytest.mark.parametrize("url", ["/residentz", "/admin/userz", "/residents/1/nowhere"])
def test_an_address_no_route_serves_is_a_404_page_for_a_browser(client: TestClient, url: str) -> None:
    # when a browser asks an address no page has
    response = client.get(url, headers=BROWSER)
    # then it gets the site's not-found page with a way back, not JSON
    assert is_error_page(response, 404), response.text
    assert "未找到" in response.text and "← 返回" in response.text


def test_the_404_page_speaks_english_on_request(client: TestClient) -> None:
    response = client.get("/residentz?lang=en", headers=BROWSER)
    assert is_error_page(response, 404)
    assert "Not found" in response.text and "Back" in response.text


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html;q=0"])
def test_an_unknown_address_for_a_script_keeps_the_json_404(client: TestClient, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.get("/residentz", headers=headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize("url", ["/api/residentz", "/api", "/static/nothing.css", "/static"])
def test_unknown_addresses_under_the_api_and_static_keep_their_json_404(client: TestClient, url: str) -> None:
    # even a browser gets the JSON the API and the static files always gave
    response = client.get(url, headers=BROWSER)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_fhir_keeps_its_own_operation_outcome_for_unknown_addresses(client: TestClient) -> None:
    response = client.get("/fhir/Nothing", headers=BROWSER)
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_wrong_method_on_a_page_is_a_405_page_for_a_browser(client: TestClient) -> None:
    # when a browser posts to a page that only shows
    response = client.post("/residents", headers=BROWSER)
    # then it gets a page saying so, and the methods the page takes
    assert is_error_page(response, 405), response.text
    assert "GET" in response.headers["allow"]


def test_a_wrong_method_elsewhere_keeps_the_json_405(client: TestClient) -> None:
    script = client.post("/residents", headers={"Accept": "*/*"})
    assert script.status_code == 405 and script.json() == {"detail": "Method Not Allowed"}
    assert "GET" in script.headers["allow"]
    api = client.delete("/healthz", headers=BROWSER)  # an API route, in the schema
    assert api.status_code == 405 and api.json() == {"detail": "Method Not Allowed"}
