"""The FHIR R4 REST facade under /fhir: Patient read and search, $everything, transactions.

HTTP only: reads go through the registry's service, writes through the same import service as
the agency files. Every answer is FHIR JSON (application/fhir+json); every error an
OperationOutcome with its HTTP status, never the app's plain JSON error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import AfterValidator
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from yiyang import __version__
from yiyang.access import consent as consents
from yiyang.access import pii, policy
from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.consent_fhir import consent_from_resource, consent_resource
from yiyang.access.denials import queue_denial
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory, FieldGroup, Purpose
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.deps import EARLIEST_DAY, LATEST_DAY, IdPath, ResidentIdPath, SessionDep, id_from_text
from yiyang.errors import DomainError, Forbidden, NotFound
from yiyang.fhir.bundles import (
    EntryOutcome,
    rows_from_transaction,
    searchset,
    transaction_entries,
    transaction_response,
)
from yiyang.fhir.mapping import (
    FHIR_VERSION,
    HEALTH_RECORD_SYSTEM,
    RESIDENT_ID_SYSTEM,
    RESIDENT_SYSTEM,
    Issue,
    condition_resource,
    observation_resource,
    operation_outcome,
    patient_from_resident,
)
from yiyang.geo.models import Area
from yiyang.geo.service import community_directory
from yiyang.residents import service as residents
from yiyang.residents.identity import IdNumberError, parse_id_number
from yiyang.residents.models import Resident, ResidentStatus, SourceRecord
from yiyang.residents.names import NameTooLong, registry_name
from yiyang.residents.schemas import search_text
from yiyang.sources import service as sources
from yiyang.sources.feeds import CommunityDirectory
from yiyang.sources.models import Feed
from yiyang.sources.records import RowRejection, SourceRow

FHIR_JSON = "application/fhir+json"
DEFAULT_COUNT = 20
MAX_COUNT = 100
MAX_OFFSET = 10_000_000  # as /api/residents: a next link must reach every resident of a district
MAX_CHAIN = 10  # merged-into links followed before giving up


_SURROGATE = re.compile(r"[\ud800-\udfff]")  # UTF-16 halves: no UTF-8 form on their own


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            # A lone surrogate ("\ud800" in the request's JSON) has no UTF-8 form: it is answered
            # as U+FFFD, never a 500.
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            return _SURROGATE.sub("\ufffd", text).encode("utf-8")


class FhirError(DomainError):
    """An error answered as an OperationOutcome; ``issues`` lists every problem found."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        issue_type: str = "invalid",
        issues: Sequence[Issue] = (),
    ) -> None:
        super().__init__(code, message)
        self.status_code = status_code
        self.issues = list(issues) or [Issue(code, message, issue_type)]


# HTTP status -> FHIR IssueType for DomainErrors raised by services.
_ISSUE_TYPES = {
    400: "invalid",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    410: "deleted",
    422: "processing",
}


def _outcome_response(error: DomainError) -> FhirResponse:
    issues = getattr(error, "issues", None) or [
        Issue(error.code, error.message, _ISSUE_TYPES.get(error.status_code, "processing"))
    ]
    return FhirResponse(operation_outcome(issues), status_code=error.status_code)


