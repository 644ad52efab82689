"""Registry rows as FHIR R4 resources (Patient, Condition, Observation, OperationOutcome).

Pure: every function takes plain values or ORM rows already loaded and returns FHIR JSON as a
dict, which ``fhir.resources.R4B`` models accept (the tests check each one). The systems and
extension URLs below are documented in docs/fhir.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from yiyang.residents.identity import mask_id_number, mask_phone
from yiyang.residents.models import Condition, Observation, Resident

FHIR_VERSION = "4.0.1"

# WS/T 500 (电子病历共享文档规范) OIDs of the health-information arc 2.16.156.10011:
# .1.3 is the patient's 公民身份号码, .1.2 the 城乡居民健康档案编号 (health record number).
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
HEALTH_RECORD_SYSTEM = "urn:oid:2.16.156.10011.1.2"
# Our own namespaces: the registry's resident id, extensions and error codes.
YIYANG_BASE = "https://yiyang.example/fhir"
RESIDENT_SYSTEM = f"{YIYANG_BASE}/sid/resident"
COMMUNITY_CODE_URL = f"{YIYANG_BASE}/StructureDefinition/community-code"
GRID_CODE_URL = f"{YIYANG_BASE}/StructureDefinition/grid-code"
ERROR_CODE_SYSTEM = f"{YIYANG_BASE}/CodeSystem/error-code"

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
# ICD-10 as senders also write it: the HL7 OID, and an "icd-10-cn" URI for the Chinese editions.
ICD10_SYSTEMS = frozenset({ICD10, "urn:oid:2.16.840.1.113883.6.3", "http://hl7.org/fhir/sid/icd-10-cn"})
V3_OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"  # security labels
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

BP_PANEL = "85354-9"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
FASTING_GLUCOSE = "14771-0"


@dataclass(frozen=True, slots=True)
class ObservationKind:
    display: str  # LOINC long common name
    text: str  # what staff read, Chinese first
    ucum: str  # UCUM code of the unit we store
    unit: str  # the unit as people write it
    category: str  # observation-category code


# LOINC codes the registry keeps (DOMAIN.md "Interoperability"), each with its one accepted unit.
OBSERVATION_KINDS: dict[str, ObservationKind] = {
    BP_PANEL: ObservationKind("Blood pressure panel with all children optional", "血压 (blood pressure)", "mm[Hg]", "mmHg", "vital-signs"),
    SYSTOLIC: ObservationKind("Systolic blood pressure", "收缩压 (systolic)", "mm[Hg]", "mmHg", "vital-signs"),
    DIASTOLIC: ObservationKind("Diastolic blood pressure", "舒张压 (diastolic)", "mm[Hg]", "mmHg", "vital-signs"),
    FASTING_GLUCOSE: ObservationKind(
        "Fasting glucose [Moles/volume] in Serum or Plasma", "空腹血糖 (fasting glucose)", "mmol/L", "mmol/L", "laboratory"
    ),
    "4548-4": ObservationKind(
        "Hemoglobin A1c/Hemoglobin.total in Blood", "糖化血红蛋白 (HbA1c)", "%", "%", "laboratory"
    ),
    "8867-4": ObservationKind("Heart rate", "心率 (heart rate)", "/min", "次/分", "vital-signs"),
    "9279-1": ObservationKind("Respiratory rate", "呼吸频率 (respiratory rate)", "/min", "次/分", "vital-signs"),
    "59408-5": ObservationKind(
        "Oxygen saturation in Arterial blood by Pulse oximetry", "血氧饱和度 (SpO2)", "%", "%", "vital-signs"
    ),
    "8310-5": ObservationKind("Body temperature", "体温 (body temperature)", "Cel", "℃", "vital-signs"),
    "29463-7": ObservationKind("Body weight", "体重 (body weight)", "kg", "kg", "vital-signs"),
    "8302-2": ObservationKind("Body height", "身高 (body height)", "cm", "cm", "vital-signs"),
}  # fmt: skip

# Spellings of a unit that mean the same UCUM unit, as senders and our CSV feeds write them.
UNIT_ALIASES: dict[str, str] = {
    "mmhg": "mm[Hg]", "mm[hg]": "mm[Hg]", "mmol/l": "mmol/L", "%": "%", "/min": "/min", "次/分": "/min",
    "bpm": "/min", "{beats}/min": "/min", "{breaths}/min": "/min", "cel": "Cel", "℃": "Cel", "°c": "Cel",
    "kg": "kg", "cm": "cm",
}  # fmt: skip


def ucum_code(unit: str | None) -> str | None:
    """The UCUM code for a unit as written, or None when we do not recognise it."""
    if not unit:
        return None
    return UNIT_ALIASES.get(unit.strip().lower())


# 复姓: compound surnames common enough to meet in a district registry.
COMPOUND_SURNAMES = frozenset(
    {
        "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
        "夏侯", "轩辕", "令狐", "钟离", "端木", "独孤", "南宫", "西门", "澹台", "公冶", "呼延", "万俟",
        "闻人", "赫连", "申屠", "太史", "濮阳", "司空", "单于", "拓跋", "东郭", "羊舌", "梁丘", "左丘",
        "公羊", "谷梁", "段干", "乐正", "漆雕", "巫马", "仲孙", "叔孙", "淳于", "司寇", "颛孙", "亓官",
        "鲜于", "闾丘",
    }
)  # fmt: skip
_HAN = re.compile(r"^[\u3400-\u9fff\U00020000-\U0002ffff]+$")


def split_chinese_name(name: str) -> tuple[str | None, str | None]:
    """(family, given) for a Han name; (None, None) where splitting would be a guess.

    Names with a middle dot (transliterated names such as 阿依古丽·买买提) or any non-Han
    character are left whole: only ``HumanName.text`` is filled for them.
    """
    name = name.strip()
    if len(name) < 2 or not _HAN.match(name):
        return None, None
    family_length = 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1
    return name[:family_length], name[family_length:]


def _number(value: float) -> int | float:
    """Whole values as integers, so 135 mmHg does not read as a measurement to 0.1."""
    return int(value) if float(value).is_integer() else value


def _instant(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="seconds")


def resident_identifiers(resident: Resident, *, masked: bool = True) -> list[dict[str, Any]]:
    """The Patient's identifiers: the ID number when known (masked unless revealed), and our resident id."""
    identifiers: list[dict[str, Any]] = []
    if resident.id_number:
        identifiers.append(
            {
                "use": "official",
                "type": {
                    "coding": [{"system": V2_0203, "code": "NI"}],
                    "text": "居民身份证号码 (resident ID number)",
                },
                "system": RESIDENT_ID_SYSTEM,
                "value": mask_id_number(resident.id_number) if masked else resident.id_number,
            }
        )
    identifiers.append({"use": "usual", "system": RESIDENT_SYSTEM, "value": str(resident.id)})
    return identifiers


