"""Registry rows as FHIR resources: each one must parse with the R4B models."""

from __future__ import annotations

import datetime as dt

import pytest
from fhir.resources.R4B.condition import Condition as FhirCondition
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient as FhirPatient

from yiyang.fhir.mapping import (
    COMMUNITY_CODE_URL,
    RESIDENT_ID_SYSTEM,
    RESIDENT_SYSTEM,
    Issue,
    condition_resource,
    observation_resource,
    operation_outcome,
    patient_from_resident,
    split_chinese_name,
)
from yiyang.residents.models import Condition, Observation, Resident

UTC = dt.UTC


def make_resident(**overrides: object) -> Resident:
    values: dict[str, object] = {
        "id": 7,
        "id_number": "11010819480315002X",
        "name": "欧阳秀兰",
        "name_pinyin": "ou yang xiu lan",
        "sex": "F",
        "birth_date": dt.date(1948, 3, 15),
        "phone": "13800138000",
        "address": "学院路3号楼2单元101",
        "updated_at": dt.datetime(2025, 3, 1, 1, 30, tzinfo=UTC),
    }
    values.update(overrides)
    return Resident(**values)


@pytest.mark.parametrize(
    ("name", "family", "given"),
    [
        ("张三", "张", "三"),
        ("王小明", "王", "小明"),
        ("欧阳秀兰", "欧阳", "秀兰"),
        ("司马光", "司马", "光"),
        ("诸葛亮", "诸葛", "亮"),
        ("欧阳", "欧", "阳"),  # two characters: a one-character surname and a given name
        ("阿依古丽·买买提", None, None),  # transliterated name: left whole
        ("Li Wei", None, None),
        ("李", None, None),
    ],
)
def test_chinese_names_split_at_the_surname(name: str, family: str | None, given: str | None) -> None:
    assert split_chinese_name(name) == (family, given)


def test_patient_carries_identity_contact_and_community() -> None:
    # given a resident of community 110108001001
    resident = make_resident()
    # when mapped
    patient = patient_from_resident(resident, community_code="110108001001")
    # then it is a valid R4 Patient with both identifiers, the split name and the community
    model = FhirPatient.model_validate(patient)
    assert model.id == "7"
    identifiers = {i.system: i.value for i in model.identifier}
    assert identifiers == {RESIDENT_ID_SYSTEM: "110108********002X", RESIDENT_SYSTEM: "7"}
    assert (model.name[0].text, model.name[0].family, model.name[0].given) == ("欧阳秀兰", "欧阳", ["秀兰"])
    assert model.gender == "female"
    assert model.birthDate == dt.date(1948, 3, 15)
    assert model.telecom[0].value == "138****8000" and model.telecom[0].use == "mobile"
    assert model.meta.security[0].code == "MASKED"
    assert model.address[0].text == "学院路3号楼2单元101"
    assert model.address[0].extension[0].url == COMMUNITY_CODE_URL
    assert model.address[0].extension[0].valueString == "110108001001"
    assert model.meta.lastUpdated == dt.datetime(2025, 3, 1, 1, 30, tzinfo=UTC)


def test_an_unmasked_patient_carries_the_full_id_number_and_phone() -> None:
    # given the same resident mapped for a caller entitled to the full values
    patient = patient_from_resident(make_resident(), masked=False)
    # then nothing is masked and the resource says nothing of masking
    model = FhirPatient.model_validate(patient)
    assert {i.system: i.value for i in model.identifier}[RESIDENT_ID_SYSTEM] == "11010819480315002X"
    assert model.telecom[0].value == "13800138000"
    assert model.meta.security is None


def test_patient_without_optional_facts_is_still_valid() -> None:
    # given a resident known only by name
    resident = make_resident(id_number=None, sex=None, birth_date=None, phone=None, address=None)
    # when mapped
    patient = patient_from_resident(resident)
    # then the Patient says what is unknown and carries no empty elements
    model = FhirPatient.model_validate(patient)
    assert model.gender == "unknown"
    assert model.birthDate is None and model.telecom is None and model.address is None
    assert [i.system for i in model.identifier] == [RESIDENT_SYSTEM]


def test_condition_is_an_active_icd10_problem_of_the_patient() -> None:
    condition = Condition(
        id=3,
        resident_id=7,
        code="E11.9",
        display="2型糖尿病",
        first_seen=dt.date(2020, 5, 1),
        last_seen=dt.date(2025, 1, 1),
    )
    model = FhirCondition.model_validate(condition_resource(condition))
    assert model.subject.reference == "Patient/7"
    assert (model.code.coding[0].system, model.code.coding[0].code) == (
        "http://hl7.org/fhir/sid/icd-10",
        "E11.9",
    )
    assert model.clinicalStatus.coding[0].code == "active"
    assert model.recordedDate == dt.date(2020, 5, 1)


def test_blood_pressure_is_a_panel_with_systolic_and_diastolic_components() -> None:
    observation = Observation(
        id=11,
        resident_id=7,
        code="85354-9",
        value=148.0,
        value2=86.0,
        unit="mmHg",
        effective_at=dt.datetime(2025, 2, 27, 2, 5, tzinfo=UTC),
    )
    model = FhirObservation.model_validate(observation_resource(observation))
    assert model.code.coding[0].code == "85354-9"
    assert model.valueQuantity is None
    components = {c.code.coding[0].code: c.valueQuantity for c in model.component}
    assert components["8480-6"].value == 148 and components["8462-4"].value == 86
    assert {(q.system, q.code) for q in components.values()} == {("http://unitsofmeasure.org", "mm[Hg]")}
    assert model.category[0].coding[0].code == "vital-signs"
    assert model.subject.reference == "Patient/7"


def test_fasting_glucose_is_a_ucum_quantity() -> None:
    observation = Observation(
        id=12,
        resident_id=7,
        code="14771-0",
        value=6.4,
        unit="mmol/L",
        effective_at=dt.datetime(2025, 2, 27, tzinfo=UTC),
    )
    model = FhirObservation.model_validate(observation_resource(observation))
    quantity = model.valueQuantity
    assert (float(quantity.value), quantity.system, quantity.code) == (
        6.4,
        "http://unitsofmeasure.org",
        "mmol/L",
    )
    assert model.category[0].coding[0].code == "laboratory"


def test_an_unknown_unit_is_kept_as_written_without_a_ucum_code() -> None:
    observation = Observation(
        id=13,
        resident_id=7,
        code="14771-0",
        value=115,
        unit="mg/dL",
        effective_at=dt.datetime(2025, 2, 27, tzinfo=UTC),
    )
    quantity = FhirObservation.model_validate(observation_resource(observation)).valueQuantity
    assert quantity.unit == "mg/dL" and quantity.code is None


def test_operation_outcome_lists_each_issue_with_its_code_and_place() -> None:
    outcome = operation_outcome(
        [
            Issue(
                "resident.id_number.checksum",
                "身份证号校验位错误 (check character)",
                expression="Bundle.entry[0]",
            )
        ]
    )
    model = OperationOutcome.model_validate(outcome)
    issue = model.issue[0]
    assert (issue.severity, issue.code) == ("error", "invalid")
    assert issue.details.coding[0].code == "resident.id_number.checksum"
    assert issue.expression == ["Bundle.entry[0]"]
