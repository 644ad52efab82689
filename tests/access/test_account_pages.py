"""The account pages: an administrator keeps accounts in the browser; anyone changes their own
password there. Every form carries the session's CSRF token."""

from __future__ import annotations

from fastapi.testclient import TestClient

from yiyang.access.roles import Role
from yiyang.db import Database

from .conftest import PASSWORD, Place, add_user
from .test_web_sign_in import csrf_in

NEW_PASSWORD = "another-long-secret"


def _sign_in(client: TestClient, username: str, password: str = PASSWORD) -> None:
    signed = client.post("/login", data={"username": username, "password": password}, follow_redirects=False)
    assert signed.status_code == 303, signed.text


def test_an_administrator_keeps_accounts_from_the_browser(
    client: TestClient, sqlite_db: Database, place: Place
) -> None:
    add_user(sqlite_db, "li.admin", Role.district_admin)
    _sign_in(client, "li.admin")
    listing = client.get("/admin/users")
    assert listing.status_code == 200 and "li.admin" in listing.text and "账号管理" in listing.text
    token = csrf_in(listing.text)
    assert 'href="/admin/users"' in client.get("/residents").text  # the bar offers it to administrators

    # a grid worker needs an area: the form says so and nothing is created
    missing = client.post(
        "/admin/users",
        data={"csrf_token": token, "username": "grid.he", "password": PASSWORD, "role": "grid_worker"},
    )
    assert missing.status_code == 422 and "须指定辖区" in missing.text
    assert "grid.he" not in client.get("/admin/users").text
    unknown = client.post(
        "/admin/users",
        data={"csrf_token": token, "username": "grid.he", "password": PASSWORD, "role": "grid_worker",
              "area_code": "NO-SUCH-AREA"},
    )  # fmt: skip
    assert unknown.status_code == 404 and "NO-SUCH-AREA" in unknown.text

    created = client.post(
        "/admin/users",
        data={"csrf_token": token, "username": "grid.he", "display_name": "何网格", "password": PASSWORD,
              "role": "grid_worker", "area_code": "110108-G01"},
        follow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 303
    detail = client.get(created.headers["location"])
    assert detail.status_code == 200 and "何网格" in detail.text and "第一网格 (110108-G01)" in detail.text
    assert "账号已创建" in detail.text
    user_path = created.headers["location"].split("?")[0]

    stopped = client.post(f"{user_path}/deactivate", data={"csrf_token": token})
    assert stopped.status_code == 200 and "账号已停用" in stopped.text and "重新启用" in stopped.text
    worker = TestClient(client.app)
    refused = worker.post(
        "/login", data={"username": "grid.he", "password": PASSWORD}, follow_redirects=False
    )
    assert refused.status_code == 401
    client.post(f"{user_path}/reactivate", data={"csrf_token": token})
    reset = client.post(f"{user_path}/password", data={"csrf_token": token, "password": NEW_PASSWORD})
    assert "密码已重置" in reset.text
    _sign_in(worker, "grid.he", NEW_PASSWORD)
    # a grid worker sees no account administration, and is refused it
    assert "/admin/users" not in worker.get("/residents").text
    assert worker.get("/admin/users").status_code == 403
    # without the token, a change is refused
    assert client.post(f"{user_path}/deactivate", follow_redirects=False).status_code == 403


def test_a_person_changes_their_own_password_in_the_browser(
    client: TestClient, sqlite_db: Database, place: Place
) -> None:
    add_user(sqlite_db, "nurse.wu", Role.nurse, organisation_id=place.centre_id)
    _sign_in(client, "nurse.wu")
    form = client.get("/account/password")
    assert form.status_code == 200 and 'name="current_password"' in form.text
    token = csrf_in(form.text)
    differ = client.post(
        "/account/password",
        data={"csrf_token": token, "current_password": PASSWORD, "new_password": NEW_PASSWORD,
              "repeated": NEW_PASSWORD + "x"},
    )  # fmt: skip
    assert differ.status_code == 422 and "不一致" in differ.text
    wrong = client.post(
        "/account/password",
        data={"csrf_token": token, "current_password": "not-my-password", "new_password": NEW_PASSWORD,
              "repeated": NEW_PASSWORD},
    )  # fmt: skip
    assert wrong.status_code == 403 and "当前密码错误" in wrong.text
    changed = client.post(
        "/account/password",
        data={"csrf_token": token, "current_password": PASSWORD, "new_password": NEW_PASSWORD,
              "repeated": NEW_PASSWORD},
    )  # fmt: skip
    assert changed.status_code == 200 and "密码已修改" in changed.text  # still signed in here
    other = TestClient(client.app)
    assert other.post("/login", data={"username": "nurse.wu", "password": PASSWORD}).status_code == 401
    _sign_in(other, "nurse.wu", NEW_PASSWORD)