class FhirRoute(APIRoute):
    """Answers request-validation and domain errors as OperationOutcomes.

    Only errors raised before anything is written, or after the route rolled its work back,
    reach here: the session dependency commits whatever a returned response leaves behind.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def fhir_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                if not _json_body(request):
                    return _outcome_response(_UNSUPPORTED_MEDIA_TYPE)
                return _outcome_response(_request_error(error))
            except HTTPException as error:  # a body FastAPI could not even read
                return _outcome_response(
                    FhirError(
                        error.status_code, "fhir.request.invalid", "请求无法解析 (the request cannot be read)"
                    )
                )
            except DomainError as error:
                return _outcome_response(error)

        return fhir_handler


_UNSUPPORTED_MEDIA_TYPE = FhirError(
    415,
    "fhir.request.media_type",
    f"请求体须为 JSON（{FHIR_JSON}） (the body must be {FHIR_JSON} or application/json)",
    issue_type="not-supported",
)


def _json_body(request: Request) -> bool:
    """Whether FastAPI read the body as JSON: no body, no Content-Type, or application/json or
    application/*+json. Any other type (text/plain, application/fhir+xml) is a 415, as FHIR's
    HTTP page has it, rather than a body that "should be a valid dictionary"."""
    if request.method not in ("POST", "PUT"):
        return True
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    main, _, subtype = content_type.partition("/")
    return not content_type or (main == "application" and (subtype == "json" or subtype.endswith("+json")))


def _request_error(error: RequestValidationError) -> FhirError:
    """A bad path id cannot name a resource (404); any other bad input is a 400."""
    problems = error.errors()
    if any(tuple(p.get("loc", ()))[:1] == ("path",) for p in problems):
        return FhirError(404, "fhir.not_found", "未找到该资源 (resource not found)", issue_type="not-found")
    issues = [
        Issue(
            "fhir.request.invalid",
            f"请求参数无效 (invalid {'.'.join(str(part) for part in p.get('loc', ()))}: {p.get('msg', '')})",
            "invalid",
        )
        for p in problems
    ]
    return FhirError(400, "fhir.request.invalid", "请求参数无效 (invalid request)", issues=issues)


router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute, default_response_class=FhirResponse)

_OUTCOME_DOC = {"description": "OperationOutcome", "content": {FHIR_JSON: {}}}


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + router.prefix


# -- metadata --------------------------------------------------------------------------------


@router.get(
    "/metadata", summary="CapabilityStatement", openapi_extra=no_resident_data("what the server supports")
)
def capability_statement() -> FhirResponse:
    return FhirResponse(_capability_statement())


def _capability_statement() -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "publisher": "yiyang",
        "kind": "instance",
        "software": {"name": "yiyang 医养", "version": __version__},
        "implementation": {
            "description": "社区医养结合平台 FHIR 接口 (community medical-and-elderly care FHIR facade)"
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Patient read and search, Patient/$everything, transaction Bundles of "
                "Patient, Condition, Observation and Consent; Consent read, search, create and update "
                "(docs/fhir.md, docs/access.md)",
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "identifier",
                                "type": "token",
                                "documentation": f"{RESIDENT_ID_SYSTEM} (居民身份证号码), "
                                f"{HEALTH_RECORD_SYSTEM} (健康档案编号) or {RESIDENT_SYSTEM}; "
                                "all but the last need the registry field group",
                            },
                            {
                                "name": "name",
                                "type": "string",
                                "documentation": "汉字或拼音，包含匹配 (contains)",
                            },
                            {
                                "name": "birthdate",
                                "type": "date",
                                "documentation": "prefixes eq, ge, gt, le, lt; "
                                "needs the registry field group",
                            },
                        ],
                        "operation": [
                            {
                                "name": "everything",
                                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                            }
                        ],
                    },
                    {"type": "Condition"},
                    {"type": "Observation"},
                    {
                        "type": "Consent",
                        "interaction": [
                            {"code": "read"},
                            {"code": "search-type"},
                            {"code": "create"},
                            {"code": "update"},
                        ],
                        "searchParam": [{"name": "patient", "type": "reference"}],
                    },
                ],
                "interaction": [{"code": "transaction"}],
            }
        ],
    }


# -- Patient read ----------------------------------------------------------------------------


def _known_resident(session: Session, resident_id: int) -> Resident:
    """The resident, active or merged, or 404. Whether it was merged is registry data: the caller
    authorizes the reader first and only then asks ``_merged``."""
    try:
        return residents.get_resident(session, resident_id)
    except NotFound:
        raise FhirError(
            404, "resident.not_found", "未找到该居民 (Patient not found)", issue_type="not-found"
        ) from None


def _merged(session: Session, resident: Resident) -> FhirError | None:
    """A merged resident is gone (410), and the outcome names its survivor; None for an active one."""
    if resident.status != ResidentStatus.merged:
        return None
    survivor = _survivor(session, resident.id)
    target = f"Patient/{survivor}" if survivor else "another Patient"
    return FhirError(
        410,
        "resident.merged",
        f"该居民档案已合并到 {target} (this Patient was merged into {target})",
        issue_type="deleted",
    )


def _survivor(session: Session, resident_id: int) -> int | None:
    current = session.get(Resident, resident_id)
    for _ in range(MAX_CHAIN):
        if current is None or current.merged_into_id is None:
            break
        current = session.get(Resident, current.merged_into_id)
    if current is not None and current.status == ResidentStatus.active and current.id != resident_id:
        return current.id
    return None


def _patients(session: Session, found: Sequence[Resident]) -> list[dict[str, Any]]:
    """Patient resources for residents, with their community and grid codes looked up at once."""
    area_ids = {a for r in found for a in (r.community_id, r.grid_id) if a}
    codes = (
        dict(session.execute(select(Area.id, Area.code).where(Area.id.in_(area_ids))).all())
        if area_ids
        else {}
    )
    return [
        patient_from_resident(
            resident,
            community_code=codes.get(resident.community_id or 0),
            grid_code=codes.get(resident.grid_id or 0),
        )
        for resident in found
    ]


def _minimised(patients: list[dict[str, Any]], groups: frozenset[FieldGroup]) -> list[dict[str, Any]]:
    """Field minimisation: without the registry group, no ID number, record number or birth date."""
    if FieldGroup.registry in groups:
        return patients
    for patient in patients:
        patient["identifier"] = [
            i for i in patient.get("identifier", ()) if i.get("system") == RESIDENT_SYSTEM
        ]
        patient.pop("birthDate", None)
    return patients


_IDENTITY = resident_data(DataCategory.identity)


@router.get(
    "/Patient/{resident_id}", summary="read Patient", responses={404: _OUTCOME_DOC, 410: _OUTCOME_DOC},
    openapi_extra=_IDENTITY,
)  # fmt: skip
def read_patient(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> FhirResponse:
    resident = _known_resident(session, resident_id)
    groups = policy.authorize_profile(session, actor, resident.id, what="Patient", now=clock())
    if (gone := _merged(session, resident)) is not None:
        return _outcome_response(gone)  # answered, not raised: the allowed read's audit row commits
    return FhirResponse(_minimised(_patients(session, [resident]), groups)[0])


@router.get(
    "/Patient/{resident_id}/$everything",
    summary="Patient $everything",
    responses={404: _OUTCOME_DOC, 410: _OUTCOME_DOC},
    openapi_extra=resident_data(DataCategory.identity, DataCategory.clinical),
)
def patient_everything(
    resident_id: ResidentIdPath, session: SessionDep, request: Request, actor: ActorDep, clock: ClockDep
) -> FhirResponse:
    """The Patient, its Conditions and the latest Observation of each code (what the reader may see)."""
    resident = _known_resident(session, resident_id)
    groups = policy.authorize_profile(session, actor, resident.id, what="Patient/$everything", now=clock())
    if (gone := _merged(session, resident)) is not None:
        return _outcome_response(gone)
    conditions, observations = [], []
    if FieldGroup.clinical in groups:
        conditions = [condition_resource(c) for c in residents.conditions_of(session, resident.id)]
        observations = [
            observation_resource(o) for o in residents.latest_observations(session, resident.id).values()
        ]
    bundle = searchset(
        _minimised(_patients(session, [resident]), groups),
        base_url=_base_url(request),
        total=1,
        includes=[*conditions, *observations],
        links=[("self", str(request.url))],
    )
    return FhirResponse(bundle)


# -- Patient search --------------------------------------------------------------------------

_DATE_PARAM = re.compile(r"(eq|ge|gt|le|lt)?([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")  # ASCII digits only


def _date_range(value: str) -> tuple[str, dt.date, dt.date]:
    """(prefix, first day, day after the last) of a FHIR date search value at its precision."""
    match = _DATE_PARAM.fullmatch(value.strip())
    if not match:
        raise FhirError(
            400,
            "fhir.search.birthdate",
            "birthdate 应为 [eq|ge|gt|le|lt]YYYY[-MM[-DD]] (birthdate must be [prefix]YYYY[-MM[-DD]])",
        )
    prefix, year, month, day = match.group(1) or "eq", int(match.group(2)), match.group(3), match.group(4)
    if not EARLIEST_DAY.year <= year <= LATEST_DAY.year:  # 9999-12-31 has no day after it
        raise FhirError(
            400,
            "fhir.search.birthdate",
            f"birthdate 年份应在 {EARLIEST_DAY.year} 至 {LATEST_DAY.year} 之间 "
            f"(the birthdate year must be from {EARLIEST_DAY.year} to {LATEST_DAY.year})",
        )
    try:
        if day:
            start = dt.date(year, int(month), int(day))
            end = start + dt.timedelta(days=1)
        elif month:
            start = dt.date(year, int(month), 1)
            end = dt.date(year + (start.month == 12), start.month % 12 + 1, 1)
        else:
            start, end = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    except ValueError:
        raise FhirError(
            400, "fhir.search.birthdate", "birthdate 不是有效日期 (birthdate is not a valid date)"
        ) from None
    return prefix, start, end


def _birthdate_clause(value: str):  # type: ignore[no-untyped-def]
    prefix, start, end = _date_range(value)
    column = Resident.birth_date
    return {
        "eq": (column >= start) & (column < end),
        "ge": column >= start,
        "gt": column >= end,
        "le": column < end,
        "lt": column < start,
    }[prefix]


def _identifier_clause(value: str):  # type: ignore[no-untyped-def]
    """system|value, |value or value; an unknown system or an impossible value matches nothing."""
    system: str | None = None
    number = value
    if "|" in value:
        system, _, number = value.partition("|")
        system = system or None  # "|value": FHIR's "no system"; none of ours lacks one, so any
    number = number.strip()
    clauses = []
    if system in (None, RESIDENT_ID_SYSTEM):
        with contextlib.suppress(IdNumberError):  # an impossible ID number names no one
            number_index = pii.lookup_indexes("id_number", parse_id_number(number).number)
            clauses.append(Resident.id_number_bidx.in_(number_index))
    if system in (None, RESIDENT_SYSTEM) and (resident_id := id_from_text(number)) is not None:
        clauses.append(Resident.id == resident_id)
    if system in (None, HEALTH_RECORD_SYSTEM) and number:
        clauses.append(
            Resident.id.in_(
                select(SourceRecord.resident_id).where(
                    SourceRecord.feed == Feed.health, SourceRecord.source_key == number
                )
            )
        )
    return or_(*clauses) if clauses else None


def _registry_identifier(value: str) -> str | None:
    """Which registry value an identifier search compares, if any (the ID number, the health record
    number); a value without a system is compared with both. Our resident system compares none."""
    system, _, number = value.partition("|") if "|" in value else ("", "", value)
    if not number.strip():
        return None  # names no one
    if system == RESIDENT_ID_SYSTEM:
        return "id_number"
    if system == HEALTH_RECORD_SYSTEM:
        return "health_record_number"
    if not system:
        return "id_number" if residents.id_number_query(number) is not None else "health_record_number"
    return None


def _name_clause(value: str):  # type: ignore[no-untyped-def]
    """Characters contained in the name, or letters contained in its pinyin (spaces ignored)."""
    try:
        value = registry_name(value)  # as names are stored: 欧阳 秀兰 finds 欧阳秀兰
    except NameTooLong:
        value = value.strip()  # longer than any stored name: no match, not a refusal
    compact = re.sub(r"[\s'·]", "", value).lower()
    if compact.isascii() and compact.isalpha():
        stored = func.replace(func.lower(Resident.name_pinyin), " ", "")
        return or_(stored.contains(compact, autoescape=True), Resident.name.contains(value, autoescape=True))
    return Resident.name.contains(value, autoescape=True)


_SEARCH_PARAMS = frozenset({"identifier", "name", "birthdate"})  # as the CapabilityStatement lists them
MAX_OR_VALUES = 20  # comma-separated values in one search parameter
MAX_IDENTIFIER = 200  # characters in one identifier value
MAX_NAME = 64  # characters in one name value


def _or_values(parameter: str, value: str, max_length: int | None = None) -> list[str]:
    """The alternatives of a search value: a comma separates values matched as OR, "\\," is a comma
    within a value and "\\\\" a backslash (FHIR R4 Search, "Escaping Search Parameters")."""
    if "\\" not in value:
        values = value.split(",")
    else:
        values = []
        current, escaped = "", False
        for char in value:
            if escaped:
                current += char if char in ",\\" else "\\" + char  # \| and \$ kept as sent
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == ",":
                values.append(current)
                current = ""
            else:
                current += char
        values.append(current + ("\\" if escaped else ""))
    if len(values) > MAX_OR_VALUES:
        raise FhirError(
            400, "fhir.search.too_many_values",
            f"{parameter} 最多 {MAX_OR_VALUES} 个以逗号分隔的值 "
            f"({parameter} takes at most {MAX_OR_VALUES} comma-separated values)",
        )  # fmt: skip
    if max_length is not None and any(len(v) > max_length for v in values):
        raise FhirError(
            400, "fhir.request.invalid",
            f"{parameter} 的每个值最多 {max_length} 个字符 ({parameter}: each value at most {max_length} characters)",
        )  # fmt: skip
    return values


@router.get(
    "/Patient", summary="search Patient", responses={400: _OUTCOME_DOC},
    openapi_extra=resident_data(DataCategory.identity, many=True),
)  # fmt: skip
def search_patients(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    identifier: Annotated[
        str | None,
        Query(max_length=MAX_OR_VALUES * (MAX_IDENTIFIER + 2), description="[system|]value[,...] (OR)"),
        AfterValidator(search_text),
    ] = None,
    name: Annotated[
        str | None,
        Query(
            max_length=MAX_OR_VALUES * (MAX_NAME + 2), description="汉字或拼音 (characters or pinyin)[,...]"
        ),
        AfterValidator(search_text),
    ] = None,
    birthdate: Annotated[
        list[str] | None, Query(max_length=4, description="[eq|ge|gt|le|lt]YYYY[-MM[-DD]][,...]")
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=0, le=MAX_COUNT)] = DEFAULT_COUNT,
    offset: Annotated[int, Query(alias="_offset", ge=0, le=MAX_OFFSET)] = 0,
) -> FhirResponse:
    now = clock()
    for key in request.query_params:
        if key.partition(":")[0] in _SEARCH_PARAMS and ":" in key:
            # FHIR: a modifier the server does not support is refused; ignored, name:exact=X
            # would list everyone in scope.
            raise FhirError(
                400, "fhir.search.modifier",
                f"不支持的搜索修饰符 {key[:64]} (the modifier of {key[:64]} is not supported)",
                issue_type="not-supported",
            )  # fmt: skip
    # A comma separates values matched as OR; repeated parameters (birthdate) are AND.
    identifiers = _or_values("identifier", identifier, MAX_IDENTIFIER) if identifier is not None else []
    name_values = [v for v in _or_values("name", name or "", MAX_NAME) if v.strip()]
    birthdates = [_or_values("birthdate", value) for value in birthdate or ()]
    # Searching by a value answers whether someone has it: only for readers shown it (the registry
    # group), whichever of the OR values it is.
    for searched in dict.fromkeys(s for v in identifiers if (s := _registry_identifier(v)) is not None):
        residents.require_registry_search(session, actor, searched=searched, what="Patient", now=now)
    if birthdate:
        residents.require_registry_search(session, actor, searched="birth_date", what="Patient", now=now)
    visible = policy.visible_residents(session, actor, category=DataCategory.identity, now=now)
    stmt = select(Resident).where(Resident.status == ResidentStatus.active, visible)
    if identifier is not None:
        clauses = [c for value in identifiers if (c := _identifier_clause(value)) is not None]
        stmt = stmt.where(or_(*clauses) if clauses else Resident.id.is_(None))
    if name_values:
        stmt = stmt.where(or_(*(_name_clause(value) for value in name_values)))
    for values in birthdates:
        stmt = stmt.where(or_(*(_birthdate_clause(value) for value in values)))
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    found = (
        session.execute(stmt.order_by(Resident.id).limit(count).offset(offset)).scalars().all()
        if count
        else []
    )

    # The links are the search as processed (FHIR Bundle.link self): parameters we ignored are
    # left out, so a client sees that its gender= or _id= was not applied.
    params = [(k, v) for k, v in request.query_params.multi_items() if k in _SEARCH_PARAMS]
    base = f"{_base_url(request)}/Patient"

    def page(at: int) -> str:
        return f"{base}?{urlencode([*params, ('_count', count), ('_offset', at)])}"

    links = [("self", page(offset))]
    if count and offset + count < total and offset + count <= MAX_OFFSET:  # never a link we refuse
        links.append(("next", page(offset + count)))
    if count and offset > 0:
        links.append(("previous", page(max(0, offset - count))))
    shown = residents.listed_field_groups(actor)
    _audit_listed(session, actor, found, shown, now)
    patients = _minimised(_patients(session, found), shown)
    return FhirResponse(searchset(patients, base_url=_base_url(request), total=total, links=links))


def _audit_listed(
    session: Session, actor: Actor, found: Sequence[Resident], shown: frozenset[FieldGroup], now: dt.datetime
) -> None:
    """A searchset hands out each Patient whole, as a read does: one audit row per Patient on the
    page (so a resident's access log shows who paged through them), none for the total alone."""
    if not policy.current_settings().enforce:
        return
    reason = "search; shown: " + ",".join(sorted(shown))
    for resident in found:
        record_access(
            session, actor, action="read", resource_type="Patient", resident_id=resident.id,
            field_group="profile", purpose=Purpose.care.value, reason=reason, at=now,
        )  # fmt: skip


# -- transaction -----------------------------------------------------------------------------


def _rejection_issue(rejection: RowRejection) -> Issue:
    return Issue(
        rejection.code,
        rejection.message,
        "processing" if rejection.code.startswith("resident.") else "invalid",
        expression=f"Bundle.entry[{rejection.line - 1}]",
        diagnostics=f"entry {rejection.line}",
    )


@router.post(
    "", summary="transaction Bundle", responses={400: _OUTCOME_DOC, 422: _OUTCOME_DOC},
    openapi_extra=resident_data(DataCategory.identity, DataCategory.clinical, registry=True),
)  # fmt: skip
def transaction(
    bundle: Annotated[dict[str, Any], Body(description="a FHIR transaction Bundle (application/fhir+json)")],
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
) -> FhirResponse:
    """Apply a transaction Bundle whole: every Patient stored, or nothing and every problem listed.

    Consent entries (POST Consent, or PUT Consent/<id>) are recorded for existing Patients, each
    checked like ``POST /fhir/Consent``; the other entries go through the registry import, which is
    registry work (``policy.require_registry``)."""
    now = clock()
    raw_entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if isinstance(raw_entries, list) and any(_is_consent(e) for e in raw_entries):
        return _consent_transaction(session, actor, bundle, raw_entries, now)
    keeper = policy.require_registry(session, actor, what="fhir_transaction", action="create", now=now)
    items = rows_from_transaction(bundle, communities=_communities(session))
    rejections = [item for item in items if isinstance(item, RowRejection)]
    if rejections:
        raise _refused(400, rejections)
    rows = [item for item in items if isinstance(item, SourceRow)]
    entry_count = len(bundle.get("entry") or ())
    if not rows:  # nothing to store: no import run either
        return FhirResponse(transaction_response([EntryOutcome()] * entry_count))
    label = _import_label(bundle.get("id"))
    try:
        report = _import_in_scope(session, keeper, rows, label, now)
    except DomainError:
        session.rollback()
        raise
    locations = {
        row.line: f"Patient/{report.resident_ids[row.source_key]}"
        for row in rows
        if row.source_key in report.resident_ids
    }
    outcomes = [EntryOutcome(location=locations.get(line)) for line in range(1, entry_count + 1)]
    return FhirResponse(transaction_response(outcomes))


_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR's id datatype


def _import_label(bundle_id: Any) -> str:
    """The import run's label: the Bundle's id when it is a FHIR id, else a plain label (an id of
    any other text, a lone surrogate say, is not written to the database)."""
    if isinstance(bundle_id, str) and _FHIR_ID.fullmatch(bundle_id):
        return f"FHIR Bundle/{bundle_id}"
    return "FHIR transaction"


def _import_in_scope(
    session: Session, actor: Actor, rows: list[SourceRow], label: str, now: dt.datetime
) -> sources.ImportReport:
    """Import the rows only if the actor may write every resident they would touch.

    Which residents a row reaches is the import's own record linkage (a known health record, the
    ID number's blind index, or a probabilistic match), so the rows are first imported on trial,
    inside a savepoint that is rolled back: it tells which existing residents they reach, and
    where the new ones would live. Each existing resident is then authorized as registry work
    (identity, update), on the registry as it stands before the Bundle, since the Bundle may
    move them; every new resident must lie in the scope of one of the actor's registry roles (an
    officer's area: a new resident placed in no community is in none). Any refusal refuses the
    whole transaction (403) before anything is written. The audit names every resident written."""
    trial = session.begin_nested()
    try:
        report = sources.import_source_rows(session, Feed.health, rows, label=label, wait=False)
        reached = set(report.resident_ids.values())
        placed = _in_registry_scope(session, actor, reached, now) if not report.rejections else set()
    finally:
        trial.rollback()
    if report.rejections:
        raise _refused(422, report.rejections)
    existing = set(session.execute(select(Resident.id).where(Resident.id.in_(reached))).scalars())
    refusal: DomainError | None = None
    for resident_id in sorted(existing):  # every refusal audited, the first one answered
        try:
            policy.authorize(
                session, actor, resident_id, category=DataCategory.identity, what="fhir_transaction",
                action="update", now=now,
            )  # fmt: skip
        except Forbidden as error:
            refusal = refusal or error
    misplaced = reached - existing - placed
    if misplaced:
        for _ in misplaced:
            queue_denial(
                session, actor, action="create", resource_type="fhir_transaction", resident_id=None,
                field_group=DataCategory.identity.value, purpose="care", reason="access.scope", at=now,
            )  # fmt: skip
        refusal = refusal or Forbidden(
            "access.scope",
            f"{len(misplaced)} 位新居民不在您的辖区内 ({len(misplaced)} new Patients are not placed in your area)",
        )
    if refusal is not None:
        raise refusal
    report = sources.import_source_rows(session, Feed.health, rows, label=label, wait=False)
    if report.rejections:  # the trial passed the same rows on the same registry
        raise _refused(422, report.rejections)
    for resident_id in sorted(set(report.resident_ids.values()) - existing):
        record_access(
            session, actor, action="create", resource_type="fhir_transaction", resident_id=resident_id,
            field_group=DataCategory.identity.value, at=now,
        )  # fmt: skip
    return report


def _in_registry_scope(session: Session, actor: Actor, resident_ids: set[int], now: dt.datetime) -> set[int]:
    """Which of these residents lie in the scope of one of the actor's registry roles (as they are now)."""
    if not resident_ids:
        return set()
    if policy.is_system(actor) or not policy.current_settings().enforce:
        return set(resident_ids)
    clauses = [
        policy.scope_clause(session, actor, g, now) for g in actor.grants if policy.SCOPES[g.role].registry
    ]
    if not clauses:
        return set()
    return set(
        session.execute(select(Resident.id).where(Resident.id.in_(resident_ids), or_(*clauses))).scalars()
    )


def _communities(session: Session) -> CommunityDirectory:
    """The geography a Patient's community and grid must be in, as the CSV import reads it."""
    directory = community_directory(session)
    if isinstance(directory, CommunityDirectory):
        return directory
    return CommunityDirectory(directory.by_code, directory.by_name, directory.grids)


def _refused(status_code: int, rejections: Sequence[RowRejection]) -> FhirError:
    return FhirError(
        status_code,
        "fhir.transaction.refused",
        f"事务未执行：{len(rejections)} 个条目有误 (transaction refused: {len(rejections)} entries have problems)",
        issues=[_rejection_issue(r) for r in rejections],
    )


# -- Consent ---------------------------------------------------------------------------------


def _is_consent(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
        and (entry["resource"].get("resourceType") == "Consent")
    )


def _patient_param(value: str) -> int:
    resident_id = id_from_text(value.removeprefix("Patient/"))
    if resident_id is None:
        raise FhirError(
            400, "fhir.search.patient", "patient 应为 Patient/<id> 或 <id> (patient must be Patient/<id>)"
        )
    return resident_id


@router.get(
    "/Consent", summary="search Consent", responses={400: _OUTCOME_DOC},
    openapi_extra=resident_data(DataCategory.identity),
)  # fmt: skip
def search_consents(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    patient: Annotated[str, Query(max_length=40, description="Patient/<id> or <id>")],
) -> FhirResponse:
    """A resident's consent decisions, every one with its status (the history included)."""
    now = clock()
    resident_id = _patient_param(patient)
    resident = _known_resident(session, resident_id)
    rows = consents.consent_history(session, actor, resident_id, now)  # authorized and audited
    if (gone := _merged(session, resident)) is not None:
        return _outcome_response(gone)
    resources = [consent_resource(row, now) for row in rows]
    return FhirResponse(
        searchset(
            resources, base_url=_base_url(request), total=len(resources), links=[("self", str(request.url))]
        )
    )


@router.get(
    "/Consent/{consent_id}", summary="read Consent", responses={404: _OUTCOME_DOC},
    openapi_extra=resident_data(DataCategory.identity),
)  # fmt: skip
def read_consent(consent_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep) -> FhirResponse:
    now = clock()
    row = _consent_or_404(session, consent_id)
    policy.authorize(session, actor, row.resident_id, category=DataCategory.identity, what="consent", now=now)
    return FhirResponse(consent_resource(row, now))


def _consent_or_404(session: Session, consent_id: int):  # type: ignore[no-untyped-def]
    try:
        return consents.get_consent(session, consent_id)
    except NotFound:
        raise FhirError(
            404, "consent.not_found", "未找到该授权 (Consent not found)", issue_type="not-found"
        ) from None


@router.post(
    "/Consent", summary="create Consent", status_code=201, responses={400: _OUTCOME_DOC, 422: _OUTCOME_DOC},
    openapi_extra=resident_data(DataCategory.identity),
)  # fmt: skip
def create_consent(
    resource: Annotated[dict[str, Any], Body(description="a FHIR Consent (application/fhir+json)")],
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
) -> FhirResponse:
    now = clock()
    row = _apply_consent(session, actor, resource, None, now)
    return FhirResponse(
        consent_resource(row, now), status_code=201, headers={"Location": f"Consent/{row.id}"}
    )


@router.put(
    "/Consent/{consent_id}", summary="update Consent", responses={400: _OUTCOME_DOC, 404: _OUTCOME_DOC},
    openapi_extra=resident_data(DataCategory.identity),
)  # fmt: skip
def update_consent(
    consent_id: IdPath,
    resource: Annotated[dict[str, Any], Body(description="a FHIR Consent (application/fhir+json)")],
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
) -> FhirResponse:
    """status inactive withdraws the decision; any other change records a new decision that
    supersedes it (decisions are kept as history, never edited): the answer names the new id."""
    now = clock()
    row = _apply_consent(session, actor, resource, consent_id, now)
    return FhirResponse(consent_resource(row, now), headers={"Location": f"Consent/{row.id}"})


def _apply_consent(session: Session, actor: Actor, resource: Any, consent_id: int | None, now: dt.datetime):  # type: ignore[no-untyped-def]
    wanted = consent_from_resource(resource)
    if consent_id is not None:
        existing = _consent_or_404(session, consent_id)
        if existing.resident_id != wanted.resident_id:
            raise FhirError(
                400, "fhir.consent.patient", "不能更改授权的居民 (a Consent cannot move to another Patient)"
            )
        if not wanted.active:
            return consents.revoke_consent(session, actor, consent_id, now)
    elif not wanted.active:
        raise FhirError(400, "fhir.consent.status", "新建的授权须为 active (a new Consent must be active)")
    resident = _known_resident(session, wanted.resident_id)
    if (gone := _merged(session, resident)) is not None:
        # Only a writer who may see the resident learns of the merge; others get the usual refusal.
        policy.authorize(
            session,
            consents.recorder(session, actor, resident.id, action="create", now=now),
            resident.id,
            category=DataCategory.identity,
            what="consent",
            action="create",
            now=now,
            glass=False,
        )
        raise gone
    return consents.record_consent(
        session, actor, wanted.resident_id, category=wanted.category, recipient_class=wanted.recipient_class,
        purpose=wanted.purpose, decision=wanted.decision, now=now, valid_from=wanted.valid_from,
        valid_until=wanted.valid_until, source=consents.ConsentSource.fhir,
    )  # fmt: skip


def _consent_transaction(
    session: Session, actor: Actor, bundle: dict[str, Any], entries: list[Any], now: dt.datetime
) -> FhirResponse:
    """A transaction of Consent entries only: all recorded, or none and every problem listed."""
    transaction_entries(bundle)  # a transaction Bundle of at most 5000 entries, as for Patients
    if not all(_is_consent(e) for e in entries):
        raise FhirError(
            400, "fhir.transaction.mixed",
            "Consent 须单独成一个事务 (send Consent entries in a transaction of their own)",
        )  # fmt: skip
    issues: list[Issue] = []
    outcomes: list[EntryOutcome] = []
    for index, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry.get("request"), dict) else {}
        method, url = str(request.get("method", "POST")).upper(), str(request.get("url", "Consent"))
        target = (
            id_from_text(url.removeprefix("Consent/"))
            if method == "PUT" and url.startswith("Consent/")
            else None
        )
        if target is None and (method != "POST" or url != "Consent"):
            issues.append(Issue("fhir.entry.request", "仅支持 POST Consent 或 PUT Consent/<id> "
                                "(only POST Consent or PUT Consent/<id>)", "invalid",
                                expression=f"Bundle.entry[{index}].request"))  # fmt: skip
            continue
        try:
            row = _apply_consent(session, actor, entry["resource"], target, now)
        except DomainError as error:
            if error.status_code == 403:
                session.rollback()
                raise
            issues.append(Issue(error.code, error.message, _ISSUE_TYPES.get(error.status_code, "processing"),
                                expression=f"Bundle.entry[{index}]"))  # fmt: skip
            continue
        outcomes.append(
            EntryOutcome(location=f"Consent/{row.id}", status="201 Created" if target is None else "200 OK")
        )
    if issues:
        session.rollback()
        raise FhirError(
            400, "fhir.transaction.refused",
            f"事务未执行：{len(issues)} 个条目有误 (transaction refused: {len(issues)} entries have problems)",
            issues=issues,
        )  # fmt: skip
    return FhirResponse(transaction_response(outcomes))


# -- anything else under /fhir: registered last ----------------------------------------------

_NOT_FOUND = FhirError(404, "fhir.not_found", "未找到该资源 (resource not found)", issue_type="not-found")


@router.api_route(
    "", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False,
    openapi_extra=no_resident_data("answers that no FHIR route serves the path or method"),
)  # fmt: skip
@router.api_route(
    "/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
    openapi_extra=no_resident_data("answers that no FHIR route serves the path or method"),
)  # fmt: skip
def unserved(request: Request) -> Response:
    """What the app's router would answer in plain JSON, as an OperationOutcome: a path no route
    serves is a 404, a method its route lacks a 405 with Allow (FHIR: every error an OperationOutcome)."""
    path = request.scope["path"].removeprefix(request.scope.get("root_path", ""))  # as routes match it
    served = [r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is not unserved]
    allowed = sorted({m for r in served if r.path_regex.match(path) for m in r.methods or ()})
    if allowed:
        response = _outcome_response(
            FhirError(
                405, "fhir.method.not_allowed",
                f"此路径不支持 {request.method[:16]} 方法 (method {request.method[:16]} not allowed here; "
                f"allowed: {', '.join(allowed)})",
                issue_type="not-supported",
            )
        )  # fmt: skip
        response.headers["Allow"] = ", ".join(allowed)
        return response
    if path.endswith("/") and any(r.path_regex.match(path[:-1]) for r in served):
        # As the app's router does: /fhir/Patient/ is /fhir/Patient.
        return RedirectResponse(request.url.replace(path=request.url.path[:-1]), status_code=307)
    return _outcome_response(_NOT_FOUND)
