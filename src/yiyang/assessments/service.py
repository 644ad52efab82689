"""Capture and history of assessments, and which capability assessments are due.

``record_assessment`` scores a completed instrument with the same pure scorer the CLI uses,
stores answers and result, and for a capability assessment (GB/T 42195-2022) writes the level
into the registry as a ``staff`` source record, so ``resident.capability_level`` follows the
registry's precedence rule and names the assessment as its evidence. The resident is then
re-tiered. Services do not commit: the request or command that owns the unit of work does.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.access.denials import queue_denial
from yiyang.access.policy import DataCategory, Purpose
from yiyang.access.roles import CLINICAL_TEAM_ROLES
from yiyang.assessments.instruments import get_instrument, score
from yiyang.assessments.models import Assessment
from yiyang.assessments.scoring import validate_answers
from yiyang.db import CHINA_TZ, utcnow
from yiyang.errors import Forbidden, Invalid, NotFound
from yiyang.events import ResidentsMerged, ResidentsUnmerged
from yiyang.geo.service import control_characters
from yiyang.residents.models import (
    Condition,
    FactChange,
    Feed,
    LinkMethod,
    Resident,
    ResidentStatus,
    SourceRecord,
)
from yiyang.residents.precedence import FactRef
from yiyang.residents.profile import apply_payload, provenance_from_json, provenance_to_json
from yiyang.residents.service import carry_back, carry_to_survivor, get_active_resident

# China keeps one time zone without daylight saving; a date a person writes is a date there.
CAPABILITY_INSTRUMENT = "gbt42195"
# GB/T 42195-2022 老年人能力评估规范: reassess at least every 6 months, and at once on a change of
# state. 国家基本公共卫生服务规范（第三版）: the self-care table belongs to the yearly health check.
REASSESS_MONTHS: dict[str, int] = {"gbt42195": 6, "self_care": 12}
# Diagnoses that are a change of state calling for a capability reassessment before it is due:
# dementia, stroke, Parkinson's disease, hip fracture, surgical aftercare.
CHANGE_DIAGNOSIS_PREFIXES: tuple[str, ...] = (
    "F00", "F01", "F02", "F03", "G30", "G20", "S72", "Z47", "Z48", "Z540",
    *(f"I{n}" for n in range(60, 70)),
)  # fmt: skip
# 国家基本公共卫生服务规范（第三版）老年人健康管理: residents 65 and over. The never-assessed list's
# default age; another age is a search by birth date (``never_assessed``).
NEVER_ASSESSED_MIN_AGE = 65
FUTURE_TOLERANCE = dt.timedelta(minutes=10)  # clocks on tablets drift
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=CHINA_TZ)


# Recording an assessment is the family-doctor team's act: a capability result becomes a
# ``staff`` source record and the registry's level, and every result can re-tier the resident.
RECORDER_ROLES = CLINICAL_TEAM_ROLES
RECORDER_REFUSED = "assessment.recorder.role"


def may_record(actor: Actor) -> bool:
    """Whether ``as_recorder`` would let the actor record (for offering the form, not deciding)."""
    return (
        policy.is_system(actor)
        or not policy.current_settings().enforce
        or bool(actor.acting_as(RECORDER_ROLES).grants)
    )


def as_recorder(session: Session, actor: Actor, resident_id: int, *, now: dt.datetime) -> Actor:
    """The actor holding only their ``RECORDER_ROLES`` (family doctor, nurse, health manager), so that
    scope and consent are then decided by a team grant and never by another role the person holds
    (a family member, a resident, station staff); refused (403, audited) without one."""
    if policy.is_system(actor) or not policy.current_settings().enforce:
        return actor
    recorder = actor.acting_as(RECORDER_ROLES)
    if recorder.grants:
        return recorder
    queue_denial(
        session, actor, action="create", resource_type="assessment", resident_id=resident_id,
        field_group=DataCategory.clinical.value, purpose=Purpose.care.value, reason=RECORDER_REFUSED, at=now,
    )  # fmt: skip
    raise Forbidden(
        RECORDER_REFUSED,
        "只有签约团队的医生、护士或健康管理师可以录入评估 (only a family doctor, nurse or health manager may record an assessment)",
    )


@dataclass(slots=True)
class AssessmentCapture:
    """A completed instrument as staff entered it."""

    instrument: str
    answers: Mapping[str, Any]
    assessed_at: dt.datetime
    assessor: str
    options: Mapping[str, Any] = field(default_factory=dict)


def record_assessment(
    session: Session,
    resident_id: int,
    capture: AssessmentCapture,
    *,
    recorded_by: str,
    now: dt.datetime | None = None,
    retier: bool = True,
) -> Assessment:
    """Score and store an assessment; a capability level also becomes a registry fact."""
    now = now or utcnow()
    resident = get_active_resident(session, resident_id)
    instrument = get_instrument(capture.instrument)
    assessed_at = _checked_time(capture.assessed_at, now)
    assessor = (capture.assessor or "").strip()
    if not assessor:
        raise Invalid("assessment.assessor.missing", "请填写评估人 (the assessor is required)")
    if control_characters(assessor):  # PostgreSQL text cannot hold a NUL: it would fail the write
        raise Invalid(
            "assessment.assessor.invalid",
            "评估人不能含有控制字符 (the assessor cannot contain control characters)",
        )
    result = score(instrument.code, capture.answers, **dict(capture.options))
    values = validate_answers(instrument.code, instrument.items, capture.answers)
    dumped = result.model_dump(mode="json")
    assessment = Assessment(
        resident_id=resident.id,
        instrument=instrument.code,
        answers={code: list(value) if isinstance(value, tuple) else value for code, value in values.items()},
        options={name: int(value) for name, value in capture.options.items()},
        total=result.total,
        max_total=result.max_total,
        level=result.level,
        level_zh=result.level_zh[:64],
        level_en=result.level_en[:100],
        flags=dumped["flags"],
        explanation=[{k: v for k, v in line.items() if v is not None} for line in dumped["explanation"]],
        details=dumped["details"],
        assessed_at=assessed_at,
        assessor=assessor[:64],
        recorded_by=recorded_by[:64],
        recorded_at=now,
        reassess_due_on=reassessment_due_on(instrument.code, assessed_at),
    )
    session.add(assessment)
    session.flush()
    if instrument.code == CAPABILITY_INSTRUMENT:
        _record_capability(session, resident, assessment, now)
    if retier:
        from yiyang.tiers.service import retier_residents  # tiers read assessments; imported late

        retier_residents(session, [resident.id], trigger="assessment", as_of=now.astimezone(CHINA_TZ).date())
    return assessment


def _checked_time(value: dt.datetime, now: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=CHINA_TZ)  # a form's datetime-local is the assessor's wall clock
    try:
        too_early = value < EARLIEST
    except OverflowError:  # an offset pushing year 1 out of range
        too_early = True
    if too_early:
        raise Invalid(
            "assessment.assessed_at.too_early", "评估时间早于1990年 (the assessment time is before 1990)"
        )
    if value > now + FUTURE_TOLERANCE:
        raise Invalid(
            "assessment.assessed_at.future", "评估时间不能晚于当前时间 (the assessment time is in the future)"
        )
    return value


def _record_capability(
    session: Session, resident: Resident, assessment: Assessment, now: dt.datetime
) -> None:
    """The level as a staff source record, folded into the profile by the registry's precedence."""
    payload = {
        "capability_level": assessment.level,
        "instrument": assessment.instrument,
        "assessment_id": assessment.id,
    }
    record = SourceRecord(
        feed=Feed.staff,
        source_key=assessment_source_key(assessment.id),
        resident_id=resident.id,
        observed_at=assessment.assessed_at,
        recorded_at=now,
        content_hash=hashlib.blake2b(
            orjson.dumps([payload, assessment.assessed_at.isoformat()], option=orjson.OPT_SORT_KEYS),
            digest_size=16,
        ).hexdigest(),
        payload=payload,
        link_method=LinkMethod.manual,
    )
    session.add(record)
    session.flush()
    assessment.source_record_id = record.id
    profile = {"capability_level": resident.capability_level}
    provenance = provenance_from_json(resident.provenance)
    ref = FactRef(record.id, Feed.staff.value, assessment.assessed_at)
    for change in apply_payload(profile, provenance, payload, ref):
        resident.capability_level = change.new_value
        resident.provenance = provenance_to_json(provenance)
        resident.updated_at = now
        session.add(
            FactChange(
                resident_id=resident.id, attribute=change.attribute, old_value=change.old_value,
                new_value=change.new_value, old_source_record_id=change.old_ref.source_record_id if change.old_ref else None,
                new_source_record_id=record.id, reason=change.reason, changed_at=now,
            )
        )  # fmt: skip
    session.flush()


