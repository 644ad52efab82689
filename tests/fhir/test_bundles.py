"""Reading a health-commission transaction Bundle into health-feed rows, and the Bundles we answer with."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from yiyang.fhir.bundles import (
    EntryOutcome,
    MalformedBundle,
    rows_from_transaction,
    searchset,
    transaction_response,
)
from yiyang.sources.feeds import CommunityDirectory
from yiyang.sources.models import Feed
from yiyang.sources.records import RowRejection, SourceRow

SAMPLE = Path(__file__).parents[2] / "docs" / "samples" / "fhir_transaction.json"
NOW = dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
PATIENT_URL = "urn:uuid:6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"


def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def read(bundle: dict[str, Any], **kwargs: Any) -> list[SourceRow | RowRejection]:
    return rows_from_transaction(bundle, now=NOW, **kwargs)


def only_rejections(items: list[SourceRow | RowRejection]) -> list[tuple[int, str]]:
    assert all(isinstance(item, RowRejection) for item in items), items
    return [(item.line, item.code) for item in items]


def condition_entry(code: str, subject: str = PATIENT_URL, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
        "subject": {"reference": subject},
        **extra,
    }
    return {
        "fullUrl": "urn:uuid:9d9d9d9d-0000-4000-8000-000000000001",
        "resource": resource,
        "request": {"method": "POST", "url": "Condition"},
    }


def test_the_sample_bundle_becomes_one_health_row() -> None:
    # given the documented sample: one Patient with a condition, a BP panel and a fasting glucose
    # when read
    items = read(sample())
    # then it is one health-feed row keyed by the 健康档案编号, with every fact carried over
    assert len(items) == 1
    row = items[0]
    assert isinstance(row, SourceRow)
    assert (row.feed, row.line, row.source_key) == (Feed.health, 1, "110108001000012345")
    assert (row.name, row.sex, row.birth_date) == ("欧阳秀兰", "F", dt.date(1948, 3, 15))
    assert row.id_number == "11010819480315002X"
    assert (row.phone, row.community_code) == ("13800138000", "110108001001")
    assert row.observed_at == dt.datetime(2025, 3, 1, 1, 30, tzinfo=dt.UTC)
    assert [(c.code, c.display) for c in row.conditions] == [("I10", "高血压")]
    bp, glucose = row.observations
    assert (bp.code, bp.value, bp.value2, bp.unit) == ("85354-9", 148, 86, "mm[Hg]")
    assert bp.effective_at == dt.datetime(2025, 2, 27, 2, 5, tzinfo=dt.UTC)
    assert (glucose.code, glucose.value, glucose.unit) == ("14771-0", 6.4, "mmol/L")
    # a date without a time is stored as the CSV feeds store days: 00:00 UTC
    assert glucose.effective_at == dt.datetime(2025, 2, 27, tzinfo=dt.UTC)


def test_without_a_health_record_number_the_full_url_is_the_key_and_now_the_time() -> None:
    bundle = sample()
    patient = bundle["entry"][0]["resource"]
    patient["identifier"] = [i for i in patient["identifier"] if i["system"] != "urn:oid:2.16.156.10011.1.2"]
    del patient["meta"]
    (row,) = read(bundle)
    assert row.source_key == PATIENT_URL
    assert row.observed_at == NOW


def test_name_parts_sex_and_birth_date_may_come_from_elsewhere() -> None:
    # given a Patient with family/given instead of text, and no gender or birthDate
    bundle = sample()
    patient = bundle["entry"][0]["resource"]
    patient["name"] = [{"family": "欧阳", "given": ["秀兰"]}]
    del patient["gender"], patient["birthDate"]
    # when read
    (row,) = read(bundle)
    # then the name is joined in Chinese order and sex and birth date come from the ID number
    assert (row.name, row.sex, row.birth_date) == ("欧阳秀兰", "F", dt.date(1948, 3, 15))


def test_a_bad_id_number_rejects_the_patient_and_nothing_becomes_a_row() -> None:
    # given the sample with a wrong check character
    bundle = sample()
    bundle["entry"][0]["resource"]["identifier"][1]["value"] = "110108194803150021"
    # when read
    items = read(bundle)
    # then the Patient's entry is rejected with the GB 11643 code, and its facts are not kept
    assert only_rejections(items) == [(1, "resident.id_number.checksum")]
    assert items[0].source_key == "110108001000012345"
    assert "110108194803150021" not in items[0].message


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda p: p.update(gender="male"), "resident.sex.mismatch"),
        (lambda p: p.update(birthDate="1948-03-16"), "resident.birth_date.mismatch"),
        (lambda p: p.update(birthDate="1948"), "fhir.patient.birth_date"),
        (lambda p: p.update(name=[]), "fhir.patient.name"),
        (lambda p: p.update(birthDate="1948-13-01"), "fhir.resource.invalid"),
    ],
)
def test_a_wrong_patient_is_rejected_with_what_is_wrong(change: Any, code: str) -> None:
    bundle = sample()
    change(bundle["entry"][0]["resource"])
    assert only_rejections(read(bundle)) == [(1, code)]


def test_invalid_resources_are_described_without_echoing_their_values() -> None:
    bundle = sample()
    bundle["entry"][0]["resource"]["nickname"] = "秘密的值"
    (rejection,) = read(bundle)
    assert rejection.code == "fhir.resource.invalid"
    assert "nickname" in rejection.message and "秘密的值" not in rejection.message


def test_each_bad_entry_is_rejected_at_its_own_line() -> None:
    # given the sample plus an unsupported type, a wrong method, a dangling reference and a bad ICD-10 code
    bundle = sample()
    bundle["entry"] += [
        {
            "resource": {"resourceType": "Encounter", "status": "finished"},
            "request": {"method": "POST", "url": "Encounter"},
        },
        {**condition_entry("E11"), "request": {"method": "DELETE", "url": "Condition/1"}},
        condition_entry("E11", subject="urn:uuid:00000000-0000-4000-8000-00000000dead"),
        condition_entry("高血压"),
        "not an entry",
    ]
    # when read
    items = read(bundle)
    # then every problem has its entry number, and the Patient they concern is not a row
    assert only_rejections(items) == [
        (5, "fhir.entry.unsupported_type"),
        (6, "fhir.entry.method"),
        (7, "fhir.reference.unresolved"),
        (8, "condition.code"),
        (9, "fhir.entry.invalid"),
    ]
    assert items[3].source_key == "110108001000012345"


def test_observations_need_the_unit_and_components_we_store() -> None:
    bundle = sample()
    bp, glucose = bundle["entry"][2]["resource"], bundle["entry"][3]["resource"]
    bp["component"] = bp["component"][:1]
    glucose["valueQuantity"] = {"value": 115, "unit": "mg/dL"}
    assert only_rejections(read(bundle)) == [(3, "observation.incomplete"), (4, "fhir.observation.value")]


@pytest.mark.parametrize(
    ("systolic", "diastolic", "glucose"),
    [(320, 86, 6.4), (148, 20, 6.4), (90, 95, 6.4), (148, 86, 55)],
)
def test_implausible_values_are_refused_as_in_the_csv_feed(
    systolic: float, diastolic: float, glucose: float
) -> None:
    bundle = sample()
    bp, sugar = bundle["entry"][2]["resource"], bundle["entry"][3]["resource"]
    bp["component"][0]["valueQuantity"]["value"] = systolic
    bp["component"][1]["valueQuantity"]["value"] = diastolic
    sugar["valueQuantity"]["value"] = glucose
    assert {code for _, code in only_rejections(read(bundle))} == {"observation.range"}


def test_chinese_clinical_edition_codes_keep_their_who_part() -> None:
    bundle = sample()
    bundle["entry"][1]["resource"]["code"]["coding"][0]["code"] = "I10.x00x002"
    (row,) = read(bundle)
    assert [c.code for c in row.conditions] == ["I10"]


def directory() -> CommunityDirectory:
    return CommunityDirectory(
        by_code={"110108001001": "某社区"},
        by_name={"某社区": ["110108001001"]},
        grids={"110108001001-01": "110108001001"},
    )


def set_place(bundle: dict[str, Any], community: str | None, grid: str | None = None) -> None:
    extensions = [
        {"url": f"https://yiyang.example/fhir/StructureDefinition/{kind}", "valueString": value}
        for kind, value in (("community-code", community), ("grid-code", grid))
        if value
    ]
    bundle["entry"][0]["resource"]["address"][0]["extension"] = extensions


def test_communities_resolve_by_code_or_name_and_grids_by_local_number() -> None:
    bundle = sample()
    set_place(bundle, "某社区", "01")
    (row,) = read(bundle, communities=directory())
    assert (row.community_code, row.grid_code) == ("110108001001", "110108001001-01")


@pytest.mark.parametrize(
    ("community", "grid", "code"),
    [
        ("110108999999", None, "geo.community.unknown"),
        ("110108001001", "09", "geo.grid.unknown"),
        (None, "01", "geo.community.unknown"),
    ],
)
def test_an_unknown_community_or_grid_is_refused(community: str | None, grid: str | None, code: str) -> None:
    bundle = sample()
    set_place(bundle, community, grid)
    assert only_rejections(read(bundle, communities=directory())) == [(1, code)]


def test_without_a_directory_the_community_is_passed_on_unchecked() -> None:
    bundle = sample()
    set_place(bundle, "110108999999")
    (row,) = read(bundle)
    assert row.community_code == "110108999999"


def test_an_unsupported_observation_code_is_refused() -> None:
    bundle = sample()
    bundle["entry"][3]["resource"]["code"]["coding"][0]["code"] = "2093-3"  # total cholesterol
    assert only_rejections(read(bundle)) == [(4, "fhir.observation.unsupported_code")]


def test_resolved_and_refuted_conditions_are_accepted_but_not_stored() -> None:
    bundle = sample()
    resolved = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]
    }
    refuted = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "refuted"}
        ]
    }
    bundle["entry"] += [
        condition_entry("J45", clinicalStatus=resolved),
        condition_entry("E11", verificationStatus=refuted),
    ]
    (row,) = read(bundle)
    assert [c.code for c in row.conditions] == ["I10"]


def test_two_patients_with_the_same_record_number_are_not_both_rows() -> None:
    bundle = sample()
    second = copy.deepcopy(bundle["entry"][0])
    second["fullUrl"] = "urn:uuid:7e7e7e7e-0000-4000-8000-000000000002"
    bundle["entry"].append(second)
    items = read(bundle)
    assert isinstance(items[0], SourceRow)
    assert (items[1].line, items[1].code) == (5, "fhir.patient.duplicate")


def test_lines_count_from_the_given_base() -> None:
    bundle = sample()
    bundle["entry"][3]["resource"]["effectiveDateTime"] = "2025"
    items = read(bundle, line_base=100)
    assert [item.line for item in items] == [104]
    assert items[0].code == "fhir.observation.effective"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([], "fhir.bundle.not_bundle"),
        ({"resourceType": "Patient"}, "fhir.bundle.not_bundle"),
        ({"resourceType": "Bundle", "type": "batch", "entry": []}, "fhir.bundle.type"),
        ({"resourceType": "Bundle", "type": "transaction", "entry": {}}, "fhir.bundle.entry"),
    ],
)
def test_a_request_that_is_not_a_transaction_bundle_is_malformed(body: Any, code: str) -> None:
    with pytest.raises(MalformedBundle) as raised:
        read(body)
    assert raised.value.code == code and raised.value.status_code == 400


def test_transaction_response_has_one_entry_per_request_entry() -> None:
    bundle = transaction_response([EntryOutcome(location="Patient/5"), EntryOutcome(), EntryOutcome()])
    model = Bundle.model_validate(bundle)
    assert model.type == "transaction-response"
    assert [e.response.location for e in model.entry] == ["Patient/5", None, None]
    assert {e.response.status for e in model.entry} == {"200 OK"}


def test_searchset_marks_matches_and_includes() -> None:
    patient = {"resourceType": "Patient", "id": "5"}
    condition = {
        "resourceType": "Condition",
        "id": "9",
        "code": {"text": "高血压"},
        "subject": {"reference": "Patient/5"},
    }
    bundle = searchset([patient], base_url="http://test/fhir", total=1, includes=[condition])
    model = Bundle.model_validate(bundle)
    assert [(e.fullUrl, e.search.mode) for e in model.entry] == [
        ("http://test/fhir/Patient/5", "match"),
        ("http://test/fhir/Condition/9", "include"),
    ]
    assert model.total == 1
