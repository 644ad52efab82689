"""Hostile input to the /fhir facade: each is a clear 400 OperationOutcome naming what is wrong,
never a 500, and nothing is stored (or, for a good Bundle, nothing accepted is lost)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yiyang.app import create_app
from yiyang.db import Database
from yiyang.fhir.api import FhirError, _outcome_response
from yiyang.residents.models import Resident, SourceRecord
from yiyang.sources.models import ImportRun
from yiyang.sources.records import RowRejection, SourceRow

from ..signed_in import sign_in_as_clinician
from .test_api import add_community, add_resident, outcome_codes
from .test_bundles import read, sample

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_db)) as test_client:
        sign_in_as_clinician(test_client, sqlite_db)
        yield test_client


def post(client: TestClient, bundle: Any) -> Any:
    """As a sender's JSON encoder writes it: a lone surrogate travels as the escape \\ud800."""
    return client.post(
        "/fhir", content=json.dumps(bundle, ensure_ascii=True), headers={"content-type": FHIR_JSON}
    )


def count_rows(database: Database, model: type) -> int:
    with database.unit_of_work() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def rejections(items: list[SourceRow | RowRejection]) -> list[tuple[int, str]]:
    return [(item.line, item.code) for item in items if isinstance(item, RowRejection)]


# -- resourceType that is not a string ---------------------------------------------------------


@pytest.mark.parametrize("resource_type", [1, 1.5, True, [], ["Patient"], {"a": 1}, 2**63])
def test_a_resource_type_that_is_not_a_string_is_an_unsupported_type(resource_type: Any) -> None:
    # given the sample whose Patient's resourceType is a number, a list, an object or a boolean
    bundle = sample()
    bundle["entry"][0]["resource"]["resourceType"] = resource_type
    # when read
    items = read(bundle)
    # then that entry is refused as an unsupported type, and its Patient is not a row
    assert (1, "fhir.entry.unsupported_type") in rejections(items)
    assert not any(isinstance(item, SourceRow) for item in items)


def test_a_resource_type_that_is_not_a_string_is_a_400_over_http(
    client: TestClient, sqlite_db: Database
) -> None:
    add_community(sqlite_db)
    bundle = sample()
    bundle["entry"][2]["resource"]["resourceType"] = {"nested": ["Observation"]}
    response = post(client, bundle)
    assert response.status_code == 400
    assert "fhir.entry.unsupported_type" in outcome_codes(response)
    assert count_rows(sqlite_db, Resident) == 0


# -- Condition without a code ------------------------------------------------------------------


@pytest.mark.parametrize("code", ["missing", None])
def test_a_condition_without_a_code_is_refused(code: Any) -> None:
    # given the sample whose Condition has no code, or a null one
    bundle = sample()
    condition = bundle["entry"][1]["resource"]
    if code == "missing":
        del condition["code"]
    else:
        condition["code"] = code
    # when read, then the Condition is refused for its missing ICD-10 coding
    assert rejections(read(bundle)) == [(2, "fhir.condition.code")]


# -- moments with no UTC moment, or outside 1900..2100 -----------------------------------------


@pytest.mark.parametrize(
    "last_updated", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+14:00", "1850-01-01T00:00:00Z"]
)
def test_a_last_updated_outside_the_calendar_is_refused(last_updated: str) -> None:
    bundle = sample()
    bundle["entry"][0]["resource"]["meta"]["lastUpdated"] = last_updated
    assert rejections(read(bundle)) == [(1, "fhir.patient.last_updated")]


@pytest.mark.parametrize(
    "effective", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-05:00", "2150-06-01", "1800-01-01"]
)
def test_an_effective_time_outside_the_calendar_is_refused(effective: str) -> None:
    bundle = sample()
    bundle["entry"][3]["resource"]["effectiveDateTime"] = effective
    assert rejections(read(bundle)) == [(4, "fhir.observation.effective")]


@pytest.mark.parametrize(
    ("entry", "element", "value", "code"),
    [
        (0, "meta", {"lastUpdated": "9999-12-31T23:00:00-05:00"}, "fhir.patient.last_updated"),
        (3, "effectiveDateTime", "0001-01-01T00:00:00+14:00", "fhir.observation.effective"),
    ],
)
def test_a_moment_with_no_utc_moment_is_a_400_over_http(
    client: TestClient, sqlite_db: Database, entry: int, element: str, value: Any, code: str
) -> None:
    add_community(sqlite_db)
    bundle = sample()
    bundle["entry"][entry]["resource"][element] = value
    response = post(client, bundle)
    assert response.status_code == 400
    assert outcome_codes(response) == [code]
    assert count_rows(sqlite_db, Resident) == 0 and count_rows(sqlite_db, ImportRun) == 0


# -- search values in other scripts' digits, or past the calendar ------------------------------


