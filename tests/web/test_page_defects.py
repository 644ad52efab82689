"""Staff pages as a clinic's staff meet them: forms keep what was typed, the language chosen stays
chosen (and keeps the page's query), ages and times are China's, lists page through all they count."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from yiyang.access import service as access
from yiyang.access.models import RelationshipKind, ResidentRelationship
from yiyang.access.roles import Role
from yiyang.alerts.models import Alert, AlertState
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.residents import service as residents
from yiyang.residents.models import LinkMethod, LinkReview, Resident, SourceRecord
from yiyang.sources.models import Feed, ImportRun, RunStatus

from ..access.world import World, build_world
from ..signed_in import bearer_for

PASSWORD = "correct-horse-battery"
# 20:00 UTC on 1 June is already 04:00 on 2 June in China.
LATE_EVENING_UTC = dt.datetime(2031, 6, 1, 20, 0, tzinfo=dt.UTC)


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return build_world(sqlite_db)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as client:
        yield client


def admin_everywhere(world: World) -> dict[str, str]:
    """A district administrator with no area: the whole deployment's accounts and registry."""
    with world.database.unit_of_work() as session:
        admin = access.create_user(session, "admin-everywhere")
        access.grant_role(session, admin, Role.district_admin)
        admin_id = admin.id
    return bearer_for(world.database, admin_id)


def _english_link(page: str) -> str:
    return unescape(re.search(r'<a href="([^"]*)"[^>]*>English</a>', page).group(1))


def _input_value(page: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page) or re.search(
        rf'<input[^>]*value="([^"]*)"[^>]*name="{name}"', page
    )
    return unescape(match.group(1)) if match else None


# -- forms keep what was typed ------------------------------------------------------------------


def test_a_failed_sign_in_keeps_the_user_name_but_not_the_password(world: World, client: TestClient) -> None:
    with world.database.unit_of_work() as session:
        access.create_user(session, "chen.nurse", password=PASSWORD)
    # when a nurse mistypes her password
    page = client.post("/login", data={"username": "chen.nurse", "password": "wrong-password-1"})
    # then the form comes back with her user name filled in, the password empty
    assert page.status_code == 401
    assert _input_value(page.text, "username") == "chen.nurse"
    assert "wrong-password-1" not in page.text


def test_an_account_form_with_a_problem_keeps_what_the_administrator_typed(
    world: World, client: TestClient
) -> None:
    # given the district administrator filling in a new grid worker with a mistyped area code
    form = {
        "username": "grid.he", "display_name": "何<网格>", "password": PASSWORD, "role": "grid_worker",
        "area_code": "NO-SUCH-AREA", "organisation_code": "",
    }  # fmt: skip
    page = client.post("/admin/users", data=form, headers=world.headers[Role.district_admin.value])
    # then the page names the problem and the form still holds every field but the password
    assert page.status_code == 404 and "NO-SUCH-AREA" in page.text
    create = page.text[page.text.index('action="/admin/users"') :]
    assert _input_value(create, "username") == "grid.he"
    assert _input_value(create, "display_name") == "何<网格>" and "何<网格>" not in page.text  # escaped
    assert _input_value(create, "area_code") == "NO-SUCH-AREA"
    assert re.search(r'<option value="grid_worker" selected>', create)
    assert PASSWORD not in page.text


def test_a_grant_form_with_a_problem_keeps_what_the_administrator_typed(
    world: World, client: TestClient
) -> None:
    headers = world.headers[Role.district_admin.value]
    user_id = world.users[Role.nurse.value]
    page = client.post(
        f"/admin/users/{user_id}/roles",
        data={"role": "grid_worker", "area_code": "NO-SUCH-GRID", "organisation_code": ""},
        headers=headers,
    )
    assert page.status_code == 404
    grant = page.text[page.text.index(f'action="/admin/users/{user_id}/roles"') :]
    assert _input_value(grant, "area_code") == "NO-SUCH-GRID"
    assert re.search(r'<option value="grid_worker" selected>', grant)


# -- the language chosen ------------------------------------------------------------------------


