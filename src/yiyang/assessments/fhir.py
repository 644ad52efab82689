"""Stored assessments as FHIR R4 resources: QuestionnaireResponse, Observations, RiskAssessment.

Pure: each function takes an ``Assessment`` row already loaded and returns FHIR JSON as a dict
that ``fhir.resources.R4B`` accepts (the tests parse every one). The answers become a
QuestionnaireResponse; the total and the level become two Observations derived from it; a
China-PAR result becomes a RiskAssessment based on it instead. Codes for our instruments live
in our own code system (``{YIYANG_BASE}/CodeSystem/assessment``); LOINC is added where the
instrument has a code we are sure of (PHQ-9 total, 44261-6).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from yiyang.assessments.instruments import get_instrument
from yiyang.assessments.models import Assessment
from yiyang.assessments.scoring import Item, ItemKind
from yiyang.fhir.mapping import LOINC, OBSERVATION_CATEGORY, UCUM, YIYANG_BASE

ASSESSMENT_SYSTEM = f"{YIYANG_BASE}/sid/assessment"
ASSESSMENT_CODES = f"{YIYANG_BASE}/CodeSystem/assessment"
QUESTIONNAIRE_BASE = f"{YIYANG_BASE}/Questionnaire"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
LOINC_TOTALS = {"phq9": ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]")}
# China-PAR categories onto the HL7 risk-probability codes.
CHINA_PAR_RISK = {"low": "low", "medium": "moderate", "high": "high"}


def level_system(instrument: str) -> str:
    return f"{YIYANG_BASE}/CodeSystem/{instrument}-level"


def questionnaire_response(assessment: Assessment) -> dict[str, Any]:
    """The answers as entered (after validation), one item per instrument input."""
    instrument = get_instrument(assessment.instrument)
    items = []
    for item in instrument.items:
        if item.code not in assessment.answers:
            continue
        entry: dict[str, Any] = {"linkId": item.code, "text": f"{item.label_zh} ({item.label_en})"}
        answers = _answers(item, assessment.answers[item.code])
        if answers:
            entry["answer"] = answers
        items.append(entry)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": _id(assessment),
        "identifier": {"system": ASSESSMENT_SYSTEM, "value": str(assessment.id)},
        "questionnaire": f"{QUESTIONNAIRE_BASE}/{instrument.code}",
        "status": "completed",
        "subject": _patient(assessment),
        "authored": _instant(assessment.assessed_at),
        "author": {"display": assessment.assessor},
        "item": items,
    }


def _answers(item: Item, value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if item.kind is ItemKind.points:
        return [{"valueInteger": int(value)}]
    if item.kind is ItemKind.yes_no:
        return [{"valueBoolean": bool(value)}]
    if item.kind is ItemKind.number:
        return [{"valueInteger": int(value)} if item.integer else {"valueDecimal": value}]
    if item.kind is ItemKind.codes:
        return [{"valueString": str(code)} for code in value]
    return [{"valueString": str(value)}]


def score_observations(assessment: Assessment) -> list[dict[str, Any]]:
    """The total (where the instrument has one) and the level, each derived from the response."""
    instrument = get_instrument(assessment.instrument)
    common = {
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "subject": _patient(assessment),
        "effectiveDateTime": _instant(assessment.assessed_at),
        "performer": [{"display": assessment.assessor}],
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{_id(assessment)}"}],
    }
    observations = []
    if assessment.total is not None:
        coding = [
            {
                "system": ASSESSMENT_CODES,
                "code": f"{instrument.code}.total",
                "display": f"{instrument.name_en} total",
            }
        ]
        if instrument.code in LOINC_TOTALS:
            code, display = LOINC_TOTALS[instrument.code]
            coding.insert(0, {"system": LOINC, "code": code, "display": display})
        percent = instrument.code == "china_par"
        observations.append(
            {
                "resourceType": "Observation",
                "id": f"{_id(assessment)}-total",
                **common,
                "code": {"coding": coding, "text": f"{instrument.name_zh} 总分 ({instrument.name_en} total)"},
                "valueQuantity": {
                    "value": _number(assessment.total),
                    "unit": "%" if percent else "分",
                    "system": UCUM,
                    "code": "%" if percent else "{score}",
                },
            }
        )
    observations.append(
        {
            "resourceType": "Observation",
            "id": f"{_id(assessment)}-level",
            **common,
            "code": {
                "coding": [
                    {
                        "system": ASSESSMENT_CODES,
                        "code": f"{instrument.code}.level",
                        "display": f"{instrument.name_en} level",
                    }
                ],
                "text": f"{instrument.name_zh} 等级 ({instrument.name_en} level)",
            },
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": level_system(instrument.code),
                        "code": assessment.level,
                        "display": assessment.level_en,
                    }
                ],
                "text": assessment.level_zh,
            },
        }
    )
    return observations


def risk_assessment(assessment: Assessment) -> dict[str, Any]:
    """A China-PAR result: the 10-year ASCVD probability, or why the equations do not apply."""
    if assessment.instrument != "china_par":
        raise ValueError("only China-PAR results map to a RiskAssessment")
    prediction: dict[str, Any] = {
        "outcome": {
            "text": "10年内发生动脉粥样硬化性心血管病 (atherosclerotic cardiovascular disease within 10 years)"
        },
        "whenRange": {"high": {"value": 10, "unit": "年", "system": UCUM, "code": "a"}},
    }
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": _id(assessment),
        "identifier": [{"system": ASSESSMENT_SYSTEM, "value": str(assessment.id)}],
        "status": "final",
        "method": {"text": "China-PAR (Yang et al., Circulation 2016)"},
        "code": {"text": "10年ASCVD风险评估 (10-year ASCVD risk)"},
        "subject": _patient(assessment),
        "occurrenceDateTime": _instant(assessment.assessed_at),
        "performer": {"display": assessment.assessor},
        "basis": [{"reference": f"QuestionnaireResponse/{_id(assessment)}"}],
        "prediction": [prediction],
    }
    risk = (assessment.details or {}).get("risk")
    if assessment.level in CHINA_PAR_RISK and risk is not None:
        prediction["probabilityDecimal"] = round(float(risk), 4)
        prediction["qualitativeRisk"] = {
            "coding": [{"system": RISK_PROBABILITY, "code": CHINA_PAR_RISK[assessment.level]}],
            "text": assessment.level_zh,
        }
    else:
        resource["note"] = [
            {"text": f"{assessment.level_zh}：China-PAR 仅适用于 35-74 岁 (applies to ages 35-74 only)"}
        ]
    return resource


def assessment_bundle(assessment: Assessment) -> dict[str, Any]:
    """All of an assessment's resources in one collection Bundle."""
    resources = [questionnaire_response(assessment)]
    if assessment.instrument == "china_par":
        resources.append(risk_assessment(assessment))
    else:
        resources.extend(score_observations(assessment))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"{YIYANG_BASE}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }


def _id(assessment: Assessment) -> str:
    return f"assessment-{assessment.id}"


def _patient(assessment: Assessment) -> dict[str, str]:
    return {"reference": f"Patient/{assessment.resident_id}"}


def _instant(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="seconds")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
