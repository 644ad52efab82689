"""Care routes under /api/care: teams, contracts, work items, referrals, overdue lists. Thin."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.care import contracts, overdue, referrals, schemas, service
from yiyang.care.fhir import work_item_task
from yiyang.care.models import ReferralDirection
from yiyang.care.schedule import VisitOutcome
from yiyang.deps import MAX_ID, IdPath, ResidentIdPath, SessionDep

router = APIRouter(prefix="/api", tags=["care"])
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# -- teams and contracts --------------------------------------------------------------------------


@router.post(
    "/care/teams",
    response_model=schemas.TeamRead,
    status_code=201,
    openapi_extra=no_resident_data("a family-doctor team: an organisation, no resident"),
)
def create_team(
    body: schemas.TeamCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.TeamRead:
    team = contracts.create_team(
        session, actor, code=body.code, name=body.name, health_centre_id=body.health_centre_id,
        panel_limit=body.panel_limit, lead_user_id=body.lead_user_id,
        specialists=[s.model_dump() for s in body.specialists], now=clock(),
    )  # fmt: skip
    return schemas.TeamRead.of(team, 0)


@router.get(
    "/care/teams/{team_id}",
    response_model=schemas.TeamRead,
    openapi_extra=no_resident_data("a team and the size of its panel, naming no resident"),
)
def read_team(team_id: IdPath, session: SessionDep, actor: ActorDep) -> schemas.TeamRead:
    team = contracts.get_team(session, team_id)
    return schemas.TeamRead.of(team, contracts.panel_size(session, team_id))


@router.post(
    "/care/contracts",
    response_model=schemas.ContractRead,
    status_code=201,
    openapi_extra=resident_data(DataCategory.care_services),
)
def sign_contract(
    body: schemas.ContractCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ContractRead:
    contract = contracts.sign_contract(
        session, actor, resident_id=body.resident_id, team_id=body.team_id, packages=body.packages,
        valid_from=body.valid_from, months=body.months, doctor_user_id=body.doctor_user_id, now=clock(),
    )  # fmt: skip
    return schemas.ContractRead.of(contract, list(contracts.history_of(session, "contract", contract.id)))


@router.get(
    "/care/contracts/{contract_id}",
    response_model=schemas.ContractRead,
    openapi_extra=resident_data(DataCategory.care_services),
)
def read_contract(
    contract_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ContractRead:
    contract = contracts.read_contract(session, actor, contract_id, clock())
    return schemas.ContractRead.of(contract, list(contracts.history_of(session, "contract", contract.id)))


@router.post(
    "/care/contracts/{contract_id}/renew",
    response_model=schemas.ContractRead,
    status_code=201,
    openapi_extra=resident_data(DataCategory.care_services),
)
def renew_contract(
    contract_id: IdPath, body: schemas.ContractRenew, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ContractRead:
    contract = contracts.renew_contract(
        session, actor, contract_id, months=body.months, packages=body.packages, now=clock()
    )
    return schemas.ContractRead.of(contract, list(contracts.history_of(session, "contract", contract.id)))


@router.post(
    "/care/contracts/{contract_id}/terminate",
    response_model=schemas.ContractRead,
    openapi_extra=resident_data(DataCategory.care_services),
)
def terminate_contract(
    contract_id: IdPath,
    body: schemas.ContractTerminate,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
) -> schemas.ContractRead:
    contract = contracts.terminate_contract(session, actor, contract_id, reason=body.reason, now=clock())
    return schemas.ContractRead.of(contract, list(contracts.history_of(session, "contract", contract.id)))


@router.post(
    "/care/group-contracts",
    response_model=schemas.GroupContractRead,
    status_code=201,
    openapi_extra=resident_data(DataCategory.care_services),
)
def sign_group(
    body: schemas.GroupContractCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.GroupContractRead:
    signing = contracts.sign_group(
        session, actor, team_id=body.team_id, institution_id=body.institution_id, resident_ids=body.resident_ids,
        packages=body.packages, valid_from=body.valid_from, months=body.months, now=clock(),
    )  # fmt: skip
    return schemas.GroupContractRead(
        id=signing.group.id, team_id=signing.group.team_id, institution_id=signing.group.institution_id,
        contract_ids=[c.id for c in signing.contracts], skipped_resident_ids=list(signing.skipped),
    )  # fmt: skip


@router.get(
    "/residents/{resident_id}/contracts",
    response_model=list[schemas.ContractRead],
    openapi_extra=resident_data(DataCategory.care_services),
)
def list_contracts(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[schemas.ContractRead]:
    service.resident_of(session, resident_id)
    return [schemas.ContractRead.of(c) for c in contracts.contracts_of(session, actor, resident_id, clock())]


# -- work items -----------------------------------------------------------------------------------


@router.get(
    "/residents/{resident_id}/work-items",
    response_model=list[schemas.WorkItemRead],
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.clinical),
)
def list_work_items(
    resident_id: ResidentIdPath,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    open_only: bool = False,
) -> list[schemas.WorkItemRead]:
    service.resident_of(session, resident_id)
    return [
        schemas.WorkItemRead.of(i)
        for i in service.work_items_of(session, actor, resident_id, clock(), open_only=open_only)
    ]


@router.get(
    "/care/work-items/mine",
    response_model=list[schemas.WorkItemRead],
    openapi_extra=resident_data(DataCategory.care_services, many=True),
)
def my_work(session: SessionDep, actor: ActorDep, clock: ClockDep) -> list[schemas.WorkItemRead]:
    return [schemas.WorkItemRead.of(item) for item, _name in overdue.my_work(session, actor, now=clock())]


@router.get(
    "/care/work-items/{item_id}",
    response_model=schemas.WorkItemRead,
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.clinical),
)
def read_work_item(
    item_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.WorkItemRead:
    item = service.read_work_item(session, actor, item_id, clock())
    return schemas.WorkItemRead.of(item, list(service.work_item_history(session, item.id)))


@router.get(
    "/care/work-items/{item_id}/fhir",
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.clinical),
)
def read_work_item_fhir(
    item_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> dict[str, Any]:
    """The work item as a FHIR R4 Task."""
    return work_item_task(service.read_work_item(session, actor, item_id, clock()))


@router.post(
    "/care/work-items/{item_id}/outcome",
    response_model=schemas.OutcomeRead,
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.clinical),
)
def record_outcome(
    item_id: IdPath, body: schemas.OutcomeIn, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.OutcomeRead:
    outcome = service.Outcome(
        done=body.done, visited_on=body.visited_on, findings=body.findings,
        refer_to_organisation_id=body.refer_to_organisation_id,
        visit=VisitOutcome(
            systolic=body.systolic, diastolic=body.diastolic, fasting_glucose=body.fasting_glucose,
            adverse_reaction=body.adverse_reaction, new_complication=body.new_complication,
            danger_symptoms=body.danger_symptoms, risk_grade=body.risk_grade,
        ),
    )  # fmt: skip
    result = service.record_outcome(session, actor, item_id, outcome, now=clock())
    return schemas.OutcomeRead(
        item=schemas.WorkItemRead.of(result.item), visit_class=result.visit_class,
        next_items=[schemas.WorkItemRead.of(i) for i in result.next_items],
        referral_required=result.referral_required, referral_id=result.referral_id,
    )  # fmt: skip


@router.post(
    "/care/work-items/{item_id}/cancel",
    response_model=schemas.WorkItemRead,
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.clinical),
)
def cancel_work_item(
    item_id: IdPath, body: schemas.CancelIn, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.WorkItemRead:
    return schemas.WorkItemRead.of(
        service.cancel_work_item(session, actor, item_id, reason=body.reason, now=clock())
    )


@router.post(
    "/care/care-plans/{plan_id}/accept",
    response_model=list[schemas.WorkItemRead],
    openapi_extra=resident_data(DataCategory.clinical, DataCategory.care_services),
)
def accept_care_plan(
    plan_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[schemas.WorkItemRead]:
    """A clinician accepts a tier's proposed care plan; its activities become work items."""
    return [
        schemas.WorkItemRead.of(i) for i in service.accept_care_plan(session, actor, plan_id, now=clock())
    ]