def patient_from_resident(
    resident: Resident,
    *,
    community_code: str | None = None,
    grid_code: str | None = None,
    masked: bool = True,
) -> dict[str, Any]:
    """一人一档 as a FHIR Patient: identity, contact and where the resident lives.

    Every personal datum the facade serves (ID number, phone, address) leaves through this one
    function, so masking belongs here: the ID number and phone are masked (110105********002X,
    138****5678) and the resource is labelled MASKED; the full values only through the audited
    reveal (docs/access.md). ``Patient?identifier=`` still finds the full number by blind index.
    """
    name: dict[str, Any] = {"use": "official", "text": resident.name}
    family, given = split_chinese_name(resident.name)
    if family:
        name["family"] = family
        name["given"] = [given]
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(resident.id),
        "identifier": resident_identifiers(resident, masked=masked),
        "active": True,
        "name": [name],
        "gender": {"M": "male", "F": "female"}.get(resident.sex or "", "unknown"),
    }
    meta: dict[str, Any] = {}
    if resident.updated_at:
        meta["lastUpdated"] = _instant(resident.updated_at)
    if masked and (resident.id_number or resident.phone):
        meta["security"] = [{"system": V3_OBSERVATION_VALUE, "code": "MASKED", "display": "masked"}]
    if meta:
        patient["meta"] = meta
    if resident.birth_date:
        patient["birthDate"] = resident.birth_date.isoformat()
    if resident.phone:
        use = "mobile" if re.fullmatch(r"1\d{10}", resident.phone) else "home"
        value = mask_phone(resident.phone) if masked else resident.phone
        patient["telecom"] = [{"system": "phone", "value": value, "use": use}]
    address: dict[str, Any] = {}
    extensions = [
        {"url": url, "valueString": code}
        for url, code in ((COMMUNITY_CODE_URL, community_code), (GRID_CODE_URL, grid_code))
        if code
    ]
    if extensions:
        address["extension"] = extensions
    if resident.address:
        address["text"] = resident.address
    if address:
        patient["address"] = [{"use": "home", "country": "CN", **address}]
    return patient


