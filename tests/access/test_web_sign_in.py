"""The staff web: a sign-in page opening a cookie session, forms carrying the CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from yiyang.access.roles import Role
from yiyang.access.tokens import SESSION_COOKIE
from yiyang.db import Database

from .conftest import PASSWORD, Place, add_user


def csrf_in(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


def test_pages_send_a_stranger_to_sign_in_and_back(
    client: TestClient, sqlite_db: Database, place: Place
) -> None:
    add_user(sqlite_db, "chen.officer", Role.health_officer, area_id=place.district_id)
    # given nobody signed in, a page redirects to the sign-in form, remembering where it was
    away = client.get("/residents?q=wang", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/login?next=/residents%3Fq%3Dwang"
    form = client.get("/login", params={"next": "/residents?q=wang"})
    assert form.status_code == 200 and 'name="password"' in form.text
    # a wrong password is refused on the form, without a session
    wrong = client.post("/login", data={"username": "chen.officer", "password": "not-the-one"})
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.cookies
    # the right one opens a session and goes back
    signed = client.post(
        "/login", data={"username": "chen.officer", "password": PASSWORD, "next": "/residents?q=wang"},
        follow_redirects=False,
    )  # fmt: skip
    assert signed.status_code == 303 and signed.headers["location"] == "/residents?q=wang"
    page = client.get("/residents")
    assert (
        page.status_code == 200 and "王秀英" not in page.text
    )  # the resident lives in no grid of the district
    token = csrf_in(page.text)
    # a form without the token is refused; with it, sign-out works and the cookie stops working
    assert client.post("/logout", follow_redirects=False).status_code == 403
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/residents", follow_redirects=False).status_code == 303


def test_sign_in_never_redirects_off_site(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "li.admin", Role.district_admin)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        signed = client.post(
            "/login",
            data={"username": "li.admin", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert signed.headers["location"] == "/residents"


def test_sign_in_form_is_throttled_with_retry_after(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "zhao.nurse", Role.nurse)
    for _ in range(3):
        assert (
            client.post("/login", data={"username": "zhao.nurse", "password": "wrong-password"}).status_code
            == 401
        )
    throttled = client.post("/login", data={"username": "zhao.nurse", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    api = client.post("/api/auth/login", json={"username": "zhao.nurse", "password": PASSWORD})
    assert api.status_code == 429 and api.headers["retry-after"] == throttled.headers["retry-after"]
    assert api.json()["code"] == "auth.throttled"


def test_a_refused_clinician_breaks_the_glass_from_the_page(
    client: TestClient, sqlite_db: Database, place: Place
) -> None:
    # given a nurse of a team with no contract for the resident, signed in on the web
    from yiyang.geo.models import Organisation, OrganisationKind

    with sqlite_db.unit_of_work() as session:
        team = Organisation(
            code="T9", name="团队", kind=OrganisationKind.family_doctor_team, area_id=place.district_id
        )
        session.add(team)
        session.flush()
        team_id = team.id
    add_user(sqlite_db, "sun.nurse", Role.nurse, organisation_id=team_id)
    client.post("/login", data={"username": "sun.nurse", "password": PASSWORD})
    # when she opens the resident's page she is refused, and offered break-the-glass
    refused = client.get(f"/residents/{place.resident_id}")
    assert refused.status_code == 403 and "王秀英" not in refused.text
    assert f'action="/residents/{place.resident_id}/break-glass"' in refused.text
    # then with a reason (and the form's CSRF token) the record opens
    opened = client.post(
        f"/residents/{place.resident_id}/break-glass",
        data={"reason": "独居老人跌倒报警，需查看病史", "csrf_token": csrf_in(refused.text)},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    page = client.get(f"/residents/{place.resident_id}")
    assert page.status_code == 200 and "王秀英" in page.text
