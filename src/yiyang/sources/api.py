"""Import-run routes: what was imported, when, with what outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from yiyang.deps import IdPath, SessionDep
from yiyang.errors import NotFound
from yiyang.sources.models import ImportRun
from yiyang.sources.schemas import ImportRunRead

router = APIRouter(prefix="/api", tags=["imports"])


@router.get("/import-runs", response_model=list[ImportRunRead])
def list_runs(session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[ImportRunRead]:
    runs = session.execute(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit)).scalars()
    return [ImportRunRead.model_validate(run) for run in runs]


@router.get("/import-runs/{run_id}")
def read_run(run_id: IdPath, session: SessionDep) -> dict:
    run = session.get(ImportRun, run_id)
    if run is None:
        raise NotFound("import_run.not_found", "未找到该导入批次 (import run not found)")
    return {**ImportRunRead.model_validate(run).model_dump(mode="json"), "rejections": run.rejections}