def test_the_overdue_chart_follows_the_remembered_language(world: World, client: TestClient) -> None:
    headers = world.headers[Role.family_doctor.value]
    # given a doctor who chose English on another page
    client.get("/care/my-work", params={"lang": "en"}, headers=headers)
    assert client.cookies.get("lang") == "en"
    # when she opens the overdue list without ?lang, then the chart speaks English too
    page = client.get("/care/overdue", headers=headers)
    assert 'aria-label="Overdue work items"' in page.text and "Nothing overdue" in page.text
    assert "逾期任务数" not in page.text


def test_switching_language_keeps_the_search_and_where_sign_in_goes_next(
    world: World, client: TestClient
) -> None:
    headers = world.headers[Role.family_doctor.value]
    # given a doctor on the second page of a search
    page = client.get("/residents", params={"q": "测试 & co", "page": 2}, headers=headers)
    # when she switches to English, then the same search, on the same page, comes back in English
    english = _english_link(page.text)
    assert english.startswith("/residents?") and "page=2" in english and english.endswith("lang=en")
    followed = client.get(english, headers=headers)
    assert _input_value(followed.text, "q") == "测试 & co" and "No residents found" in followed.text
    # and a stranger switching the sign-in form to English still goes where she was going
    sign_in = client.get("/login", params={"next": "/alerts?state=resolved"})
    english_form = client.get(_english_link(sign_in.text))
    assert _input_value(english_form.text, "next") == "/alerts?state=resolved"
    assert "Sign in" in english_form.text


def test_switching_language_on_a_form_answer_goes_back_to_the_form_page(
    world: World, client: TestClient
) -> None:
    # given the answer to a grant form with a problem (its address takes no GET)
    user_id = world.users[Role.nurse.value]
    headers = {
        **world.headers[Role.district_admin.value],
        "referer": f"http://testserver/admin/users/{user_id}",
    }
    answer = client.post(
        f"/admin/users/{user_id}/roles", data={"role": "grid_worker", "area_code": "NO-SUCH"}, headers=headers
    )
    # when the administrator switches to English, then the account page opens in English
    english = client.get(_english_link(answer.text), headers=world.headers[Role.district_admin.value])
    assert english.status_code == 200 and "Reset password" in english.text
    # and a Referer from another site is not followed
    elsewhere = {**headers, "referer": "https://evil.example/phish"}
    answer = client.post(f"/admin/users/{user_id}/roles", data={"role": "grid_worker"}, headers=elsewhere)
    assert _english_link(answer.text) == "/residents?lang=en"


# -- China time ---------------------------------------------------------------------------------


def _born(world: World, key: str, day: dt.date) -> int:
    with world.database.unit_of_work() as session:
        resident = session.get(Resident, world.residents[key])
        resident.birth_date = day
        return resident.id


def test_ages_are_counted_on_the_china_date_of_the_clock(world: World, client: TestClient) -> None:
    # given a resident whose 81st birthday is 2 June, and the clock at 04:00 on 2 June China time
    rid = _born(world, "in_given", dt.date(1950, 6, 2))
    client.app.state.clock = lambda: LATE_EVENING_UTC
    headers = world.headers[Role.family_doctor.value]
    # then the list and the profile say 81, not the server's (UTC or real) day's age
    listing = client.get("/residents", params={"q": "测试0"}, headers=headers)
    assert listing.status_code == 200 and "<td>81</td>" in listing.text
    profile = client.get(f"/residents/{rid}", headers=headers)
    assert profile.status_code == 200 and " · 81 · " in profile.text


def test_the_access_log_says_china_time_and_shows_it(world: World, client: TestClient) -> None:
    # given a doctor reading the resident's profile at 20:00 UTC (04:00 next day in China)
    client.app.state.clock = lambda: LATE_EVENING_UTC
    rid = world.residents["in_given"]
    assert client.get(f"/residents/{rid}", headers=world.headers[Role.family_doctor.value]).status_code == 200
    # when the resident opens who accessed her record
    page = client.get("/my/access-log", headers=world.token(Role.resident))
    # then the time is China time, and the heading does not call it UTC
    assert page.status_code == 200 and "2031-06-02 04:00" in page.text
    assert "UTC" not in page.text


# -- lists page through all they count ----------------------------------------------------------