def assessment_source_key(assessment_id: int) -> str:
    """The staff source record's key; the tier engine reads an assessment id back from it."""
    return f"assessment:{assessment_id}"


def assessment_id_from_key(source_key: str | None) -> int | None:
    if source_key and source_key.startswith("assessment:") and source_key[11:].isdigit():
        return int(source_key[11:])
    return None


# -- reads ------------------------------------------------------------------------------------


def get_assessment(session: Session, assessment_id: int) -> Assessment:
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFound(
            "assessment.not_found", "未找到该评估记录 (assessment not found)", assessment_id=assessment_id
        )
    return assessment


def assessments_of(
    session: Session, resident_id: int, instrument: str | None = None, limit: int = 100
) -> Sequence[Assessment]:
    """A resident's assessments, newest first."""
    stmt = select(Assessment).where(Assessment.resident_id == resident_id)
    if instrument:
        stmt = stmt.where(Assessment.instrument == get_instrument(instrument).code)
    stmt = stmt.order_by(Assessment.assessed_at.desc(), Assessment.id.desc()).limit(limit)
    return session.execute(stmt).scalars().all()


# -- reassessment -----------------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later; the 31st becomes the month's last day."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def reassessment_due_on(instrument: str, assessed_at: dt.datetime) -> dt.date | None:
    months = REASSESS_MONTHS.get(instrument)
    if months is None:
        return None
    return add_months(assessed_at.astimezone(CHINA_TZ).date(), months)