@pytest.mark.parametrize(
    "number",
    ["²", "١", "۱", "１", "1" * 40],  # superscript, Arabic-Indic, Persian, full-width, too long
)
@pytest.mark.parametrize("system", ["", "https://yiyang.example/fhir/sid/resident|"])
def test_an_identifier_in_other_digits_finds_no_one(
    client: TestClient, sqlite_db: Database, system: str, number: str
) -> None:
    # given resident 1, whose id the other scripts' "1" would be misread as
    assert add_resident(sqlite_db, "欧阳秀兰") == 1
    # when searched by a value that is not ASCII digits
    response = client.get("/fhir/Patient", params={"identifier": system + number})
    # then no one is found and nothing failed
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0


def test_our_resident_id_is_still_found_by_ascii_digits(client: TestClient, sqlite_db: Database) -> None:
    resident_id = add_resident(sqlite_db, "欧阳秀兰")
    found = client.get(
        "/fhir/Patient", params={"identifier": f"https://yiyang.example/fhir/sid/resident|{resident_id}"}
    )
    assert found.json()["total"] == 1


@pytest.mark.parametrize(
    "birthdate", ["9999-12-31", "gt9999-12-31", "le9999-12-31", "9999", "lt1899-12", "٢٠٢٠"]
)
def test_a_birthdate_past_the_calendar_is_a_400(client: TestClient, birthdate: str) -> None:
    response = client.get("/fhir/Patient", params={"birthdate": birthdate})
    assert response.status_code == 400
    assert outcome_codes(response) == ["fhir.search.birthdate"]


@pytest.mark.parametrize("patient", ["²", "Patient/²", "Patient/١٢", "١٢", "Patient/" + "1" * 30])
def test_a_consent_search_by_patient_in_other_digits_is_a_400(client: TestClient, patient: str) -> None:
    response = client.get("/fhir/Consent", params={"patient": patient})
    assert response.status_code == 400
    assert outcome_codes(response) == ["fhir.search.patient"]


def test_a_consent_transaction_put_in_other_digits_is_refused(client: TestClient) -> None:
    entry = {"resource": {"resourceType": "Consent"}, "request": {"method": "PUT", "url": "Consent/²"}}
    response = post(client, {"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    assert response.status_code == 400
    assert outcome_codes(response) == ["fhir.entry.request"]


# -- lone surrogates ---------------------------------------------------------------------------


def test_a_surrogate_resource_type_is_refused_without_repeating_it(
    client: TestClient, sqlite_db: Database
) -> None:
    # given a Patient entry whose resourceType is a lone surrogate
    add_community(sqlite_db)
    bundle = sample()
    bundle["entry"][0]["resource"]["resourceType"] = "\ud800"
    # when posted
    response = post(client, bundle)
    # then it is an unsupported type, answered as valid UTF-8 JSON that does not repeat the value
    assert response.status_code == 400
    assert response.content.decode("utf-8")
    assert outcome_codes(response) == ["fhir.entry.unsupported_type"] + ["fhir.reference.unresolved"] * 3
    assert all("\ud800" not in issue["details"]["text"] for issue in response.json()["issue"])
    assert count_rows(sqlite_db, Resident) == 0


def test_a_known_unsupported_type_is_still_named() -> None:
    bundle = sample()
    bundle["entry"].append({"resource": {"resourceType": "Encounter"}, "request": {"method": "POST"}})
    (rejection,) = [item for item in read(bundle) if isinstance(item, RowRejection)]
    assert rejection.code == "fhir.entry.unsupported_type" and "Encounter" in rejection.message


@pytest.mark.parametrize("bundle_id", ["\ud800", "a/b", "x" * 65, "", 7])
def test_a_bundle_id_that_is_not_a_fhir_id_is_not_the_import_label(
    client: TestClient, sqlite_db: Database, bundle_id: Any
) -> None:
    # given the sample whose Bundle.id is no FHIR id (a lone surrogate, a slash, too long, empty, a number)
    add_community(sqlite_db)
    bundle = sample()
    bundle["id"] = bundle_id
    # when posted
    response = post(client, bundle)
    # then the Patient is stored, under the plain label
    assert response.status_code == 200, response.text
    with sqlite_db.unit_of_work() as session:
        assert session.execute(select(ImportRun.filename)).scalars().all() == ["FHIR transaction"]


def test_a_bundle_id_that_is_a_fhir_id_labels_the_import(client: TestClient, sqlite_db: Database) -> None:
    add_community(sqlite_db)
    assert post(client, sample()).status_code == 200
    with sqlite_db.unit_of_work() as session:
        assert session.execute(select(ImportRun.filename)).scalars().all() == [
            "FHIR Bundle/haidian-health-20250301"
        ]


def test_an_outcome_renders_though_a_message_holds_a_lone_surrogate() -> None:
    response = _outcome_response(FhirError(400, "fhir.request.invalid", "bad \ud800 value"))
    outcome = json.loads(response.body.decode("utf-8"))
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "fhir.request.invalid"
    assert outcome["issue"][0]["details"]["text"] == "bad \ufffd value"


# -- record keys with control characters -------------------------------------------------------


@pytest.mark.parametrize("where", ["identifier", "fullUrl"])
@pytest.mark.parametrize("key", ["\x00", "1101080010\x0000123", "ab\nc"])
def test_a_record_key_with_control_characters_is_refused(where: str, key: str) -> None:
    bundle = sample()
    patient_entry = bundle["entry"][0]
    if where == "identifier":
        patient_entry["resource"]["identifier"][0]["value"] = key
    else:
        patient_entry["resource"]["identifier"] = patient_entry["resource"]["identifier"][1:]
        patient_entry["fullUrl"] = f"urn:uuid:{key}"
    assert (1, "fhir.patient.source_key") in rejections(read(bundle))


def test_a_nul_record_key_posted_twice_is_refused_both_times(client: TestClient, sqlite_db: Database) -> None:
    # given the sample whose 健康档案编号 is a NUL
    add_community(sqlite_db)
    bundle = sample()
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "\x00"
    # when posted twice, then both are refused for the key and nothing is stored
    for _ in range(2):
        response = post(client, copy.deepcopy(bundle))
        assert response.status_code == 400
        assert outcome_codes(response) == ["fhir.patient.source_key"]
    assert count_rows(sqlite_db, SourceRecord) == 0 and count_rows(sqlite_db, Resident) == 0


# -- control characters in search text ----------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"name": "\x00"},
        {"name": "张\x00"},
        {"name": "a\x00"},
        {"identifier": "HR-0001\x00"},
        {"identifier": "urn:oid:2.16.156.10011.1.2|\x00"},
    ],
    ids=["nul", "han_nul", "ascii_nul", "value_nul", "record_nul"],
)
def test_a_search_text_with_a_nul_is_a_400_on_both_databases(db: Database, params: dict[str, str]) -> None:
    # given a resident with a health record (PostgreSQL cannot compare text holding a NUL; SQLite
    # cut the pattern short there and listed everyone)
    add_resident(db, "张秀英", source_key="HR-0001")
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        sign_in_as_clinician(client, db)
        # when a search text holds a NUL
        response = client.get("/fhir/Patient", params=params)
    # then it is a 400 OperationOutcome naming the parameter, not a 500 and not everyone
    assert response.status_code == 400, response.text
    assert outcome_codes(response) == ["fhir.request.invalid"]
    assert next(iter(params)) in response.json()["issue"][0]["details"]["text"]


