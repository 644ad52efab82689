"""FHIR Bundles in and out: a health-commission transaction read into ``SourceRow``s, and the
Bundles we answer with (transaction-response, searchset).

Pure: no database and no clock unless the caller passes ``now``. Each Patient in a transaction,
with the Conditions and Observations that reference it, becomes one row of the health feed, so
a Bundle and a WS 365 CSV file go through the same import. docs/fhir.md describes the format.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.condition import Condition as FhirCondition
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from yiyang.deps import moment_in_range
from yiyang.errors import DomainError
from yiyang.fhir.mapping import (
    BP_PANEL,
    COMMUNITY_CODE_URL,
    DIASTOLIC,
    FASTING_GLUCOSE,
    GRID_CODE_URL,
    HEALTH_RECORD_SYSTEM,
    ICD10_SYSTEMS,
    LOINC,
    OBSERVATION_KINDS,
    RESIDENT_ID_SYSTEM,
    SYSTOLIC,
    UCUM,
    ucum_code,
)
from yiyang.residents.identity import IdNumberError, parse_id_number
from yiyang.residents.names import NameTooLong, registry_name
from yiyang.sources.feeds import (
    DIASTOLIC_RANGE,
    GLUCOSE_RANGE,
    SYSTOLIC_RANGE,
    CommunityDirectory,
    RowError,
    parse_icd10,
)
from yiyang.sources.linkage import normalise_phone
from yiyang.sources.models import Feed
from yiyang.sources.records import ConditionFact, ObservationFact, RowRejection, SourceRow

MAX_ENTRIES = 5000  # one request; larger loads go through the file import
MAX_SOURCE_KEY = 64  # source_record.source_key

# A resource type as FHIR spells one; only such a name is repeated in a message.
RESOURCE_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")
SUPPORTED_TYPES = {"Patient": FhirPatient, "Condition": FhirCondition, "Observation": FhirObservation}
# Observations stored as their own code; systolic and diastolic only arrive inside the BP panel.
STORED_OBSERVATION_CODES = frozenset(OBSERVATION_KINDS) - {SYSTOLIC, DIASTOLIC}
# Statuses that mean "not a current fact": accepted in the transaction, not stored.
CONDITION_NOT_CURRENT = frozenset({"inactive", "remission", "resolved"})
CONDITION_NOT_TRUE = frozenset({"refuted", "entered-in-error"})
OBSERVATION_NOT_TRUE = frozenset({"cancelled", "entered-in-error"})
# FHIR strings hold no characters below U+0020 but tab, CR and LF (R4 datatypes, string); a NUL
# cannot even be stored in PostgreSQL. Checked on the text the registry keeps.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Plausible ranges, as the CSV health feed checks them (sources.feeds).
VALUE_RANGES = {SYSTOLIC: SYSTOLIC_RANGE, DIASTOLIC: DIASTOLIC_RANGE, FASTING_GLUCOSE: GLUCOSE_RANGE}


class MalformedBundle(DomainError):
    """The request is not a transaction Bundle we can read at all (HTTP 400)."""

    status_code = 400


@dataclass(slots=True)
class _Entry:
    line: int
    index: int  # 0-based position in Bundle.entry, for FHIRPath expressions
    full_url: str | None
    resource: Any  # the validated R4B model
    rejection: RowRejection | None = None


@dataclass(slots=True)
class _PatientGroup:
    entry: _Entry
    conditions: list[_Entry] = field(default_factory=list)
    observations: list[_Entry] = field(default_factory=list)


def rows_from_transaction(
    bundle_json: Any,
    line_base: int = 0,
    *,
    communities: CommunityDirectory | None = None,
    now: dt.datetime | None = None,
) -> list[SourceRow | RowRejection]:
    """One health-feed row per Patient (with its Conditions and Observations), or rejections.

    ``line`` is the 1-based entry index plus ``line_base``. A Patient whose own entry or any
    entry referencing it is wrong is not turned into a row: each wrong entry is rejected at its
    own line instead. With ``communities``, a community or grid the Patient names must exist
    (a code or a name, as in the CSV feeds). Raises ``MalformedBundle`` when the whole request
    is unreadable.
    """
    entries = transaction_entries(bundle_json)
    now = now or dt.datetime.now(dt.UTC)
    parsed = [_read_entry(raw, index, line_base + index + 1) for index, raw in enumerate(entries)]
    groups, results = _group_by_patient(parsed, entries)
    keys_seen: set[str] = set()
    for group in groups.values():
        for item in _row_or_rejections(group, now, communities):
            if isinstance(item, SourceRow) and item.source_key in keys_seen:
                item = _reject(
                    item.line,
                    "fhir.patient.duplicate",
                    "同一记录标识在 Bundle 中出现两次 (the same record identifier appears twice in the Bundle)",
                    item.source_key,
                    "identifier",
                )
            elif isinstance(item, SourceRow):
                keys_seen.add(item.source_key)
            results.append(item)
    return sorted(results, key=lambda item: item.line)


def transaction_entries(bundle_json: Any) -> list[Any]:
    """The entries of a transaction Bundle of at most ``MAX_ENTRIES``; ``MalformedBundle`` otherwise."""
    if not isinstance(bundle_json, dict) or bundle_json.get("resourceType") != "Bundle":
        raise MalformedBundle(
            "fhir.bundle.not_bundle", "请求体应为 FHIR Bundle 资源 (the request body must be a FHIR Bundle)"
        )
    if bundle_json.get("type") != "transaction":
        raise MalformedBundle(
            "fhir.bundle.type",
            "仅接受 type 为 transaction 的 Bundle (only Bundles of type transaction are accepted)",
        )
    entries = bundle_json.get("entry", [])
    if not isinstance(entries, list):
        raise MalformedBundle("fhir.bundle.entry", "Bundle.entry 应为数组 (Bundle.entry must be an array)")
    if len(entries) > MAX_ENTRIES:
        raise MalformedBundle(
            "fhir.bundle.too_large",
            f"Bundle 条目过多，最多 {MAX_ENTRIES} 条 (too many entries: at most {MAX_ENTRIES})",
            entries=len(entries),
        )
    return entries


def _reject(
    line: int, code: str, message: str, source_key: str | None = None, column: str | None = None
) -> RowRejection:
    return RowRejection(line=line, code=code, message=message, source_key=source_key, column=column)


def _read_entry(raw: Any, index: int, line: int) -> _Entry:
    """Check one entry's envelope and validate its resource against the R4B model."""
    entry = _Entry(line=line, index=index, full_url=None, resource=None)
    if not isinstance(raw, dict):
        entry.rejection = _reject(
            line, "fhir.entry.invalid", "条目应为 JSON 对象 (the entry must be a JSON object)"
        )
        return entry
    full_url = raw.get("fullUrl")
    entry.full_url = full_url if isinstance(full_url, str) and full_url else None
    resource = raw.get("resource")
    resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
    request = raw.get("request")
    method = request.get("method") if isinstance(request, dict) else None
    if resource_type is None:
        entry.rejection = _reject(line, "fhir.entry.no_resource", "条目缺少资源 (the entry has no resource)")
    elif method not in ("POST", "PUT"):
        entry.rejection = _reject(
            line,
            "fhir.entry.method",
            "条目的 request.method 应为 POST 或 PUT (request.method must be POST or PUT)",
        )
    elif not isinstance(resource_type, str) or resource_type not in SUPPORTED_TYPES:
        # A number, list or object is no type at all; a string is named only if it reads as one.
        named = (
            f" {resource_type}"
            if isinstance(resource_type, str) and RESOURCE_TYPE_NAME.fullmatch(resource_type)
            else ""
        )
        entry.rejection = _reject(
            line,
            "fhir.entry.unsupported_type",
            f"不支持的资源类型 (unsupported resource type{named}; accepted: {', '.join(SUPPORTED_TYPES)})",
        )
    if entry.rejection:
        # The type, remembered so dependents of a bad Patient are not blamed; only ever a string.
        entry.resource = resource_type if isinstance(resource_type, str) else None
        return entry
    try:
        entry.resource = SUPPORTED_TYPES[resource_type].model_validate(resource)
    except ValidationError as error:
        entry.resource = resource_type
        entry.rejection = _reject(
            line,
            "fhir.resource.invalid",
            f"资源不符合 FHIR R4 (invalid {resource_type}: {_validation_summary(error)})",
        )
    return entry