@dataclass(frozen=True, slots=True)
class ReassessmentDue:
    resident_id: int
    name: str
    community_id: int | None
    assessment_id: int
    assessed_at: dt.datetime
    level: str
    due_on: dt.date
    status: str  # overdue | changed | due
    new_diagnoses: tuple[str, ...] = ()
    registry_level: str | None = None


def capability_reassessments_due(
    session: Session,
    *,
    today: dt.date,
    within_days: int = 30,
    community_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    visible: ColumnElement[bool] | None = None,
) -> tuple[int, list[ReassessmentDue]]:
    """Residents whose latest capability assessment is overdue, due within ``within_days``, or
    overtaken by a change: a diagnosis first seen after it (``CHANGE_DIAGNOSIS_PREFIXES``) or a
    different level now in the registry (reported later by another feed). Most urgent first."""
    # One row per resident: the latest assessment, the last recorded where two share a time (a
    # corrected re-entry), as the tier engine reads them; a max(assessed_at) join listed both.
    ranked = (
        select(
            Assessment.id,
            func.row_number()
            .over(
                partition_by=Assessment.resident_id,
                order_by=(Assessment.assessed_at.desc(), Assessment.id.desc()),
            )
            .label("rank"),
        )
        .where(Assessment.instrument == CAPABILITY_INSTRUMENT)
        .subquery()
    )
    changed_dx = (
        select(Condition.id)
        .where(
            Condition.resident_id == Assessment.resident_id,
            Condition.first_seen > func.date(Assessment.assessed_at),
            or_(
                *(
                    func.replace(Condition.code, ".", "").like(f"{prefix}%")
                    for prefix in CHANGE_DIAGNOSIS_PREFIXES
                )
            ),
        )
        .exists()
    )
    level_changed = and_(
        Resident.capability_level.is_not(None), Resident.capability_level != Assessment.level
    )
    horizon = today + dt.timedelta(days=within_days)
    stmt = (
        select(Assessment, Resident.name, Resident.community_id, Resident.capability_level)
        .join(ranked, and_(ranked.c.id == Assessment.id, ranked.c.rank == 1))
        .join(Resident, Resident.id == Assessment.resident_id)
        .where(Assessment.instrument == CAPABILITY_INSTRUMENT, Resident.status == ResidentStatus.active)
        .where(or_(Assessment.reassess_due_on <= horizon, changed_dx, level_changed))
    )
    if visible is not None:  # the actor's scope (access.policy.visible_residents)
        stmt = stmt.where(visible)
    if community_id is not None:
        stmt = stmt.where(Resident.community_id == community_id)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(
        stmt.order_by(Assessment.reassess_due_on, Assessment.id).limit(limit).offset(offset)
    ).all()
    diagnoses = _new_diagnoses(session, [(a.resident_id, a.assessed_at) for a, *_ in rows])
    items = []
    for assessment, name, community, registry_level in rows:
        new = diagnoses.get(assessment.resident_id, ())
        level_moved = registry_level is not None and registry_level != assessment.level
        if assessment.reassess_due_on < today:
            status = "overdue"
        elif new or level_moved:
            status = "changed"
        else:
            status = "due"
        items.append(
            ReassessmentDue(
                resident_id=assessment.resident_id, name=name, community_id=community, assessment_id=assessment.id,
                assessed_at=assessment.assessed_at, level=assessment.level, due_on=assessment.reassess_due_on,
                status=status, new_diagnoses=new, registry_level=registry_level,
            )
        )  # fmt: skip
    return total, items


