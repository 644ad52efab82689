"""Tiers and proposed care plans as FHIR R4 resources: Flag and CarePlan (with contained Goals).

Pure: plain values or rows already loaded in, FHIR JSON out, accepted by ``fhir.resources.R4B``
(the tests parse every one).

CarePlan status: our ``proposed`` is FHIR ``status=draft, intent=proposal`` (FHIR has no
"proposed" status; the intent says it is a suggestion); ``active`` is ``active, plan``;
``revoked`` and ``completed`` keep their names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from yiyang.fhir.mapping import YIYANG_BASE
from yiyang.tiers.care_plans import ACTIVITIES, BUNDLES, GOALS, without_rules
from yiyang.tiers.models import CarePlan, CarePlanStatus
from yiyang.tiers.rules import TIER_NAMES, Tier, TierReason

TIER_SYSTEM = f"{YIYANG_BASE}/CodeSystem/care-tier"
TIER_REASON_URL = f"{YIYANG_BASE}/StructureDefinition/tier-reason"
GOAL_SYSTEM = f"{YIYANG_BASE}/CodeSystem/care-goal"
ACTIVITY_SYSTEM = f"{YIYANG_BASE}/CodeSystem/care-activity"
PLAN_STATUS = {
    CarePlanStatus.proposed: ("draft", "proposal"),
    CarePlanStatus.active: ("active", "plan"),
    CarePlanStatus.revoked: ("revoked", "proposal"),
    CarePlanStatus.completed: ("completed", "plan"),
}
# What the plan's state makes of its goals (Goal.lifecycleStatus) and activities (detail.status):
# a revoked proposal's goals are cancelled, not still proposed, and nothing of it is to be started.
PART_STATUS = {
    CarePlanStatus.proposed: ("proposed", "not-started"),
    CarePlanStatus.active: ("active", "not-started"),
    CarePlanStatus.revoked: ("cancelled", "cancelled"),
    CarePlanStatus.completed: ("completed", "completed"),
}


def tier_concept(tier: Tier) -> dict[str, Any]:
    zh, en = TIER_NAMES[tier]
    return {"coding": [{"system": TIER_SYSTEM, "code": tier.value, "display": en}], "text": zh}


def tier_flag(
    resident_id: int, tier: Tier, reasons: Sequence[TierReason], changed_at: dt.datetime
) -> dict[str, Any]:
    """The tier as an active Flag on the Patient; each reason in words as an extension."""
    flag: dict[str, Any] = {
        "resourceType": "Flag",
        "id": f"tier-{resident_id}",
        "status": "active",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "admin"}]}
        ],
        "code": tier_concept(tier),
        "subject": {"reference": f"Patient/{resident_id}"},
        "period": {"start": _instant(changed_at)},
        "author": {"display": "yiyang 分级引擎 (tier engine)"},
    }
    if reasons:  # FHIR JSON has no empty arrays: a green tier (or every reason withheld) has none
        flag["extension"] = [{"url": TIER_REASON_URL, "valueString": f"{r.zh} / {r.en}"} for r in reasons]
    return flag


def care_plan_resource(plan: CarePlan, *, dropped_rules: Collection[str] = ()) -> dict[str, Any]:
    """A stored plan with its goals contained and its activities as details (not started while the
    plan is open); without what ``dropped_rules`` put there (the alert rules' part for a reader
    refused sensor data)."""
    tier = Tier(plan.tier)
    status, intent = PLAN_STATUS[CarePlanStatus(plan.status)]
    goal_status, activity_status = PART_STATUS[CarePlanStatus(plan.status)]
    bundle = BUNDLES[tier]
    patient = {"reference": f"Patient/{plan.resident_id}"}
    goal_codes, activity_codes, addresses = without_rules(
        tier, plan.goals, plan.activities, [str(a) for a in plan.addresses], dropped_rules
    )
    goals = [GOALS[code] for code in goal_codes if code in GOALS]
    contained = [
        {
            "resourceType": "Goal",
            "id": "goal-" + goal.code.replace("_", "-"),  # FHIR ids allow no underscore
            "lifecycleStatus": goal_status,
            "description": {
                "coding": [{"system": GOAL_SYSTEM, "code": goal.code, "display": goal.en}],
                "text": goal.zh,
            },
            "subject": patient,
        }
        for goal in goals
    ]
    activities = []
    for code in activity_codes:
        activity = ACTIVITIES.get(code)
        if activity is None:
            continue
        schedule = f"，{activity.schedule_zh}" if activity.schedule_zh else ""
        activities.append(
            {
                "detail": {
                    "kind": activity.kind,
                    "code": {
                        "coding": [
                            {"system": ACTIVITY_SYSTEM, "code": activity.code, "display": activity.en}
                        ],
                        "text": activity.zh,
                    },
                    "status": activity_status,
                    "description": f"{activity.performer_zh}{schedule} ({activity.performer_en}, {activity.schedule_en})",
                }
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": str(plan.id),
        "status": status,
        "intent": intent,
        "category": [tier_concept(tier)],
        "title": f"{bundle.title_zh} ({bundle.title_en})",
        "subject": patient,
        "created": _instant(plan.created_at),
        "supportingInfo": [{"reference": f"Flag/tier-{plan.resident_id}"}],
    }
    if contained:
        resource["contained"] = contained
        resource["goal"] = [{"reference": f"#{goal['id']}"} for goal in contained]
    if activities:
        resource["activity"] = activities
    if addresses:
        resource["note"] = [{"text": "依据规则 (rules answered): " + ", ".join(addresses)}]
    return resource


def _instant(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat(timespec="seconds")