def test_the_alert_list_pages_past_its_first_hundred(world: World, client: TestClient) -> None:
    # given 105 resolved alerts about a resident in the doctor's care
    start = utcnow() - dt.timedelta(days=10)
    with world.database.unit_of_work() as session:
        for index in range(105):
            at = start + dt.timedelta(minutes=index)
            session.add(Alert(
                resident_id=world.residents["in_given"], kind="fall", rule_kind="simple", severity="high",
                state=AlertState.resolved, raised_at=at, recorded_at=at, last_seen_at=at, chain="default",
            ))  # fmt: skip
        session.flush()
        first = session.scalar(select(Alert.id).order_by(Alert.raised_at).limit(1))
    headers = world.headers[Role.family_doctor.value]
    # when the doctor pages the resolved list, then the oldest alert is on the second page
    page_one = client.get("/alerts", params={"state": "resolved"}, headers=headers)
    assert page_one.status_code == 200 and "105" in page_one.text
    assert f'href="/alerts/{first}"' not in page_one.text
    following = unescape(re.search(r'<a href="([^"]*page=2[^"]*)"', page_one.text).group(1))
    page_two = client.get(following if following.startswith("/") else "/alerts" + following, headers=headers)
    assert page_two.status_code == 200 and f'href="/alerts/{first}"' in page_two.text
    assert "resolved" in following


def test_the_account_list_pager_keeps_a_search_with_an_ampersand(world: World, client: TestClient) -> None:
    # given 55 accounts whose names start with "A&B"
    with world.database.unit_of_work() as session:
        for index in range(55):
            access.create_user(session, f"ab.{index:02d}", display_name=f"A&B {index:02d}")
    headers = admin_everywhere(world)
    page_one = client.get("/admin/users", params={"q": "A&B"}, headers=headers)
    assert "共 55 个账号" in page_one.text
    following = unescape(re.search(r'<a href="(\?[^"]*page=2[^"]*)"', page_one.text).group(1))
    page_two = client.get("/admin/users" + following, headers=headers)
    # then the second page is still the "A&B" search: 5 more, none of the other accounts
    assert page_two.status_code == 200 and "共 55 个账号" in page_two.text
    assert _input_value(page_two.text, "q") == "A&B" and page_two.text.count("A&amp;B ") == 5


# -- Chinese first on every page ----------------------------------------------------------------


def test_the_import_runs_page_names_its_states_in_chinese(world: World, client: TestClient) -> None:
    with world.database.unit_of_work() as session:
        session.add(
            ImportRun(
                feed=Feed.health,
                filename="health.csv",
                file_sha256="0" * 64,
                status=RunStatus.failed,
                counts={},
            )
        )
    page = client.get("/imports", headers=world.headers[Role.civil_affairs_officer.value])
    assert page.status_code == 200 and "失败" in page.text
    english = client.get(
        "/imports", params={"lang": "en"}, headers=world.headers[Role.civil_affairs_officer.value]
    )
    assert "failed" in english.text


# -- labels for screen readers and older eyes ---------------------------------------------------


def test_the_search_box_and_the_outcome_choice_have_labels(world: World, client: TestClient) -> None:
    headers = world.headers[Role.family_doctor.value]
    page = client.get("/residents", headers=headers)
    box = re.search(r'<input type="search"[^>]*>', page.text).group(0)
    assert 'aria-label="姓名、拼音、身份证号或电话"' in box
    now = utcnow()
    with world.database.unit_of_work() as session:
        alert = Alert(
            resident_id=world.residents["in_given"], kind="fall", rule_kind="simple", severity="high",
            state=AlertState.open, raised_at=now, recorded_at=now, last_seen_at=now, chain="default",
        )  # fmt: skip
        session.add(alert)
        session.flush()
        alert_id = alert.id
    detail = client.get(f"/alerts/{alert_id}", headers=headers)
    choice = re.search(r'<select id="outcome"[^>]*>', detail.text).group(0)
    assert 'aria-label="处置结果"' in choice


# -- a review decided twice ---------------------------------------------------------------------