def _new_diagnoses(session: Session, latest: list[tuple[int, dt.datetime]]) -> dict[int, tuple[str, ...]]:
    if not latest:
        return {}
    since = {resident_id: at.astimezone(dt.UTC).date() for resident_id, at in latest}
    rows = session.execute(
        select(Condition.resident_id, Condition.code, Condition.first_seen).where(
            Condition.resident_id.in_(since)
        )
    ).all()
    found: dict[int, list[str]] = {}
    for resident_id, code, first_seen in rows:
        compact = code.upper().replace(".", "")
        if first_seen > since[resident_id] and compact.startswith(CHANGE_DIAGNOSIS_PREFIXES):
            found.setdefault(resident_id, []).append(code)
    return {resident_id: tuple(sorted(codes)) for resident_id, codes in found.items()}


def never_assessed(
    session: Session,
    *,
    today: dt.date,
    min_age: int = NEVER_ASSESSED_MIN_AGE,
    community_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    visible: ColumnElement[bool] | None = None,
    by_birth_date: bool = True,
) -> tuple[int, Sequence[Resident]]:
    """Active residents aged ``min_age`` or more with no capability assessment on record, oldest
    first; ``by_birth_date=False`` lists them by resident id instead (for a reader the birth date is
    withheld from: the order would give the birthdays back, docs/tiers.md)."""
    born_by = _years_before(today, min_age)
    assessed = select(Assessment.id).where(
        Assessment.resident_id == Resident.id, Assessment.instrument == CAPABILITY_INSTRUMENT
    )
    stmt = select(Resident).where(
        Resident.status == ResidentStatus.active, Resident.birth_date <= born_by, ~assessed.exists()
    )
    if visible is not None:  # the actor's scope (access.policy.visible_residents)
        stmt = stmt.where(visible)
    if community_id is not None:
        stmt = stmt.where(Resident.community_id == community_id)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    order = (Resident.birth_date, Resident.id) if by_birth_date else (Resident.id,)
    rows = session.execute(stmt.order_by(*order).limit(limit).offset(offset)).scalars().all()
    return total, rows


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def on_residents_merged(session: Session, event: ResidentsMerged) -> None:
    """A merged resident's assessments follow its records to the survivor (and are noted, so an
    unmerge can take them back)."""
    carry_to_survivor(session, event.merge, "assessment_ids", Assessment)


def on_residents_unmerged(session: Session, event: ResidentsUnmerged) -> None:
    carry_back(session, event.merge, "assessment_ids", Assessment)