def condition_resource(condition: Condition) -> dict[str, Any]:
    """A diagnosis known for a resident: ICD-10, active, on the problem list."""
    coding: dict[str, Any] = {"system": ICD10, "code": condition.code}
    if condition.display:
        coding["display"] = condition.display
    return {
        "resourceType": "Condition",
        "id": str(condition.id),
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item"}]}],
        "code": {"coding": [coding], "text": condition.display or condition.code},
        "subject": {"reference": f"Patient/{condition.resident_id}"},
        "recordedDate": condition.first_seen.isoformat(),
    }


def _quantity(value: float, unit: str | None, kind: ObservationKind | None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": _number(value)}
    code = ucum_code(unit)
    if kind and (code == kind.ucum or not unit):
        quantity.update(unit=kind.unit, system=UCUM, code=kind.ucum)
    elif unit:
        quantity["unit"] = unit
        if code:
            quantity.update(system=UCUM, code=code)
    return quantity


def _loinc_concept(code: str) -> dict[str, Any]:
    kind = OBSERVATION_KINDS.get(code)
    coding: dict[str, Any] = {"system": LOINC, "code": code}
    if kind:
        coding["display"] = kind.display
        return {"coding": [coding], "text": kind.text}
    return {"coding": [coding]}


def observation_resource(observation: Observation) -> dict[str, Any]:
    """A measurement from an agency record; the BP panel carries systolic and diastolic components."""
    kind = OBSERVATION_KINDS.get(observation.code)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(observation.id),
        "status": "final",
        "code": _loinc_concept(observation.code),
        "subject": {"reference": f"Patient/{observation.resident_id}"},
        "effectiveDateTime": _instant(observation.effective_at),
    }
    if kind:
        resource["category"] = [{"coding": [{"system": OBSERVATION_CATEGORY, "code": kind.category}]}]
    if observation.code == BP_PANEL:
        # FHIR vital-signs profile: the panel has no value of its own, only its two components.
        components = [(SYSTOLIC, observation.value), (DIASTOLIC, observation.value2)]
        resource["component"] = [
            {
                "code": _loinc_concept(code),
                "valueQuantity": _quantity(value, observation.unit, OBSERVATION_KINDS[code]),
            }
            for code, value in components
            if value is not None
        ]
    else:
        resource["valueQuantity"] = _quantity(observation.value, observation.unit, kind)
    return resource


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem for an OperationOutcome: our machine code, a message, and where."""

    code: str
    message: str
    issue_type: str = "invalid"  # FHIR IssueType
    expression: str | None = None  # FHIRPath of the element at fault, e.g. "Bundle.entry[2]"
    severity: str = "error"
    diagnostics: str | None = None


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    outcome_issues = []
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.issue_type,
            "details": {"coding": [{"system": ERROR_CODE_SYSTEM, "code": issue.code}], "text": issue.message},
        }
        if issue.diagnostics:
            entry["diagnostics"] = issue.diagnostics
        if issue.expression:
            entry["expression"] = [issue.expression]
        outcome_issues.append(entry)
    return {"resourceType": "OperationOutcome", "issue": outcome_issues}