# -- overdue lists --------------------------------------------------------------------------------


@router.get(
    "/care/overdue",
    response_model=schemas.OverduePageRead,
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.identity, many=True),
)
def overdue_list(
    session: SessionDep, actor: ActorDep, clock: ClockDep, owner_user_id: OptionalId = None, team_id: OptionalId = None,
    community_id: OptionalId = None, limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.OverduePageRead:  # fmt: skip
    page = overdue.overdue_list(
        session, actor, now=clock(), owner_user_id=owner_user_id, team_id=team_id, community_id=community_id,
        limit=limit, offset=offset,
    )  # fmt: skip
    return schemas.OverduePageRead(
        total=page.total,
        items=[
            schemas.OverdueItem(item=schemas.WorkItemRead.of(r.item), resident_name=r.resident_name,
                                community_id=r.community_id, days_overdue=r.days_overdue)
            for r in page.rows
        ],
    )  # fmt: skip


@router.get(
    "/care/overdue/counts",
    response_model=list[schemas.OverdueCountRead],
    openapi_extra=resident_data(DataCategory.care_services, many=True),
)
def overdue_counts(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    by: Literal["community", "team", "owner"] = "community",
) -> list[schemas.OverdueCountRead]:
    return [
        schemas.OverdueCountRead(key=c.key, label=c.label, overdue=c.overdue, escalated=c.escalated)
        for c in overdue.overdue_counts(session, actor, by=by, now=clock())
    ]


@router.get(
    "/care/overdue.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}}},
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.identity, many=True),
)
def overdue_export(
    session: SessionDep, actor: ActorDep, clock: ClockDep, owner_user_id: OptionalId = None, team_id: OptionalId = None,
    community_id: OptionalId = None,
) -> Response:  # fmt: skip
    content = overdue.overdue_xlsx(
        session, actor, now=clock(), owner_user_id=owner_user_id, team_id=team_id, community_id=community_id
    )
    return Response(
        content, media_type=XLSX, headers={"Content-Disposition": 'attachment; filename="overdue.xlsx"'}
    )