def test_a_review_decided_twice_answers_with_the_queue_page(world: World, client: TestClient) -> None:
    # given a review that another keeper has just decided
    with world.database.unit_of_work() as session:
        record = SourceRecord(
            feed=Feed.health, source_key="SRC-TWICE", resident_id=world.residents["in_given"],
            observed_at=utcnow(), content_hash="z" * 32, payload={}, link_method=LinkMethod.id_number,
        )  # fmt: skip
        session.add(record)
        session.flush()
        review = LinkReview(
            resident_id=world.residents["in_given"], candidate_id=world.residents["out_given"],
            source_record_id=record.id, score=0.7, comparison={},
        )  # fmt: skip
        session.add(review)
        session.flush()
        review_id = review.id
    headers = admin_everywhere(world)
    assert client.post(f"/reviews/{review_id}", data={"decision": "different"}, headers=headers,
                       follow_redirects=False).status_code == 303  # fmt: skip
    # when the second keeper's click arrives
    again = client.post(f"/reviews/{review_id}", data={"decision": "same"}, headers=headers)
    # then the queue page says so, in Chinese first, and nothing is merged
    assert again.status_code == 409 and again.headers["content-type"].startswith("text/html")
    assert "该记录已处理" in again.text
    with world.database.unit_of_work() as session:
        assert session.get(Resident, world.residents["out_given"]).merged_into_id is None


# -- a problem that is not a refusal is not called one ------------------------------------------


def test_a_mistyped_family_account_is_named_as_a_problem_not_a_refusal(
    world: World, client: TestClient
) -> None:
    # given the resident's doctor entering a signed authorisation with a family account that does not exist
    rid = world.residents["in_given"]
    page = client.post(
        f"/residents/{rid}/authorisations", data={"grantee_username": "no.such.son", "kinship": "child"},
        headers=world.headers[Role.family_doctor.value],
    )  # fmt: skip
    # then the page names the problem, does not say "not allowed", and leads back to the profile
    assert page.status_code == 404 and "账号不存在" in page.text
    assert "无权访问" not in page.text and f'href="/residents/{rid}#family"' in page.text


@pytest.mark.parametrize(
    "came_from", ["http://testserver/\t/evil.example/", "http://testserver//evil.example/"]
)
def test_the_language_link_never_leaves_the_site(world: World, client: TestClient, came_from: str) -> None:
    user_id = world.users[Role.nurse.value]
    headers = {**world.headers[Role.district_admin.value], "referer": came_from}
    answer = client.post(f"/admin/users/{user_id}/roles", data={"role": "grid_worker"}, headers=headers)
    link = _english_link(answer.text)
    assert link.startswith("/") and not link.startswith("//") and not re.search(r"\s", link)


# -- a merged record points to the one it was merged into ---------------------------------------


def test_a_merged_record_leads_to_the_record_it_was_merged_into(world: World, client: TestClient) -> None:
    # given a duplicate of in_given, under her team's contract, merged into her record
    with world.database.unit_of_work() as session:
        given = session.get(Resident, world.residents["in_given"])
        duplicate = Resident(
            name="测试重复", name_pinyin="ce shi chong fu", sex="F", birth_date=given.birth_date,
            community_id=given.community_id, grid_id=given.grid_id,
        )  # fmt: skip
        session.add(duplicate)
        session.flush()
        session.add(ResidentRelationship(
            resident_id=duplicate.id, kind=RelationshipKind.contract, organisation_id=world.teams["T1"],
            valid_from=utcnow() - dt.timedelta(days=30), source_type="test", source_id=duplicate.id,
        ))  # fmt: skip
        session.flush()
        duplicate_id = duplicate.id
        residents.merge_residents(session, given.id, duplicate_id, by="test", reason="duplicate")
    # when her doctor follows an old link to the duplicate (an alert, a work item)
    page = client.get(f"/residents/{duplicate_id}", headers=world.headers[Role.family_doctor.value])
    # then the page says it was merged and links to her record; no break-the-glass for an empty shell
    assert page.status_code == 404 and "该居民档案已合并到另一档案" in page.text
    assert f'href="/residents/{world.residents["in_given"]}"' in page.text
    assert "break-glass" not in page.text


def test_a_break_the_glass_reason_too_short_comes_back_to_be_finished(
    world: World, client: TestClient
) -> None:
    # given her team's doctor, refused out_given (another street), giving a reason the server finds too short
    rid = world.residents["out_given"]
    page = client.post(
        f"/residents/{rid}/break-glass", data={"reason": "跌倒    报警"},
        headers=world.headers[Role.family_doctor.value],
    )  # fmt: skip
    # then the form comes back with what she typed, to finish it
    assert page.status_code == 422 and "至少 10 字" in page.text
    assert _input_value(page.text, "reason") == "跌倒    报警"
