"""Geography routes: the area tree, organisations and households. Thin: the service does the work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from yiyang.access import policy
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory, Purpose
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.deps import MAX_ID, IdPath, SessionDep
from yiyang.geo import service
from yiyang.geo.models import AreaLevel, OrganisationKind
from yiyang.geo.schemas import AreaDetail, AreaRead, AreaRef, HouseholdRead, OrganisationRead

router = APIRouter(prefix="/api", tags=["geography"])

OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many rows")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="rows to skip")]


@router.get("/areas", response_model=list[AreaRead], openapi_extra=no_resident_data("geography"))
def list_areas(
    session: SessionDep,
    actor: ActorDep,  # signed-in users only: nothing outside the staff and resident apps reads the tree
    level: AreaLevel | None = None,
    parent_id: OptionalId = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[AreaRead]:
    areas = service.list_areas(session, level=level, parent_id=parent_id, limit=limit, offset=offset)
    return [AreaRead.model_validate(area) for area in areas]


@router.get(
    "/areas/{area_id}",
    response_model=AreaDetail,
    response_model_exclude_unset=True,
    # The tree is geography; the resident count is a statistic over visible_residents.
    openapi_extra=resident_data(DataCategory.identity, many=True),
)
def get_area(area_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep) -> AreaDetail:
    area = service.get_area(session, area_id)
    children = service.list_children(session, area.id)
    detail = AreaDetail(
        **AreaRead.model_validate(area).model_dump(),
        children=[AreaRead.model_validate(child) for child in children],
    )
    if service.counts_residents(actor):
        counted = policy.visible_residents(
            session, actor, category=DataCategory.identity, purpose=Purpose.statistics, now=clock()
        )
        detail.resident_count = service.resident_counts(session, [area], counted)[area.id]
    return detail


@router.get(
    "/organisations", response_model=list[OrganisationRead], openapi_extra=no_resident_data("organisations")
)
def list_organisations(
    session: SessionDep,
    kind: OrganisationKind | None = None,
    area_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="in this area or below it")] = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[OrganisationRead]:
    organisations = service.list_organisations(
        session, kind=kind, area_id=area_id, limit=limit, offset=offset
    )
    return [OrganisationRead.model_validate(organisation) for organisation in organisations]


@router.get(
    "/households/{household_id}",
    response_model=HouseholdRead,
    response_model_exclude_unset=True,
    # An address with "lives alone" is about the people there: answered through their scope.
    openapi_extra=resident_data(DataCategory.identity, many=True),
)
def get_household(
    household_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> HouseholdRead:
    view = service.read_household(session, actor, household_id, clock())
    summary = view.summary
    household = HouseholdRead(
        id=summary.household.id,
        address=summary.household.address,
        community=AreaRef.model_validate(summary.community),
        grid=AreaRef.model_validate(summary.grid) if summary.grid else None,
    )
    if view.living:
        household.living_arrangement = view.living_arrangement
        household.member_count = summary.member_count
    return household
