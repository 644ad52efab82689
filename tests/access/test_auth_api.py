"""Sign-in over the API: tokens, cookies with CSRF, throttling, sign-out."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.access.conftest import PASSWORD, FakeClock, add_user
from yiyang.access.models import AuthCredential, SignInAttempt
from yiyang.access.tokens import CSRF_HEADER, SESSION_COOKIE
from yiyang.db import Database


def login(client: TestClient, username: str, password: str = PASSWORD, mode: str = "api"):  # type: ignore[no-untyped-def]
    return client.post("/api/auth/login", json={"username": username, "password": password, "client": mode})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_returns_a_bearer_token_that_names_the_actor(client: TestClient, sqlite_db: Database) -> None:
    # given a nurse
    add_user(sqlite_db, "nurse.li")
    # when she signs in as an API client and asks who she is
    response = login(client, "Nurse.Li ")
    token = response.json()["token"]
    me = client.get("/api/auth/me", headers=bearer(token))
    # then the token works and carries her role
    assert response.status_code == 200
    assert token.startswith("yyt_")
    assert me.status_code == 200
    assert me.json()["username"] == "nurse.li"
    assert [grant["role"] for grant in me.json()["roles"]] == ["nurse"]
    assert me.json()["csrf_token"] is None
    # and only a digest of the token is stored
    with sqlite_db.unit_of_work() as session:
        stored = session.scalars(select(AuthCredential.secret_sha256)).all()
    assert token not in stored and len(stored) == 1


def test_wrong_password_is_refused_with_a_code(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "nurse.li")
    response = login(client, "nurse.li", "not-her-password")
    assert response.status_code == 401
    assert response.json()["code"] == "auth.credentials"
    assert "token" not in response.json()


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(client: TestClient) -> None:
    response = login(client, "nobody.here")
    assert response.status_code == 401
    assert response.json()["code"] == "auth.credentials"


def test_requests_without_or_with_a_bad_credential_get_401_codes(client: TestClient) -> None:
    assert client.get("/api/auth/me").json()["code"] == "auth.required"
    invalid = client.get("/api/auth/me", headers=bearer("yyt_" + "A" * 43))
    assert invalid.status_code == 401 and invalid.json()["code"] == "auth.invalid"
    scheme = client.get("/api/auth/me", headers={"Authorization": "Basic bmFtZTpwYXNz"})
    assert scheme.status_code == 401 and scheme.json()["code"] == "auth.scheme"


def test_account_is_throttled_after_n_failures_then_allowed_after_the_window(
    client: TestClient, sqlite_db: Database, clock: FakeClock
) -> None:
    # given three failed sign-ins within the window (the limit is 3 per account)
    add_user(sqlite_db, "doctor.zhao")
    for _ in range(3):
        assert login(client, "doctor.zhao", "guess-guess").status_code == 401
        clock.advance(seconds=10)
    # when even the right password is tried
    refused = login(client, "doctor.zhao")
    # then it is refused with 429 and told when to come back, before the password is checked
    assert refused.status_code == 429
    assert refused.json()["code"] == "auth.throttled"
    assert int(refused.headers["Retry-After"]) == 600 - 30
    with sqlite_db.unit_of_work() as session:
        assert (
            session.scalar(select(func.count()).select_from(SignInAttempt)) == 3
        )  # the refusal is not counted
    # when the oldest failure has left the window
    clock.advance(seconds=600 - 30)
    # then the right password works again
    assert login(client, "doctor.zhao").status_code == 200


def test_success_clears_the_account_count(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "doctor.zhao")
    for _ in range(2):
        login(client, "doctor.zhao", "guess-guess")
    assert login(client, "doctor.zhao").status_code == 200
    for _ in range(2):
        assert login(client, "doctor.zhao", "guess-guess").status_code == 401
    assert login(client, "doctor.zhao").status_code == 200


def test_client_address_is_throttled_across_accounts(client: TestClient, sqlite_db: Database) -> None:
    # given six failures from one address spread over different accounts (limit 6 per client, 3 per account)
    add_user(sqlite_db, "station.sun")
    for number in range(6):
        assert login(client, f"guess.{number}", "guess-guess").status_code == 401
    # when a valid user signs in from that address
    response = login(client, "station.sun")
    # then the address is refused
    assert response.status_code == 429


def test_throttling_holds_across_app_processes(sqlite_db: Database, settings, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    # given two app instances over one database (two processes behind a load balancer)
    from yiyang.app import create_app

    add_user(sqlite_db, "doctor.zhao")
    apps = [create_app(sqlite_db, settings) for _ in range(2)]
    for app in apps:
        app.state.clock = clock
    first, second = TestClient(apps[0]), TestClient(apps[1])
    # when the failures are spread over both
    login(first, "doctor.zhao", "guess-guess")
    login(second, "doctor.zhao", "guess-guess")
    login(first, "doctor.zhao", "guess-guess")
    # then either refuses the next attempt
    assert login(second, "doctor.zhao").status_code == 429


def test_bearer_token_expires(client: TestClient, sqlite_db: Database, clock: FakeClock) -> None:
    add_user(sqlite_db, "nurse.li")
    token = login(client, "nurse.li").json()["token"]
    clock.advance(hours=2, seconds=-1)
    assert client.get("/api/auth/me", headers=bearer(token)).status_code == 200
    clock.advance(seconds=1)
    expired = client.get("/api/auth/me", headers=bearer(token))
    assert expired.status_code == 401 and expired.json()["code"] == "auth.invalid"


def test_logout_revokes_only_that_token(client: TestClient, sqlite_db: Database) -> None:
    # given two tokens for one user (phone and tablet)
    add_user(sqlite_db, "nurse.li")
    phone = login(client, "nurse.li").json()["token"]
    tablet = login(client, "nurse.li").json()["token"]
    # when the phone signs out
    response = client.post("/api/auth/logout", headers=bearer(phone))
    # then the phone's token is dead and the tablet's still works
    assert response.json() == {"revoked": 1}
    assert client.get("/api/auth/me", headers=bearer(phone)).status_code == 401
    assert client.get("/api/auth/me", headers=bearer(tablet)).status_code == 200


def test_logout_all_revokes_every_token_and_session(client: TestClient, sqlite_db: Database) -> None:
    # given a token, another token and a web session for one user, and a colleague's token
    add_user(sqlite_db, "nurse.li")
    add_user(sqlite_db, "nurse.chen")
    first = login(client, "nurse.li").json()["token"]
    second = login(client, "nurse.li").json()["token"]
    web = TestClient(client.app)
    assert login(web, "nurse.li", mode="web").status_code == 200
    colleague = login(client, "nurse.chen").json()["token"]
    # when she signs out everywhere
    response = client.post("/api/auth/logout-all", headers=bearer(first))
    # then all three of hers are revoked and the colleague is untouched
    assert response.json() == {"revoked": 3}
    assert client.get("/api/auth/me", headers=bearer(second)).status_code == 401
    assert web.get("/api/auth/me").status_code == 401
    assert client.get("/api/auth/me", headers=bearer(colleague)).status_code == 200


def test_web_login_sets_an_httponly_lax_cookie(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "nurse.li")
    response = login(client, "nurse.li", mode="web")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert response.json()["token"] is None
    assert response.json()["csrf_token"]
    me = client.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["via"] == "session"
    assert me.json()["csrf_token"] == response.json()["csrf_token"]


def test_cookie_request_without_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, sqlite_db: Database
) -> None:
    # given a web session
    add_user(sqlite_db, "nurse.li")
    csrf = login(client, "nurse.li", mode="web").json()["csrf_token"]
    # when an unsafe request carries the cookie but no CSRF token, or a wrong one
    missing = client.post("/api/auth/logout")
    wrong = client.post("/api/auth/logout", headers={CSRF_HEADER: "0" * 64})
    # then both are refused and the session still works
    assert missing.status_code == 403 and missing.json()["code"] == "auth.csrf"
    assert wrong.status_code == 403
    assert client.get("/api/auth/me").status_code == 200
    # when the right token comes with it
    allowed = client.post("/api/auth/logout", headers={CSRF_HEADER: csrf})
    # then the request goes through and the session is over
    assert allowed.status_code == 200 and allowed.json() == {"revoked": 1}
    assert client.get("/api/auth/me").status_code == 401


def test_bearer_requests_need_no_csrf_token(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "nurse.li")
    token = login(client, "nurse.li").json()["token"]
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 200


def test_a_deactivated_user_is_signed_out(client: TestClient, sqlite_db: Database) -> None:
    from yiyang.access.models import User

    user_id = add_user(sqlite_db, "nurse.li")
    token = login(client, "nurse.li").json()["token"]
    with sqlite_db.unit_of_work() as session:
        session.get(User, user_id).active = False
    assert client.get("/api/auth/me", headers=bearer(token)).json()["code"] == "auth.user_inactive"
    assert login(client, "nurse.li").status_code == 401


def test_odd_input_is_refused_not_a_server_error(client: TestClient, sqlite_db: Database) -> None:
    add_user(sqlite_db, "nurse.li")
    assert login(client, "nurse\x00li").status_code == 401
    assert login(client, "护士\n").status_code == 401
    assert login(client, "nurse.li", "x" * 256).status_code == 401
    login(client, "nurse.li", mode="web")
    odd_csrf = client.post("/api/auth/logout", headers={CSRF_HEADER: "é".encode("latin-1") * 64})
    assert odd_csrf.status_code == 403
    odd_request_id = client.get("/api/auth/me", headers={"X-Request-ID": "a b"})
    assert odd_request_id.status_code == 200
