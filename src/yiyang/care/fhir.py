"""A work item as a FHIR R4 Task (validated with ``fhir.resources.R4B``). Mapping only."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.task import Task

from yiyang.care.models import WorkItem, WorkStatus
from yiyang.care.schedule import RULES

SYSTEM = "https://yiyang.example/fhir/CodeSystem"
# Task.status: scheduled work is requested, open work is ready (overdue says so in businessStatus).
STATUS = {
    WorkStatus.scheduled: "requested",
    WorkStatus.due: "ready",
    WorkStatus.overdue: "ready",
    WorkStatus.done: "completed",
    WorkStatus.cancelled: "cancelled",
    WorkStatus.failed: "failed",
}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def work_item_task(item: WorkItem) -> dict[str, Any]:
    rule = RULES.get(item.rule)
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(item.id),
        "status": STATUS[item.status],
        "businessStatus": {"coding": [{"system": f"{SYSTEM}/work-status", "code": item.status.value}],
                           "text": item.status.value},
        "intent": "plan",
        "priority": "urgent" if item.escalation_level else "routine",
        "code": {"coding": [{"system": f"{SYSTEM}/work-kind", "code": item.kind.value}], "text": item.kind.value},
        "description": f"{rule.zh} ({rule.en})" if rule else item.rule,
        "for": {"reference": f"Patient/{item.resident_id}"},
        "authoredOn": _iso(item.created_at),
        "lastModified": _iso(item.status_changed_at),
        "executionPeriod": {"start": item.due_from.isoformat(), "end": item.due_by.isoformat()},
        "restriction": {"period": {"start": item.due_from.isoformat(), "end": item.due_by.isoformat()}},
        "reasonCode": {"coding": [{"system": f"{SYSTEM}/schedule-rule", "code": item.rule}],
                       "text": rule.clause if rule else item.rule},
        "meta": {"tag": [{"system": f"{SYSTEM}/programme", "code": item.programme}]},
    }  # fmt: skip
    if item.owner_user_id is not None:
        task["owner"] = {"reference": f"Practitioner/{item.owner_user_id}"}
    elif item.owner_organisation_id is not None:
        task["owner"] = {"reference": f"Organization/{item.owner_organisation_id}"}
    if item.source_type and item.source_id is not None:
        task["basedOn"] = [
            {"identifier": {"system": f"{SYSTEM}/{item.source_type}", "value": str(item.source_id)}}
        ]
    if item.outcome:
        task["output"] = [
            {"type": {"coding": [{"system": f"{SYSTEM}/outcome", "code": key}], "text": key}, **_value(value)}
            for key, value in item.outcome.items()
            if _value(value)
        ]
    if not task.get("output"):
        task.pop("output", None)
    return Task.model_validate(task).model_dump(mode="json", exclude_none=True)


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    if isinstance(value, str):
        return {"valueString": value}
    if isinstance(value, list):
        return {"valueString": ",".join(str(v) for v in value)}
    return {}
