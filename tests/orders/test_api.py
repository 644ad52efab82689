"""Orders and the time bank over HTTP: codes and messages for refusals, the board hides who until
an order is accepted, the board's forms need the session's CSRF token, and the pages render."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from tests.orders.district import NOW, PASSWORD, District, build, permit_the_social_class
from yiyang.app import create_app
from yiyang.care.orders import service as orders
from yiyang.care.orders.models import OrderStatus, PlacedAs, ServiceOrder
from yiyang.db import Database
from yiyang.geo.models import Organisation, OrganisationKind


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def place(sqlite_db: Database) -> District:
    return build(sqlite_db)


@pytest.fixture
def client(sqlite_db: Database, place: District) -> Iterator[TestClient]:
    app = create_app(sqlite_db)
    app.state.clock = Clock()
    with TestClient(app) as test_client:
        yield test_client


def bearer(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def web_login(client: TestClient, username: str) -> str:
    response = client.post(
        "/api/auth/login", json={"username": username, "password": PASSWORD, "client": "web"}
    )
    assert response.status_code == 200
    return response.json()["csrf_token"]


def register(client: TestClient, admin: dict[str, str], place: District) -> dict[str, int]:
    ids = {}
    for key, org, skills in (
        ("a", place.station_a, ["meal_delivery", "personal_care"]),
        ("b", place.station_b, ["meal_delivery"]),
    ):
        response = client.post(
            "/api/service-providers",
            json={"organisation_id": org, "skills": skills, "coverage_area_ids": [place.street_1]},
            headers=admin,
        )
        assert response.status_code == 201, response.text
        ids[key] = response.json()["id"]
    return ids


def test_the_catalogue_and_a_residents_offers(client: TestClient, place: District) -> None:
    catalogue = client.get("/api/service-catalogue").json()
    assert len(catalogue) == 10 and catalogue[0]["code"] == "meal"
    staff = bearer(client, "officer")
    offers = {
        o["service"]["code"]: o
        for o in client.get(f"/api/residents/{place.elder}/service-offers", headers=staff).json()
    }
    assert (
        offers["meal"]["eligible"]
        and offers["meal"]["subsidy_yuan"] == 15.0
        and offers["meal"]["payable_yuan"] == 0
    )
    assert offers["meal"]["subsidy_basis"] == "tekun"
    assert not offers["respite"]["eligible"]
    assert offers["respite"]["refusals"][0]["code"] == "order.eligibility.status"
    assert client.get(f"/api/residents/{place.elder}/service-offers").status_code == 401


def test_an_order_from_placing_to_rating_over_the_api(client: TestClient, place: District) -> None:
    admin = bearer(client, "admin")
    providers = register(client, admin, place)
    officer = bearer(client, "officer")
    elder = bearer(client, "elder.zhang")
    # the elder orders a meal
    placed = client.post(
        f"/api/residents/{place.elder}/service-orders", json={"service_code": "meal"}, headers=elder
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert (order["status"], order["provider_id"], order["placed_as"]) == (
        "offered",
        providers["a"],
        "resident",
    )
    # station A sees it on its board without knowing who it is for
    staff_a = bearer(client, "staff.a")
    board = client.get("/api/service-board", headers=staff_a).json()
    assert [(i["order_id"], i["resident_id"], i["area_name"]) for i in board] == [
        (order["id"], None, "甲一网格")
    ]
    assert client.get("/api/service-board", headers=bearer(client, "staff.b")).json() == []
    # station B may not take it; station A does
    refused = client.post(f"/api/service-orders/{order['id']}/accept", headers=bearer(client, "staff.b"))
    assert refused.status_code == 403 and refused.json()["code"] == "order.not_provider"
    accepted = client.post(f"/api/service-orders/{order['id']}/accept", headers=staff_a)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert client.get("/api/service-board", headers=staff_a).json()[0]["resident_id"] == place.elder
    # proof is required to complete
    bad = client.post(
        f"/api/service-orders/{order['id']}/complete", json={"minutes_on_site": 0}, headers=staff_a
    )
    assert bad.status_code == 422
    # nor may the time on site be longer than the time since the order was taken
    early = client.post(
        f"/api/service-orders/{order['id']}/complete", json={"minutes_on_site": 25, "note": "送餐到家"},
        headers=staff_a,
    )  # fmt: skip
    assert early.status_code == 422 and early.json()["code"] == "order.proof.minutes"
    client.app.state.clock.now += dt.timedelta(minutes=40)  # type: ignore[attr-defined]
    done = client.post(
        f"/api/service-orders/{order['id']}/complete",
        json={"minutes_on_site": 25, "note": "送餐到家", "photo_ref": "photo:0001"},
        headers=staff_a,
    )
    assert done.status_code == 200 and done.json()["status"] == "completed"
    rated = client.post(f"/api/service-orders/{order['id']}/rate", json={"rating": 5}, headers=elder)
    assert rated.status_code == 200 and rated.json()["rating"] == 5
    again = client.post(f"/api/service-orders/{order['id']}/rate", json={"rating": 1}, headers=elder)
    assert again.status_code == 409 and again.json()["code"] == "order.rating.exists"
    history = client.get(f"/api/service-orders/{order['id']}/history", headers=officer).json()
    assert [h["event"] for h in history] == ["placed", "offered", "accepted", "completed", "rated"]
    listing = client.get("/api/service-orders", params={"status": "completed"}, headers=officer).json()
    assert listing["total"] == 1


def test_refusals_are_4xx_with_codes_and_write_nothing(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    admin = bearer(client, "admin")
    register(client, admin, place)
    officer = bearer(client, "officer")  # a civil-affairs officer over the district orders for elders
    young = client.post(
        f"/api/residents/{place.younger}/service-orders", json={"service_code": "meal"}, headers=officer
    )
    assert young.status_code == 422 and young.json()["code"] == "order.eligibility.age"
    assert "不符合" in young.json()["message"] and "not eligible" in young.json()["message"]
    unknown = client.post(
        f"/api/residents/{place.elder}/service-orders", json={"service_code": "spa"}, headers=officer
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "order.service.unknown"
    stranger = bearer(client, "stranger")
    refused = client.post(
        f"/api/residents/{place.elder}/service-orders", json={"service_code": "meal"}, headers=stranger
    )
    assert refused.status_code == 403
    naive = client.post(
        f"/api/residents/{place.elder}/service-orders",
        json={"service_code": "meal", "requested_for": "2026-11-24T10:00:00"},
        headers=officer,
    )
    assert naive.status_code == 422 and naive.json()["code"] == "request.invalid"
    past = client.post(
        f"/api/residents/{place.elder}/service-orders",
        json={"service_code": "meal", "requested_for": "2026-11-23T10:00:00+08:00"},
        headers=officer,
    )
    assert past.status_code == 422 and past.json()["code"] == "order.requested_for.past"
    only_admin = client.post("/api/service-orders/sweep", headers=bearer(client, "staff.a"))
    assert only_admin.status_code == 403
    with sqlite_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(ServiceOrder)) == 0


def test_the_board_page_takes_orders_only_with_the_csrf_token(client: TestClient, place: District) -> None:
    admin = bearer(client, "admin")
    register(client, admin, place)
    officer = bearer(client, "officer")  # a civil-affairs officer over the district orders for elders
    placed = client.post(
        f"/api/residents/{place.elder}/service-orders", json={"service_code": "meal"}, headers=officer
    )
    order_id = placed.json()["id"]
    csrf = web_login(client, "staff.a")
    page = client.get("/orders/board")
    assert page.status_code == 200
    assert "接单看板" in page.text and f"#{order_id}" in page.text and "张老" not in page.text
    assert f'value="{csrf}"' in page.text
    # a forged form without the token is refused and changes nothing
    forged = client.post(f"/orders/{order_id}/accept", data={}, follow_redirects=False)
    assert forged.status_code == 403 and forged.json()["code"] == "auth.csrf"
    assert client.get(f"/api/service-orders/{order_id}", headers=officer).json()["status"] == "offered"
    # the real form works and comes back to the board
    taken = client.post(f"/orders/{order_id}/accept", data={"csrf_token": csrf}, follow_redirects=False)
    assert taken.status_code == 303 and taken.headers["location"].startswith("/orders/board")
    assert client.get(f"/api/service-orders/{order_id}", headers=officer).json()["status"] == "accepted"
    english = client.get("/orders/board?lang=en")
    assert "Being served" in english.text
    # while serving, the station sees whom the order is for
    order_page = client.get(f"/orders/{order_id}")
    assert order_page.status_code == 200 and "张老" in order_page.text and "<svg" not in order_page.text
    client.app.state.clock.now += dt.timedelta(minutes=30)  # type: ignore[attr-defined]
    done = client.post(
        f"/orders/{order_id}/complete",
        data={"csrf_token": csrf, "minutes_on_site": "30", "note": "ok"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    # once done, the station's scope over the resident has ended: the order page is refused
    assert client.get(f"/orders/{order_id}").status_code == 403
    listing = client.get("/orders")
    assert listing.status_code == 200 and "<svg" in listing.text


def test_a_second_staff_member_cannot_take_an_order_from_the_board_twice(
    client: TestClient, place: District
) -> None:
    admin = bearer(client, "admin")
    register(client, admin, place)
    officer = bearer(client, "officer")  # a civil-affairs officer over the district orders for elders
    order_id = client.post(
        f"/api/residents/{place.elder}/service-orders", json={"service_code": "meal"}, headers=officer
    ).json()["id"]
    csrf = web_login(client, "staff.a")
    assert (
        client.post(
            f"/orders/{order_id}/accept", data={"csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    second = client.post(f"/orders/{order_id}/accept", data={"csrf_token": csrf}, follow_redirects=False)
    assert second.status_code == 409 and "accepted" in second.text


def test_a_volunteer_keeps_a_profile_spends_and_donates_and_sees_their_hours(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    volunteer = bearer(client, "volunteer.1")
    saved = client.put(
        f"/api/timebank/volunteers/{place.volunteer_1}/profile",
        json={"area_id": place.community_1, "skills": ["escort"], "availability": ["tue.am"]},
        headers=volunteer,
    )
    assert saved.status_code == 200, saved.text
    bad_slot = client.put(
        f"/api/timebank/volunteers/{place.volunteer_1}/profile",
        json={"area_id": place.community_1, "availability": ["someday"]},
        headers=volunteer,
    )
    assert bad_slot.status_code == 422
    # pairing by a civil-affairs officer, then the volunteer sees it (the elder lets volunteers see them)
    permit_the_social_class(sqlite_db, place.elder)
    staff = bearer(client, "officer")
    pairing = client.post(
        "/api/timebank/pairings",
        json={"volunteer_user_id": place.volunteer_1, "resident_id": place.elder},
        headers=staff,
    )
    assert pairing.status_code == 201, pairing.text
    # nothing earned yet: spending is refused with the balance, donating too
    broke = client.post("/api/timebank/spend", json={"minutes": 30, "key": "r1"}, headers=volunteer)
    assert broke.status_code == 422 and broke.json()["code"] == "timebank.balance.insufficient"
    me = client.get("/api/timebank/me", headers=volunteer).json()
    assert me["balance_minutes"] == 0 and [p["resident_id"] for p in me["pairings"]] == [place.elder]
    page = client.get("/timebank/me", headers=volunteer)
    assert page.status_code == 200 and "张老" in page.text and "<svg" in page.text
    not_volunteer = client.get("/api/timebank/me", headers=staff)
    assert not_volunteer.status_code == 403
    ended = client.post(
        f"/api/timebank/pairings/{pairing.json()['id']}/end", json={"reason": "结束"}, headers=staff
    )
    assert ended.status_code == 200 and ended.json()["ended_at"] is not None


def test_an_order_earns_hours_over_the_api_and_a_retried_spend_posts_once(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    volunteer = bearer(client, "volunteer.2")
    client.put(
        f"/api/timebank/volunteers/{place.volunteer_2}/profile",
        json={"area_id": place.community_1, "skills": ["errand"]},
        headers=volunteer,
    )
    permit_the_social_class(sqlite_db, place.elder)
    family = bearer(client, "family.zhang")
    order = client.post(
        f"/api/residents/{place.elder}/service-orders",
        json={"service_code": "medicine_pickup"},
        headers=family,
    ).json()
    assert order["placed_as"] == "family"
    assert client.post(f"/api/service-orders/{order['id']}/accept", headers=volunteer).status_code == 200
    client.app.state.clock.now += dt.timedelta(minutes=90)  # type: ignore[attr-defined]
    client.post(
        f"/api/service-orders/{order['id']}/complete",
        json={"minutes_on_site": 90, "note": "取药送达"},
        headers=volunteer,
    )
    assert client.get("/api/timebank/me", headers=volunteer).json()["earned_minutes"] == 90
    first = client.post(
        "/api/timebank/spend", json={"minutes": 60, "key": "retry-1"}, headers=volunteer
    ).json()
    retry = client.post(
        "/api/timebank/spend", json={"minutes": 60, "key": "retry-1"}, headers=volunteer
    ).json()
    assert (first["replayed"], retry["replayed"]) == (False, True)
    assert retry["transaction_id"] == first["transaction_id"] and retry["balance_minutes"] == 30
    donated = client.post(
        "/api/timebank/donate", json={"minutes": 30, "key": "gift-1"}, headers=volunteer
    ).json()
    assert donated["balance_minutes"] == 0


def test_only_an_administrator_runs_the_expiry_sweep(client: TestClient, place: District) -> None:
    assert client.post("/api/timebank/expire", json={}, headers=bearer(client, "staff.a")).status_code == 403
    response = client.post(
        "/api/timebank/expire", json={"validity_days": 365}, headers=bearer(client, "admin")
    )
    assert response.status_code == 200 and response.json() == {"expired_minutes": 0}


def test_the_pages_show_times_in_china_time(client: TestClient, place: District) -> None:
    # given a meal ordered at 10:00 China time (02:00 UTC) for 15:00 China time
    register(client, bearer(client, "admin"), place)
    officer = bearer(client, "officer")
    placed = client.post(
        f"/api/residents/{place.elder}/service-orders",
        json={"service_code": "meal", "requested_for": "2026-11-24T15:00:00+08:00"},
        headers=officer,
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    # when the station opens its board
    web_login(client, "staff.a")
    board = client.get("/orders/board").text
    # then it reads the time the elder asked for and when the offer lapses (10:30) as a clock here
    # reads them, not in UTC (07:00, 02:30), which would send the meal at the wrong hour
    assert "2026-11-24 15:00" in board and "07:00" not in board
    assert "10:30" in board and "02:30" not in board
    # and so does the officer's order page and list
    web_login(client, "officer")
    page = client.get(f"/orders/{order_id}").text
    assert "2026-11-24 15:00" in page and "2026-11-24 10:00" in page  # requested; placed (history)
    assert "2026-11-24 07:00" not in page and "2026-11-24 02:00" not in page
    listing = client.get("/orders").text
    assert "2026-11-24 15:00" in listing and "2026-11-24 10:00" in listing


def test_the_order_list_pages_through_a_district_of_orders(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    # given 130 orders of an elder in the officer's district
    with sqlite_db.unit_of_work() as session:
        session.add_all(
            ServiceOrder(
                resident_id=place.elder, service_code="meal", status=OrderStatus.unassigned,
                placed_as=PlacedAs.staff, area_id=place.grid_1a, price_cents=1500, subsidy_cents=1500,
                created_at=NOW, updated_at=NOW,
            )
            for _ in range(130)
        )  # fmt: skip
        session.flush()
        first = session.scalar(select(func.min(ServiceOrder.id)))
    web_login(client, "officer")
    # when the officer opens the list, it says how many there are and that there is a next page
    page_1 = client.get("/orders")
    assert page_1.status_code == 200
    assert "共 130 单" in page_1.text and "1 / 2" in page_1.text and "page=2" in page_1.text
    assert f">#{first}<" not in page_1.text
    # then the second page shows the oldest ones, which the first could not reach
    page_2 = client.get("/orders", params={"page": 2, "status": "unassigned"})
    assert page_2.status_code == 200
    assert "2 / 2" in page_2.text and f">#{first}<" in page_2.text
    assert "status=unassigned" in page_2.text  # the pager keeps the filter
    assert client.get("/orders", params={"page": 0}).status_code == 422


def test_the_provider_list_reads_the_organisations_in_one_query(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    # given forty stations registered as providers
    with sqlite_db.unit_of_work() as session:
        for number in range(40):
            station = Organisation(
                code=f"ST-{number}", name=f"第{number}养老驿站", kind=OrganisationKind.elderly_care_station,
                area_id=place.community_1,
            )  # fmt: skip
            session.add(station)
            session.flush()
            orders.register_provider(session, orders.ProviderRequest(station.id, ("meal_delivery",), ()), NOW)
    admin = bearer(client, "admin")
    # when the administrator lists them
    statements: list[str] = []

    def seen(*execution: object) -> None:  # connection, cursor, statement, ...
        statements.append(str(execution[2]))

    event.listen(sqlite_db.engine, "before_cursor_execute", seen)
    try:
        listing = client.get("/api/service-providers", params={"limit": 100}, headers=admin)
    finally:
        event.remove(sqlite_db.engine, "before_cursor_execute", seen)
    # then every provider has its name, and the organisations were read once, not once each
    assert listing.status_code == 200
    assert {p["name"] for p in listing.json()} >= {f"第{n}养老驿站" for n in range(40)}
    assert sum("FROM organisation" in s for s in statements) == 1
