"""The /fhir facade over HTTP: reads, searches, $everything, transactions, and errors as OperationOutcomes."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.condition import Condition as FhirCondition
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient as FhirPatient
from sqlalchemy import func, insert, select

from yiyang.app import create_app
from yiyang.db import Database
from yiyang.fhir.mapping import RESIDENT_ID_SYSTEM
from yiyang.geo.models import Area, AreaLevel
from yiyang.residents.models import (
    Condition,
    Feed,
    LinkMethod,
    Observation,
    Resident,
    ResidentStatus,
    SourceRecord,
)
from yiyang.residents.names import name_pinyin
from yiyang.sources.models import ImportRun

from ..signed_in import sign_in_as_clinician

SAMPLE = Path(__file__).parents[2] / "docs" / "samples" / "fhir_transaction.json"
COMMUNITY = "110108001001"
FHIR_JSON = "application/fhir+json"


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_db)) as test_client:
        sign_in_as_clinician(test_client, sqlite_db)
        yield test_client


def add_community(database: Database) -> int:
    with database.unit_of_work() as session:
        district = Area(level=AreaLevel.district, code="110108", name="海淀区", path="110108")
        session.add(district)
        session.flush()
        street = Area(
            level=AreaLevel.street,
            code="110108001",
            name="学院路街道",
            parent_id=district.id,
            path="110108/110108001",
        )
        session.add(street)
        session.flush()
        community = Area(
            level=AreaLevel.community,
            code=COMMUNITY,
            name="某社区",
            parent_id=street.id,
            path=f"110108/110108001/{COMMUNITY}",
        )
        session.add(community)
        session.flush()
        return community.id


def add_resident(database: Database, name: str, **values: Any) -> int:
    """A resident with one health record, as an import would leave it."""
    source_key = values.pop("source_key", None)
    with database.unit_of_work() as session:
        resident = Resident(name=name, name_pinyin=name_pinyin(name), **values)
        session.add(resident)
        session.flush()
        if source_key:
            session.add(
                SourceRecord(
                    feed=Feed.health,
                    source_key=source_key,
                    resident_id=resident.id,
                    observed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                    content_hash="0" * 32,
                    payload={"name": name},
                    link_method=LinkMethod.new,
                )
            )
        return resident.id


def add_facts(database: Database, resident_id: int) -> None:
    """A hypertension diagnosis and two BP readings, the second the latest."""
    with database.unit_of_work() as session:
        record = SourceRecord(
            feed=Feed.health,
            source_key=f"facts-{resident_id}",
            resident_id=resident_id,
            observed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            content_hash="0" * 32,
            payload={},
            link_method=LinkMethod.new,
        )
        session.add(record)
        session.flush()
        day = dt.date(2024, 6, 1)
        session.add(
            Condition(
                resident_id=resident_id, code="I10", display="高血压", first_source_record_id=record.id,
                last_source_record_id=record.id, first_seen=day, last_seen=day,
            )
        )  # fmt: skip
        for when, systolic in (
            (dt.datetime(2024, 6, 1, tzinfo=dt.UTC), 162.0),
            (dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 138.0),
        ):
            session.add(
                Observation(
                    resident_id=resident_id, code="85354-9", value=systolic, value2=84.0, unit="mmHg",
                    effective_at=when, source_record_id=record.id,
                )
            )  # fmt: skip


@pytest.fixture
def registry(sqlite_db: Database) -> dict[str, int]:
    community_id = add_community(sqlite_db)
    ids = {
        "zhang": add_resident(
            sqlite_db, "张秀英", id_number="110108194501010021", sex="F", birth_date=dt.date(1945, 1, 1),
            phone="13900000001", address="学院路1号", community_id=community_id, source_key="HR-0001",
        ),
        "ouyang": add_resident(sqlite_db, "欧阳建国", sex="M", birth_date=dt.date(1950, 10, 1), community_id=community_id),
        "wang": add_resident(sqlite_db, "王建华", sex="M", birth_date=dt.date(1950, 10, 2)),
    }  # fmt: skip
    with sqlite_db.unit_of_work() as session:
        merged = Resident(
            name="张秀英",
            name_pinyin=name_pinyin("张秀英"),
            status=ResidentStatus.merged,
            merged_into_id=ids["zhang"],
        )
        session.add(merged)
        session.flush()
        ids["merged"] = merged.id
    add_facts(sqlite_db, ids["zhang"])
    return ids


def outcome_codes(response: Any) -> list[str]:
    assert response.headers["content-type"].startswith(FHIR_JSON)
    outcome = OperationOutcome.model_validate(response.json())
    return [issue.details.coding[0].code for issue in outcome.issue]


def search(client: TestClient, **params: Any) -> Bundle:
    response = client.get("/fhir/Patient", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "searchset"
    return bundle


def names(bundle: Bundle) -> list[str]:
    return [entry.resource.name[0].text for entry in bundle.entry or ()]


# -- metadata and read ----------------------------------------------------------------------


def test_metadata_is_an_r4_capability_statement(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    patient = next(r for r in statement.rest[0].resource if r.type == "Patient")
    assert {i.code for i in patient.interaction} == {"read", "search-type"}
    assert {p.name for p in patient.searchParam} == {"identifier", "name", "birthdate"}
    assert [i.code for i in statement.rest[0].interaction] == ["transaction"]


def test_read_patient(client: TestClient, registry: dict[str, int]) -> None:
    response = client.get(f"/fhir/Patient/{registry['zhang']}")
    assert response.status_code == 200
    patient = FhirPatient.model_validate(response.json())
    assert patient.id == str(registry["zhang"])
    assert patient.name[0].text == "张秀英" and patient.name[0].family == "张"
    # masked by default: the full number only through the audited reveal
    assert {i.system: i.value for i in patient.identifier}[RESIDENT_ID_SYSTEM] == "110108********0021"
    assert patient.address[0].extension[0].valueString == COMMUNITY


@pytest.mark.parametrize(
    "path", ["/fhir/Patient/999999", "/fhir/Patient/0", "/fhir/Patient/99999999999", "/fhir/Patient/abc"]
)
def test_an_unknown_patient_is_a_404_operation_outcome(
    client: TestClient, registry: dict[str, int], path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert outcome_codes(response)[0] in {"resident.not_found", "fhir.not_found"}


def test_a_merged_patient_is_gone_and_names_its_survivor(
    client: TestClient, registry: dict[str, int]
) -> None:
    for path in (f"/fhir/Patient/{registry['merged']}", f"/fhir/Patient/{registry['merged']}/$everything"):
        response = client.get(path)
        assert response.status_code == 410
        assert outcome_codes(response) == ["resident.merged"]
        assert f"Patient/{registry['zhang']}" in response.json()["issue"][0]["details"]["text"]


def test_everything_has_the_patient_its_conditions_and_latest_observations(
    client: TestClient, registry: dict[str, int]
) -> None:
    response = client.get(f"/fhir/Patient/{registry['zhang']}/$everything")
    assert response.status_code == 200
    bundle = Bundle.model_validate(response.json())
    by_type: dict[str, list[Any]] = {}
    for entry in bundle.entry:
        by_type.setdefault(entry.resource.get_resource_type(), []).append(entry)
    assert [e.search.mode for e in by_type["Patient"]] == ["match"]
    (condition,) = by_type["Condition"]
    assert FhirCondition.model_validate(condition.resource.model_dump()).code.coding[0].code == "I10"
    (observation,) = by_type["Observation"]  # only the latest BP
    components = {c.code.coding[0].code: c.valueQuantity.value for c in observation.resource.component}
    assert components["8480-6"] == 138
    assert FhirObservation.model_validate(observation.resource.model_dump()).subject.reference == (
        f"Patient/{registry['zhang']}"
    )


# -- search ---------------------------------------------------------------------------------


def test_search_by_resident_id_number_normalises_it(client: TestClient, registry: dict[str, int]) -> None:
    bundle = search(client, identifier=f"{RESIDENT_ID_SYSTEM}|110108194501010021")
    assert bundle.total == 1 and names(bundle) == ["张秀英"]
    assert bundle.entry[0].search.mode == "match"
    assert bundle.entry[0].fullUrl.endswith(f"/fhir/Patient/{registry['zhang']}")
    # the legacy 15-digit form of the same number finds the same resident
    assert names(search(client, identifier=f"{RESIDENT_ID_SYSTEM}|110108450101002")) == ["张秀英"]
    assert names(search(client, identifier="110108194501010021")) == ["张秀英"]


def test_search_by_health_record_number_and_by_our_id(client: TestClient, registry: dict[str, int]) -> None:
    assert names(search(client, identifier="urn:oid:2.16.156.10011.1.2|HR-0001")) == ["张秀英"]
    assert names(
        search(client, identifier=f"https://yiyang.example/fhir/sid/resident|{registry['wang']}")
    ) == ["王建华"]
    assert search(client, identifier="urn:example:unknown|HR-0001").total == 0
    assert (
        search(client, identifier=f"{RESIDENT_ID_SYSTEM}|110108194501010024").total == 0
    )  # bad check character


def test_search_by_name_characters_or_pinyin(client: TestClient, registry: dict[str, int]) -> None:
    assert names(search(client, name="建")) == ["欧阳建国", "王建华"]
    assert names(search(client, name="欧阳")) == ["欧阳建国"]
    assert names(search(client, name="jianguo")) == ["欧阳建国"]
    assert names(search(client, name="Wang Jian")) == ["王建华"]
    assert names(search(client, name="%")) == []


def test_search_by_birthdate(client: TestClient, registry: dict[str, int]) -> None:
    assert names(search(client, birthdate="1950-10-01")) == ["欧阳建国"]
    assert names(search(client, birthdate="eq1950-10")) == ["欧阳建国", "王建华"]
    assert names(search(client, birthdate=["ge1946", "lt1950-10-02"])) == ["欧阳建国"]
    assert names(search(client, name="张", birthdate="1945")) == ["张秀英"]  # the merged one is not listed


def test_search_pages_with_count(client: TestClient, registry: dict[str, int]) -> None:
    first = search(client, _count=2)
    assert first.total == 3 and len(first.entry) == 2
    next_url = next(link.url for link in first.link if link.relation == "next")
    second = client.get(next_url)
    assert [e["resource"]["name"][0]["text"] for e in second.json()["entry"]] == ["王建华"]
    assert search(client, _count=0).entry is None


def test_every_next_link_can_be_followed_past_ten_thousand(client: TestClient, sqlite_db: Database) -> None:
    # given more residents than the old _offset bound (10,000): a district has hundreds of thousands
    with sqlite_db.unit_of_work() as session:
        session.execute(
            insert(Resident),
            [
                {"name": "居民", "name_pinyin": "ju min", "status": ResidentStatus.active}
                for _ in range(10_030)
            ],
        )
    # when a client follows the next links from the page at 10,000
    page = search(client, _count=20, _offset=10_000)
    assert page.total == 10_030 and len(page.entry) == 20
    next_url = next(link.url for link in page.link if link.relation == "next")
    # then the next page is served, not refused as out of bounds
    response = client.get(next_url)
    assert response.status_code == 200, response.text
    assert len(response.json()["entry"]) == 10
    assert not any(link["relation"] == "next" for link in response.json()["link"])


def test_search_links_name_only_the_parameters_used(client: TestClient, registry: dict[str, int]) -> None:
    # given a search with parameters we do not support (FHIR: ignored) beside one we do
    bundle = search(client, name="建", gender="female", _id=registry["zhang"], _count=1)
    # then the answer is the name search alone, and its links say so (FHIR: self is the search
    # as processed), so a client can tell gender and _id were not applied
    assert bundle.total == 2
    for link in bundle.link:
        assert "gender" not in link.url and "_id" not in link.url, link.url
        assert "name=%E5%BB%BA" in link.url
    next_url = next(link.url for link in bundle.link if link.relation == "next")
    assert names(Bundle.model_validate(client.get(next_url).json())) == ["王建华"]


@pytest.mark.parametrize("key", ["name:exact", "name:missing", "identifier:of-type", "birthdate:missing"])
def test_a_modifier_we_do_not_support_is_a_400_not_everyone(
    client: TestClient, registry: dict[str, int], key: str
) -> None:
    # FHIR: a server SHALL reject a parameter with a modifier it does not support; ignoring it
    # answered name:exact=张秀英 with every resident in scope
    response = client.get("/fhir/Patient", params={key: "张秀英"})
    assert response.status_code == 400, response.text
    assert outcome_codes(response) == ["fhir.search.modifier"]
    assert key in response.json()["issue"][0]["details"]["text"]


@pytest.mark.parametrize(
    "params", [{"_count": 101}, {"_count": -1}, {"birthdate": "1950/10/01"}, {"birthdate": "ne1950"}]
)
def test_bad_search_parameters_are_a_400_operation_outcome(
    client: TestClient, params: dict[str, Any]
) -> None:
    response = client.get("/fhir/Patient", params=params)
    assert response.status_code == 400
    assert outcome_codes(response)


# -- transaction ----------------------------------------------------------------------------


def post(client: TestClient, bundle: Any) -> Any:
    return client.post("/fhir", content=json.dumps(bundle), headers={"content-type": FHIR_JSON})


def count_rows(database: Database, model: type) -> int:
    with database.unit_of_work() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_posted_transaction_can_be_read_back(client: TestClient, sqlite_db: Database) -> None:
    # given the community the sample lives in
    add_community(sqlite_db)
    bundle = sample()
    sent = bundle["entry"][0]["resource"]
    # when the sample transaction is posted
    response = post(client, bundle)
    # then every entry is answered, the Patient with its location
    assert response.status_code == 200, response.text
    answer = Bundle.model_validate(response.json())
    assert answer.type == "transaction-response" and len(answer.entry) == 4
    location = answer.entry[0].response.location
    assert location.startswith("Patient/")
    # and reading it back gives the same identity
    patient = FhirPatient.model_validate(client.get(f"/fhir/{location}").json())
    sent_number = sent["identifier"][1]["value"]
    shown = {i.system: i.value for i in patient.identifier}[RESIDENT_ID_SYSTEM]
    assert shown == sent_number[:6] + "*" * 8 + sent_number[-4:]  # masked (docs/access.md)
    assert patient.name[0].text == sent["name"][0]["text"]
    assert patient.birthDate.isoformat() == sent["birthDate"]
    assert patient.address[0].extension[0].valueString == COMMUNITY
    # with its diagnosis and both measurements
    everything = client.get(f"/fhir/{location}/$everything").json()
    codes = sorted(e["resource"]["code"]["coding"][0]["code"] for e in everything["entry"][1:])
    assert codes == ["14771-0", "85354-9", "I10"]
    # and the health record number finds it
    assert search(client, identifier="urn:oid:2.16.156.10011.1.2|110108001000012345").total == 1


def test_posting_the_same_transaction_twice_points_at_the_same_patient(
    client: TestClient, sqlite_db: Database
) -> None:
    add_community(sqlite_db)
    first = post(client, sample()).json()["entry"][0]["response"]["location"]
    second = post(client, sample()).json()["entry"][0]["response"]["location"]
    assert first == second
    assert count_rows(sqlite_db, Resident) == 1


def test_a_bundle_with_a_bad_entry_stores_nothing(client: TestClient, sqlite_db: Database) -> None:
    # given the sample's community, and the sample with a second Patient whose ID number is wrong
    add_community(sqlite_db)
    bundle = sample()
    bad = copy.deepcopy(bundle["entry"][0])
    bad["fullUrl"] = "urn:uuid:7e7e7e7e-0000-4000-8000-000000000002"
    bad["resource"]["identifier"] = [{"system": RESIDENT_ID_SYSTEM, "value": "110108194803150021"}]
    bundle["entry"].append(bad)
    bundle["entry"].append(
        {"resource": {"resourceType": "Encounter", "status": "finished"}, "request": {"method": "POST"}}
    )
    # when posted
    response = post(client, bundle)
    # then the whole transaction is refused, every problem listed with its entry
    assert response.status_code == 400
    assert outcome_codes(response) == ["resident.id_number.checksum", "fhir.entry.unsupported_type"]
    assert [i["expression"] for i in response.json()["issue"]] == [["Bundle.entry[4]"], ["Bundle.entry[5]"]]
    # and nothing was stored, not even the good Patient
    assert count_rows(sqlite_db, Resident) == 0
    assert count_rows(sqlite_db, SourceRecord) == 0
    assert count_rows(sqlite_db, ImportRun) == 0


def test_a_patient_in_an_unknown_community_is_refused(client: TestClient, sqlite_db: Database) -> None:
    # given no geography at all
    # when the sample is posted
    response = post(client, sample())
    # then its community is unknown and nothing is stored
    assert response.status_code == 400
    assert outcome_codes(response) == ["geo.community.unknown"]
    assert count_rows(sqlite_db, Resident) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "fhir.request.invalid"),
        (b"[1, 2]", "fhir.request.invalid"),
        (b"\xff\xfe{", "fhir.request.invalid"),
        (json.dumps({"resourceType": "Bundle", "type": "batch"}).encode(), "fhir.bundle.type"),
        (json.dumps({"resourceType": "Patient"}).encode(), "fhir.bundle.not_bundle"),
    ],
)
def test_a_malformed_bundle_is_a_400_operation_outcome(client: TestClient, body: bytes, code: str) -> None:
    response = client.post("/fhir", content=body, headers={"content-type": FHIR_JSON})
    assert response.status_code == 400
    assert outcome_codes(response) == [code]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/fhir+xml", "application/json+fhir"]
)
def test_a_body_in_a_format_we_do_not_read_is_a_415(
    client: TestClient, sqlite_db: Database, content_type: str
) -> None:
    # given the sample, sent as another media type than JSON
    add_community(sqlite_db)
    response = client.post("/fhir", content=json.dumps(sample()), headers={"content-type": content_type})
    # then it is refused for its media type (HTTP 415), not as a body that "should be a valid dictionary"
    assert response.status_code == 415, response.text
    assert outcome_codes(response) == ["fhir.request.media_type"]
    assert "application/fhir+json" in response.json()["issue"][0]["details"]["text"]
    assert count_rows(sqlite_db, Resident) == 0


@pytest.mark.parametrize(
    "content_type", [FHIR_JSON, "application/fhir+json; charset=utf-8", "application/json"]
)
def test_a_json_body_is_read_whichever_json_type_names_it(
    client: TestClient, sqlite_db: Database, content_type: str
) -> None:
    add_community(sqlite_db)
    response = client.post("/fhir", content=json.dumps(sample()), headers={"content-type": content_type})
    assert response.status_code == 200, response.text


def test_round_trip_on_both_engines(db: Database) -> None:
    add_community(db)
    with TestClient(create_app(db)) as client:
        sign_in_as_clinician(client, db)
        location = post(client, sample()).json()["entry"][0]["response"]["location"]
        patient = client.get(f"/fhir/{location}").json()
        found = search(client, name="ouyang", birthdate="1948-03-15")
    assert patient["name"][0]["family"] == "欧阳"
    assert [e.fullUrl.rsplit("/", 1)[1] for e in found.entry] == [location.split("/")[1]]


# -- every answer under /fhir is FHIR -------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Observation/1",
        "/fhir/Patient/1/history",
        "/fhir/nothing",
        "/fhir/Observation/",
        "/fhir/Consent/1/x",
    ],
)
def test_an_unknown_fhir_path_is_a_404_operation_outcome(client: TestClient, path: str) -> None:
    # given a path no FHIR route serves (a resource type we do not offer, say)
    response = client.get(path)
    # then the answer is an OperationOutcome, not the app's plain {"detail": "Not Found"}
    assert response.status_code == 404
    assert outcome_codes(response) == ["fhir.not_found"]
    assert response.json()["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/fhir/Patient/1", {"GET"}),
        ("POST", "/fhir/metadata", {"GET"}),
        ("GET", "/fhir", {"POST"}),
        ("DELETE", "/fhir/Consent/1", {"GET", "PUT"}),
    ],
)
def test_a_wrong_method_is_a_405_operation_outcome_with_allow(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert outcome_codes(response) == ["fhir.method.not_allowed"]
    assert response.json()["issue"][0]["code"] == "not-supported"
    assert allowed <= {m.strip() for m in response.headers["allow"].split(",")}


def test_an_unknown_resource_type_is_a_404_whatever_the_method(client: TestClient) -> None:
    response = client.post("/fhir/Observation", content="{}", headers={"content-type": FHIR_JSON})
    assert response.status_code == 404
    assert outcome_codes(response) == ["fhir.not_found"]


# -- comma-separated values are OR (FHIR search, "Composite/OR") ---------------------------


def test_comma_separated_identifiers_are_or(client: TestClient, registry: dict[str, int]) -> None:
    bundle = search(
        client,
        identifier=f"urn:oid:2.16.156.10011.1.2|HR-0001,https://yiyang.example/fhir/sid/resident|{registry['wang']}",
    )
    assert names(bundle) == ["张秀英", "王建华"]
    assert names(search(client, identifier="HR-0001,110108194501010021,nobody")) == ["张秀英"]


def test_comma_separated_names_and_birthdates_are_or(client: TestClient, registry: dict[str, int]) -> None:
    assert names(search(client, name="欧阳,王")) == ["欧阳建国", "王建华"]
    assert names(search(client, name="zhang,jianhua")) == ["张秀英", "王建华"]
    assert names(search(client, birthdate="1945,1950-10-02")) == ["张秀英", "王建华"]
    # repeated parameters stay AND, each one an OR of its values
    assert names(search(client, birthdate=["1945,1950-10", "ge1950"])) == ["欧阳建国", "王建华"]
    assert names(search(client, name="欧阳,王", birthdate="1950-10-02")) == ["王建华"]


def test_an_escaped_comma_is_part_of_the_value(
    client: TestClient, registry: dict[str, int], sqlite_db: Database
) -> None:
    # given a health record number with a comma in it
    add_resident(sqlite_db, "李四", source_key="HR,7")
    # then \, searches for the comma itself, and an unescaped one splits the values
    assert names(search(client, identifier="HR\\,7")) == ["李四"]
    assert names(search(client, identifier="HR,7")) == []


def test_too_many_or_values_are_a_400(client: TestClient, registry: dict[str, int]) -> None:
    for params in (
        {"name": ",".join(["王"] * 21)},
        {"identifier": ",".join(f"HR-{n}" for n in range(21))},
        {"birthdate": ",".join(["1950"] * 21)},
    ):
        response = client.get("/fhir/Patient", params=params)
        assert response.status_code == 400, params
        assert outcome_codes(response) == ["fhir.search.too_many_values"]
    assert names(search(client, name=",".join(["王"] * 20))) == ["王建华"]


# -- names are tidied as the CSV import tidies them -----------------------------------------


def patient_named(text: str) -> dict[str, Any]:
    bundle = sample()
    bundle["entry"] = bundle["entry"][:1]
    bundle["entry"][0]["resource"]["name"] = [{"use": "official", "text": text}]
    return bundle


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("欧阳 秀兰", "欧阳秀兰"),
        ("阿依古丽・买买提", "阿依古丽·买买提"),
        ("阿依古丽.买买提", "阿依古丽·买买提"),
    ],
)
def test_a_patient_name_is_stored_as_the_csv_import_stores_it(
    client: TestClient, sqlite_db: Database, sent: str, stored: str
) -> None:
    add_community(sqlite_db)
    response = post(client, patient_named(sent))
    assert response.status_code == 200, response.text
    location = response.json()["entry"][0]["response"]["location"]
    assert client.get(f"/fhir/{location}").json()["name"][0]["text"] == stored


def test_a_patient_name_over_thirty_characters_is_refused(client: TestClient, sqlite_db: Database) -> None:
    add_community(sqlite_db)
    response = post(client, patient_named("欧" * 31))
    assert response.status_code == 400
    assert outcome_codes(response) == ["resident.name.format"]
    assert count_rows(sqlite_db, Resident) == 0