# -- control characters in stored text --------------------------------------------------------


def _with_nul(bundle: dict[str, Any], where: str) -> int:
    """Put a NUL where ``where`` says; the 1-based entry at fault."""
    patient = bundle["entry"][0]["resource"]
    if where == "name":
        patient["name"][0]["text"] = "欧阳\x00秀兰"
    elif where == "family":
        patient["name"] = [{"family": "欧阳", "given": ["秀\x01兰"]}]
    elif where == "address":
        patient["address"][0]["text"] = "学院路\x003号"
    else:
        bundle["entry"][1]["resource"]["code"]["coding"][0]["display"] = "高\x00血压"
        return 2
    return 1


@pytest.mark.parametrize("where", ["name", "family", "address", "display"])
def test_text_with_a_control_character_is_refused(where: str) -> None:
    bundle = sample()
    line = _with_nul(bundle, where)
    assert rejections(read(bundle)) == [(line, "fhir.resource.invalid")]


@pytest.mark.parametrize("where", ["name", "address", "display"])
def test_text_with_a_nul_is_a_400_on_both_databases(db: Database, where: str) -> None:
    # given the sample with a NUL in text the registry would store (PostgreSQL cannot: a 500)
    add_community(db)
    bundle = sample()
    line = _with_nul(bundle, where)
    with TestClient(create_app(db), raise_server_exceptions=False) as client:
        sign_in_as_clinician(client, db)
        # when posted
        response = post(client, bundle)
    # then the entry is refused, naming the element and not the value, and nothing is stored
    assert response.status_code == 400, response.text
    assert outcome_codes(response) == ["fhir.resource.invalid"]
    assert response.json()["issue"][0]["expression"] == [f"Bundle.entry[{line - 1}]"]
    assert "\x00" not in response.text and "\\u0000" not in response.text
    assert count_rows(db, Resident) == 0 and count_rows(db, SourceRecord) == 0


# -- huge bundles ------------------------------------------------------------------------------


def test_a_consent_transaction_past_the_entry_limit_is_too_large(client: TestClient) -> None:
    # given a transaction of 5001 Consent entries (the limit is 5000, as for Patients)
    entry = {"resource": {"resourceType": "Consent"}, "request": {"method": "POST", "url": "Consent"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry] * 5001}
    # when posted, then the whole request is refused for its size, not worked through entry by entry
    response = post(client, bundle)
    assert response.status_code == 400
    assert outcome_codes(response) == ["fhir.bundle.too_large"]