# -- referrals ------------------------------------------------------------------------------------


@router.post(
    "/care/referrals",
    response_model=schemas.ReferralRead,
    status_code=201,
    openapi_extra=resident_data(DataCategory.clinical),
)
def send_referral(
    body: schemas.ReferralCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ReferralRead:
    referral = referrals.send_referral(
        session, actor, resident_id=body.resident_id, to_organisation_id=body.to_organisation_id, reason=body.reason,
        urgent=body.urgent, direction=ReferralDirection(body.direction), from_organisation_id=body.from_organisation_id,
        now=clock(),
    )  # fmt: skip
    return schemas.ReferralRead.of(referral)


@router.get(
    "/care/referrals/{referral_id}",
    response_model=schemas.ReferralRead,
    openapi_extra=resident_data(DataCategory.clinical),
)
def read_referral(
    referral_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ReferralRead:
    return schemas.ReferralRead.of(referrals.read_referral(session, actor, referral_id, clock()))


@router.post(
    "/care/referrals/{referral_id}/accept",
    response_model=schemas.ReferralRead,
    openapi_extra=resident_data(DataCategory.clinical),
)
def accept_referral(
    referral_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ReferralRead:
    return schemas.ReferralRead.of(referrals.accept_referral(session, actor, referral_id, now=clock()))


@router.post(
    "/care/referrals/{referral_id}/complete",
    response_model=schemas.ReferralRead,
    openapi_extra=resident_data(DataCategory.clinical),
)
def complete_referral(
    referral_id: IdPath, body: schemas.ReferralNote, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ReferralRead:
    return schemas.ReferralRead.of(
        referrals.complete_referral(session, actor, referral_id, note=body.note, now=clock())
    )


@router.post(
    "/care/referrals/{referral_id}/return",
    response_model=schemas.ReferralRead,
    openapi_extra=resident_data(DataCategory.clinical),
)
def return_referral(
    referral_id: IdPath, body: schemas.ReferralReturn, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ReferralRead:
    """下转: the receiver sends the resident back to the community with notes."""
    return schemas.ReferralRead.of(
        referrals.return_referral(session, actor, referral_id, note=body.note, now=clock())
    )
