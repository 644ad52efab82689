"""Import-run routes: what was imported, when, with what outcome. Registry keepers only; a run's
rejections only to keepers whose area holds the community each rejected row names."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from yiyang.access import policy
from yiyang.access.audit import record_access
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory
from yiyang.access.routes import resident_data
from yiyang.deps import IdPath, SessionDep
from yiyang.errors import NotFound
from yiyang.sources.models import ImportRun
from yiyang.sources.runs import rejection_view
from yiyang.sources.schemas import ImportRunDetail, ImportRunRead

router = APIRouter(prefix="/api", tags=["imports"])
# Runs name files and count rows; their rejections quote lines of agency files.
_REGISTRY = resident_data(DataCategory.identity, many=True, registry=True)


@router.get("/import-runs", response_model=list[ImportRunRead], openapi_extra=_REGISTRY)
def list_runs(
    session: SessionDep, actor: ActorDep, clock: ClockDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[ImportRunRead]:
    now = clock()
    keeper = policy.require_registry(session, actor, what="import_run", now=now)
    runs = session.execute(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit)).scalars().all()
    record_access(session, keeper, action="read", resource_type="import_run", field_group="list", at=now)
    return [ImportRunRead.model_validate(run) for run in runs]


@router.get("/import-runs/{run_id}", response_model=ImportRunDetail, openapi_extra=_REGISTRY)
def read_run(run_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep) -> ImportRunDetail:
    now = clock()
    keeper = policy.require_registry(session, actor, what="import_run", now=now)
    run = session.get(ImportRun, run_id)
    if run is None:
        raise NotFound("import_run.not_found", "未找到该导入批次 (import run not found)")
    # Counts are the keeper's whatever their area; rejected rows only of their communities.
    shown, withheld = rejection_view(session, keeper).split(run.rejections or [])
    record_access(
        session, keeper, action="read", resource_type="import_run", field_group="rejections", at=now
    )
    return ImportRunDetail(
        **ImportRunRead.model_validate(run).model_dump(), rejections=shown, rejections_withheld=withheld
    )