def _validation_summary(error: ValidationError, limit: int = 3) -> str:
    """Where the resource is wrong and why, without echoing the values (they may be personal)."""
    parts = []
    for problem in error.errors()[:limit]:
        location = ".".join(str(part) for part in problem.get("loc", ()) if part != "__root__") or "resource"
        message = str(problem.get("msg", "")).removeprefix("Value error, ").splitlines()[0]
        parts.append(f"{location}: {message}"[:160])
    more = len(error.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _group_by_patient(
    entries: list[_Entry], raw_entries: list[Any]
) -> tuple[dict[int, _PatientGroup], list[RowRejection]]:
    """Attach each Condition and Observation to the Patient entry its subject references."""
    groups: dict[int, _PatientGroup] = {}
    by_reference: dict[str, int] = {}
    orphans: list[RowRejection] = []
    for entry in entries:
        if not _is_type(entry, "Patient"):
            continue
        if entry.full_url and entry.full_url in by_reference:
            orphans.append(
                _reject(
                    entry.line,
                    "fhir.entry.duplicate_full_url",
                    "fullUrl 重复 (the fullUrl repeats an earlier entry)",
                )
            )
            continue
        groups[entry.line] = _PatientGroup(entry=entry)
        if entry.full_url:
            by_reference[entry.full_url] = entry.line
        if isinstance(entry.resource, FhirPatient) and entry.resource.id:
            by_reference.setdefault(f"Patient/{entry.resource.id}", entry.line)
    for entry in entries:
        if _is_type(entry, "Patient"):
            continue
        if entry.rejection and not isinstance(entry.resource, FhirCondition | FhirObservation):
            # Unreadable as a model, but a subject in the raw JSON still ties it to its Patient,
            # which then is not stored either.
            subject = _raw_subject(raw_entries[entry.index])
            if subject in by_reference:
                groups[by_reference[subject]].conditions.append(entry)
            else:
                orphans.append(entry.rejection)
            continue
        subject = entry.resource.subject.reference if entry.resource.subject else None
        if not subject or subject not in by_reference:
            orphans.append(
                _reject(
                    entry.line,
                    "fhir.reference.unresolved",
                    "subject 未指向本 Bundle 中的 Patient 条目 (subject must reference a Patient entry in this Bundle)",
                )
            )
            continue
        group = groups[by_reference[subject]]
        (group.conditions if isinstance(entry.resource, FhirCondition) else group.observations).append(entry)
    return groups, orphans


def _is_type(entry: _Entry, resource_type: str) -> bool:
    if entry.resource is None or isinstance(entry.resource, str):
        return entry.resource == resource_type
    return bool(entry.resource.get_resource_type() == resource_type)


def _raw_subject(raw: Any) -> str | None:
    resource = raw.get("resource") if isinstance(raw, dict) else None
    subject = resource.get("subject") if isinstance(resource, dict) else None
    reference = subject.get("reference") if isinstance(subject, dict) else None
    return reference if isinstance(reference, str) else None


def _row_or_rejections(
    group: _PatientGroup, now: dt.datetime, communities: CommunityDirectory | None
) -> list[SourceRow | RowRejection]:
    patient_entry = group.entry
    rejections: list[RowRejection] = []
    row: SourceRow | None = None
    if patient_entry.rejection:
        rejections.append(patient_entry.rejection)
    else:
        outcome = _row_from_patient(patient_entry, now, communities)
        if isinstance(outcome, RowRejection):
            rejections.append(outcome)
        else:
            row = outcome
    source_key = row.source_key if row else None
    conditions: list[ConditionFact] = []
    observations: list[ObservationFact] = []
    for entry in group.conditions:
        fact = entry.rejection or _condition_fact(entry)
        if isinstance(fact, RowRejection):
            rejections.append(_with_key(fact, source_key))
        elif fact is not None:
            conditions.append(fact)
    for entry in group.observations:
        fact = entry.rejection or _observation_fact(entry)
        if isinstance(fact, RowRejection):
            rejections.append(_with_key(fact, source_key))
        elif fact is not None:
            observations.append(fact)
    if rejections or row is None:
        return list(rejections)
    row.conditions = _unique_conditions(conditions)
    row.observations = observations
    return [row]


def _with_key(rejection: RowRejection, source_key: str | None) -> RowRejection:
    if rejection.source_key or not source_key:
        return rejection
    return RowRejection(rejection.line, rejection.code, rejection.message, source_key, rejection.column)


def _unique_conditions(conditions: list[ConditionFact]) -> list[ConditionFact]:
    seen: dict[str, ConditionFact] = {}
    for condition in conditions:
        seen.setdefault(condition.code, condition)
    return list(seen.values())


# -- Patient ---------------------------------------------------------------------------------


def _row_from_patient(
    entry: _Entry, now: dt.datetime, communities: CommunityDirectory | None
) -> SourceRow | RowRejection:
    patient: FhirPatient = entry.resource
    line = entry.line
    identifiers = [i for i in patient.identifier or () if i.value]
    source_key = _source_key(identifiers, entry.full_url)
    if source_key is None:
        return _reject(
            line,
            "fhir.patient.source_key",
            "Patient 需要健康档案编号标识或 fullUrl (the Patient needs a health record identifier or a fullUrl)",
        )
    if len(source_key) > MAX_SOURCE_KEY:
        return _reject(
            line,
            "fhir.patient.source_key",
            f"记录标识过长 (the record identifier exceeds {MAX_SOURCE_KEY} characters)",
        )
    if (
        not source_key.isprintable()
    ):  # a NUL ends the key in SQLite's json_each: it would never be found again
        return _reject(
            line,
            "fhir.patient.source_key",
            "记录标识含有控制字符 (the record identifier contains control characters)",
        )
    name = _patient_name(patient)
    if not name:
        return _reject(
            line, "fhir.patient.name", "Patient 缺少姓名 (the Patient has no name)", source_key, "name"
        )
    address = _address_text(patient)
    for element, text in (("name", name), ("address", address)):
        if text and CONTROL_CHARACTERS.search(text):
            return _control_characters(line, f"Patient.{element}", source_key)
    try:
        name = registry_name(name)  # as the CSV feeds store it: the same resident links either way
    except NameTooLong as error:
        return _reject(line, error.code, error.message, source_key, "name")

    id_number = None
    upgraded = False
    id_sex = id_birth = None
    raw_id = next((i.value for i in identifiers if i.system == RESIDENT_ID_SYSTEM), None)
    if raw_id:
        try:
            parsed = parse_id_number(raw_id, today=now.date())
        except IdNumberError as error:
            message = error.message
            if error.code == "resident.id_number.checksum":  # its hint would reveal part of the number
                message = "身份证号校验位错误 (ID number check character is wrong)"
            return _reject(line, error.code, message, source_key, "identifier")
        id_number, upgraded, id_sex, id_birth = (
            parsed.number,
            parsed.upgraded_from_15,
            parsed.sex,
            parsed.birth_date,
        )

    sex = {"male": "M", "female": "F"}.get(patient.gender or "")
    if sex and id_sex and sex != id_sex:
        return _reject(
            line,
            "resident.sex.mismatch",
            "性别与身份证号不一致 (gender disagrees with the ID number)",
            source_key,
            "gender",
        )
    birth_date = patient.birthDate
    if birth_date is not None and not isinstance(birth_date, dt.date):
        return _reject(
            line,
            "fhir.patient.birth_date",
            "出生日期须精确到日 (birthDate must be a full date YYYY-MM-DD)",
            source_key,
            "birthDate",
        )
    if birth_date and id_birth and birth_date != id_birth:
        return _reject(
            line,
            "resident.birth_date.mismatch",
            "出生日期与身份证号不一致 (birthDate disagrees with the ID number)",
            source_key,
            "birthDate",
        )
    community_code = _address_extension(patient, COMMUNITY_CODE_URL)
    grid_code = _address_extension(patient, GRID_CODE_URL)
    if communities is not None and (community_code or grid_code):
        try:
            if not community_code:
                raise RowError("geo.community.unknown", "网格须与社区一起给出 (a grid needs its community)")
            community_code = communities.resolve(community_code)
            grid_code = communities.resolve_grid(grid_code, community_code) if grid_code else None
        except RowError as error:
            return _reject(line, error.code, error.message, source_key, "address")
    last_updated = patient.meta.lastUpdated if patient.meta else None
    observed_at = _moment(last_updated or now)
    if observed_at is None:
        return _reject(
            line,
            "fhir.patient.last_updated",
            "meta.lastUpdated 超出范围 (meta.lastUpdated must be a time from 1900 to 2100)",
            source_key,
            "meta",
        )
    return SourceRow(
        feed=Feed.health,
        line=line,
        source_key=source_key,
        observed_at=observed_at,
        name=name,
        id_number=id_number,
        id_upgraded_from_15=upgraded,
        sex=sex or id_sex,
        birth_date=birth_date or id_birth,
        phone=_phone(patient),
        address=address,
        community_code=community_code,
        grid_code=grid_code,
    )


def _control_characters(line: int, element: str, source_key: str | None = None) -> RowRejection:
    return _reject(
        line,
        "fhir.resource.invalid",
        f"{element} 含有控制字符 ({element} contains control characters)",
        source_key,
        element.partition(".")[2],
    )


def _source_key(identifiers: list[Any], full_url: str | None) -> str | None:
    """The health system's own record id, 健康档案编号, as the CSV health feed keys it; else the fullUrl.

    A fullUrl is absolute (urn:uuid:..., https://...), so it never collides with a record number.
    """
    for identifier in identifiers:
        if identifier.system == HEALTH_RECORD_SYSTEM and identifier.value.strip():
            return identifier.value.strip()
    return full_url


def _patient_name(patient: FhirPatient) -> str | None:
    names = [n for n in patient.name or () if n.use not in ("old", "anonymous", "nickname")]
    names.sort(key=lambda n: {"official": 0, "usual": 1}.get(n.use or "", 2))
    for name in names:
        if name.text and name.text.strip():
            return name.text.strip()
        parts = [name.family or "", *(name.given or ())]
        if any(parts):
            # Chinese order, family name first; Latin-letter names keep spaces between parts.
            joined = (
                "".join(parts)
                if all(not p.isascii() for p in parts if p)
                else " ".join(p for p in parts if p)
            )
            return joined.strip()
    return None


def _phone(patient: FhirPatient) -> str | None:
    for contact in patient.telecom or ():
        if contact.system == "phone" and contact.value:
            phone = normalise_phone(contact.value)
            return phone[:20] if phone else None
    return None


def _address_text(patient: FhirPatient) -> str | None:
    for address in patient.address or ():
        if address.text and address.text.strip():
            return address.text.strip()[:200]
        parts = [address.state, address.city, address.district, *(address.line or ())]
        joined = "".join(p for p in parts if p)
        if joined:
            return joined[:200]
    return None


def _address_extension(patient: FhirPatient, url: str) -> str | None:
    for address in patient.address or ():
        for extension in address.extension or ():
            if extension.url == url:
                value = extension.valueString or extension.valueCode
                if value and value.strip():
                    return value.strip()
    return None


def _moment(value: dt.datetime | dt.date) -> dt.datetime | None:
    """A moment, in the zone it arrived in; a bare date is 00:00 UTC that day, as the CSV feeds
    store days (sources.feeds). None where it has no UTC moment or falls outside 1900 to 2100
    (``deps.moment_in_range``): 0001-01-01T00:00+14:00 cannot be stored."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return moment if moment_in_range(moment) is not None else None


# -- Condition and Observation ---------------------------------------------------------------


def _condition_fact(entry: _Entry) -> ConditionFact | RowRejection | None:
    condition: FhirCondition = entry.resource
    if _status_code(condition.clinicalStatus) in CONDITION_NOT_CURRENT:
        return None
    if _status_code(condition.verificationStatus) in CONDITION_NOT_TRUE:
        return None
    codings = (condition.code.coding or ()) if condition.code else ()
    coding = next((c for c in codings if c.system in ICD10_SYSTEMS and c.code), None)
    if coding is None:
        return _reject(
            entry.line,
            "fhir.condition.code",
            "Condition 需要 ICD-10 编码 (the Condition needs an ICD-10 coding)",
            column="code",
        )
    code = parse_icd10(coding.code)
    if code is None:
        return _reject(
            entry.line,
            "condition.code",
            "诊断编码不是ICD-10格式 (diagnosis code is not ICD-10, e.g. I10 or E11.9)",
            column="code",
        )
    display = coding.display or (condition.code.text if condition.code else None)
    if display and CONTROL_CHARACTERS.search(display):
        return _control_characters(entry.line, "Condition.code")
    return ConditionFact(code=code, display=display[:100] if display else None)


def _status_code(concept: Any) -> str | None:
    if concept is None:
        return None
    return next((c.code for c in concept.coding or () if c.code), None)


def _observation_fact(entry: _Entry) -> ObservationFact | RowRejection | None:
    observation: FhirObservation = entry.resource
    line = entry.line
    if observation.status in OBSERVATION_NOT_TRUE:
        return None
    code = _loinc_code(observation.code)
    if code is None:
        return _reject(
            line,
            "fhir.observation.code",
            "Observation 需要 LOINC 编码 (the Observation needs a LOINC coding)",
            column="code",
        )
    if code not in STORED_OBSERVATION_CODES:
        return _reject(
            line,
            "fhir.observation.unsupported_code",
            f"不支持的观察项目 (unsupported LOINC code {code[:20]}; accepted: {', '.join(sorted(STORED_OBSERVATION_CODES))})",
            column="code",
        )
    effective = observation.effectiveDateTime or observation.effectiveInstant
    if effective is None and observation.effectivePeriod is not None:
        effective = observation.effectivePeriod.start
    if not isinstance(effective, dt.date):
        return _reject(
            line,
            "fhir.observation.effective",
            "Observation 需要精确到日的测量时间 (the Observation needs effectiveDateTime to the day)",
            column="effective",
        )
    effective_at = _moment(effective)
    if effective_at is None:
        return _reject(
            line,
            "fhir.observation.effective",
            "测量时间超出范围 (the effective time must be from 1900 to 2100)",
            column="effective",
        )
    kind = OBSERVATION_KINDS[code]
    if code == BP_PANEL:
        quantities = {}
        for component in observation.component or ():
            component_code = _loinc_code(component.code)
            if component_code in (SYSTOLIC, DIASTOLIC):
                quantities[component_code] = component.valueQuantity
        if SYSTOLIC not in quantities or DIASTOLIC not in quantities:
            return _reject(
                line,
                "observation.incomplete",
                "血压需要收缩压 8480-6 和舒张压 8462-4 两个分量 (the BP panel needs components 8480-6 and 8462-4)",
                column="component",
            )
        systolic = _quantity_value(quantities[SYSTOLIC], SYSTOLIC, line)
        diastolic = _quantity_value(quantities[DIASTOLIC], DIASTOLIC, line)
        if isinstance(systolic, RowRejection):
            return systolic
        if isinstance(diastolic, RowRejection):
            return diastolic
        if systolic <= diastolic:
            return _reject(
                line,
                "observation.range",
                "收缩压应高于舒张压 (systolic must be higher than diastolic)",
                column="component",
            )
        return ObservationFact(code, systolic, kind.ucum, effective_at, value2=diastolic)
    value = _quantity_value(observation.valueQuantity, code, line)
    if isinstance(value, RowRejection):
        return value
    return ObservationFact(code, value, kind.ucum, effective_at)


def _loinc_code(concept: Any) -> str | None:
    if concept is None:
        return None
    return next((c.code.strip() for c in concept.coding or () if c.system == LOINC and c.code), None)


def _quantity_value(quantity: Any, code: str, line: int) -> float | RowRejection:
    """The value, when it is in the one unit we store for the code and within plausible bounds."""
    kind = OBSERVATION_KINDS[code]
    unit = quantity.code if quantity is not None and quantity.system == UCUM and quantity.code else None
    unit = unit or (quantity.unit if quantity is not None else None)
    if quantity is None or quantity.value is None or ucum_code(unit) != kind.ucum:
        return _reject(
            line,
            "fhir.observation.value",
            f"{kind.text} 需要以 {kind.unit} 为单位的数值 (a valueQuantity in {kind.unit} is needed)",
            column="valueQuantity",
        )
    value = float(quantity.value)
    low, high = VALUE_RANGES.get(code, (float("-inf"), float("inf")))
    if not low <= value <= high:
        return _reject(
            line,
            "observation.range",
            f"{kind.text} 超出合理范围 {low:g}-{high:g} {kind.unit} (outside {low:g}-{high:g} {kind.unit})",
            column="valueQuantity",
        )
    return value


# -- Bundles we answer with ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """What happened to one transaction entry, in request order."""

    status: str = "200 OK"
    location: str | None = None


def transaction_response(results: Sequence[EntryOutcome]) -> dict[str, Any]:
    """A transaction-response Bundle: one entry per request entry, in the same order."""
    entries = []
    for result in results:
        response: dict[str, Any] = {"status": result.status}
        if result.location:
            response["location"] = result.location
        entries.append({"response": response})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction-response"}
    if entries:
        bundle["entry"] = entries
    return bundle


def searchset(
    matches: Sequence[dict[str, Any]],
    *,
    base_url: str,
    total: int | None = None,
    includes: Sequence[dict[str, Any]] = (),
    links: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A searchset Bundle: matches first (search.mode match), then included resources."""
    entries = [
        {
            "fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": mode},
        }
        for mode, group in (("match", matches), ("include", includes))
        for resource in group
    ]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    if links:
        bundle["link"] = [{"relation": relation, "url": url} for relation, url in links]
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle
