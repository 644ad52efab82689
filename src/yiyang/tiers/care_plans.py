"""Tier -> care: each tier's service bundle as a proposed care plan with goals and activities.

红: home sickbed + home care bed linkage (家庭病床 + 家庭养老床位联动).
黄: a health butler's personalised chronic-disease or rehab plan and remote monitoring.
绿: wellness and cultural activities, and an invitation to volunteer (银龄互助).

Goals and activities are catalogues of codes; a plan stores codes, so the care loop can match
an activity to its work item type. The bundle comes from the decided tier; the reasons add
what they call for whatever their tier (a red resident with hypertension still needs the
hypertension follow-ups). Pure: no database.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from yiyang.tiers.rules import Tier, TierDecision


@dataclass(frozen=True, slots=True)
class Goal:
    code: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Activity:
    code: str
    zh: str
    en: str
    performer_zh: str  # who does it, as the district's services are organised
    performer_en: str
    schedule_zh: str = ""
    schedule_en: str = ""
    kind: str = "ServiceRequest"  # the FHIR request resource the care loop will raise


GOALS: dict[str, Goal] = {
    goal.code: goal
    for goal in (
        Goal("safe_at_home", "居家安全照护，减少非计划住院", "safe care at home, fewer unplanned admissions"),
        Goal("prevent_complications", "预防压疮、跌倒、误吸等并发症", "prevent pressure injury, falls and aspiration"),
        Goal("carer_support", "照护者得到培训与喘息支持", "carers trained and given respite"),
        Goal("cognitive_safety", "认知障碍者安全，防走失", "safety for a person with dementia, no wandering off"),
        Goal("chronic_control", "慢病指标达标（血压<140/90，空腹血糖<7.0）",
             "chronic disease controlled (BP < 140/90, fasting glucose < 7.0)"),
        Goal("rehab_recovery", "术后功能恢复", "recover function after surgery"),
        Goal("fall_prevention", "一年内不发生跌倒", "no fall within a year"),
        Goal("cvd_risk_reduction", "降低心血管病风险", "lower cardiovascular risk"),
        Goal("keep_capability", "维持自理能力，延缓失能", "keep self-care ability, delay disability"),
        Goal("stay_active", "保持健康活力，参与社区生活", "stay healthy and active in community life"),
    )
}  # fmt: skip

ACTIVITIES: dict[str, Activity] = {
    activity.code: activity
    for activity in (
        Activity("home_sickbed", "家庭病床建床评估与上门医疗", "home sickbed: assessment and medical visits",
                 "家庭医生团队", "family-doctor team", "建床后每周上门", "weekly visits once set up"),
        Activity("home_care_bed", "家庭养老床位建设与上门照护", "home care bed: set-up and care visits",
                 "养老驿站", "elderly-care station", "按床位服务协议", "per the home care bed agreement"),
        Activity("bed_linkage_visits", "病床与养老床位联动联合上门", "joint visits linking sickbed and care bed",
                 "家庭医生团队 + 养老驿站", "family-doctor team + station", "每月一次", "monthly"),
        Activity("respite_care", "喘息服务", "respite care for the family carer",
                 "养老驿站", "elderly-care station", "按需", "as needed"),
        Activity("dementia_care", "认知症照护指导与防走失设备", "dementia care coaching and a locator device",
                 "家庭医生团队", "family-doctor team", "每季度", "quarterly"),
        Activity("health_butler", "健康管家：个性化慢病与康复管理方案", "health butler: a personal chronic-disease and rehab plan",
                 "家庭医生团队", "family-doctor team", "建档后两周内", "within two weeks"),
        Activity("remote_monitoring", "纳入远程监测（血压计、血糖仪、可穿戴设备）",
                 "enrol in remote monitoring (BP meter, glucose meter, wearable)", "家庭医生团队", "family-doctor team",
                 "持续", "ongoing", kind="DeviceRequest"),
        Activity("hypertension_follow_up", "高血压随访（每年至少4次面对面）", "hypertension follow-up (>= 4 face-to-face a year)",
                 "家庭医生团队", "family-doctor team", "每季度", "quarterly"),
        Activity("diabetes_follow_up", "糖尿病随访（每年4次空腹血糖及至少4次随访）",
                 "diabetes follow-up (4 fasting-glucose tests and >= 4 visits a year)",
                 "家庭医生团队", "family-doctor team", "每季度", "quarterly"),
        Activity("chronic_follow_up", "慢病随访", "chronic-disease follow-up",
                 "家庭医生团队", "family-doctor team", "每季度", "quarterly"),
        Activity("stroke_rehab", "脑卒中康复训练", "stroke rehabilitation", "社区康复", "community rehabilitation",
                 "每周", "weekly"),
        Activity("rehab_plan", "术后康复计划与上门康复护理", "post-operative rehab plan and home rehab nursing",
                 "家庭医生团队", "family-doctor team", "出院后两周内开始", "starting within two weeks of discharge"),
        Activity("fall_prevention", "居家跌倒风险评估与适老化改造", "home fall-risk check and home adaptation",
                 "养老驿站", "elderly-care station", "一次，之后每年", "once, then yearly"),
        Activity("cvd_risk_management", "心血管病危险因素管理", "cardiovascular risk-factor management",
                 "家庭医生团队", "family-doctor team", "每半年", "every six months"),
        Activity("capability_support", "自理能力训练与辅具评估", "self-care training and assistive devices",
                 "社区康复", "community rehabilitation", "每月", "monthly"),
        Activity("alert_review", "复核近期告警并回访", "review recent alerts and call back",
                 "家庭医生团队", "family-doctor team", "一周内", "within a week", kind="Task"),
        Activity("wellness_activities", "社区健康与文体活动", "community wellness and cultural activities",
                 "社区居委会", "community committee", "每月", "monthly"),
        Activity("annual_health_check", "老年人年度健康管理服务", "yearly health-management service for older adults",
                 "社区卫生服务中心", "community health centre", "每年一次", "yearly"),
        Activity("volunteer_invitation", "邀请加入银龄志愿服务", "invitation to join senior volunteering",
                 "社区居委会", "community committee", "一次", "once", kind="CommunicationRequest"),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Bundle:
    tier: Tier
    title_zh: str
    title_en: str
    goals: tuple[str, ...]
    activities: tuple[str, ...]


BUNDLES: dict[Tier, Bundle] = {
    Tier.red: Bundle(
        Tier.red, "家庭病床+家庭养老床位联动服务", "home sickbed and home care bed linked service",
        ("safe_at_home", "prevent_complications", "carer_support"),
        ("home_sickbed", "home_care_bed", "bed_linkage_visits", "respite_care"),
    ),
    Tier.yellow: Bundle(
        Tier.yellow, "健康管家慢病康复管理", "health-butler chronic-disease and rehab management",
        ("chronic_control",), ("health_butler", "remote_monitoring"),
    ),
    Tier.green: Bundle(
        Tier.green, "健康活力与志愿服务", "wellness and volunteering",
        ("stay_active",), ("wellness_activities", "annual_health_check", "volunteer_invitation"),
    ),
}  # fmt: skip

# What a matched rule adds to any bundle: (goals, activities). Rules added by a district and not
# listed here add nothing beyond their tier's bundle.
REASON_EXTRAS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dementia.diagnosis": (("cognitive_safety",), ("dementia_care",)),
    "dementia.ad8": (("cognitive_safety",), ("dementia_care",)),
    "dementia.minicog": (("cognitive_safety",), ("dementia_care",)),
    "dementia.mmse": (("cognitive_safety",), ("dementia_care",)),
    "dementia.capability_assessment": (("cognitive_safety",), ("dementia_care",)),
    "capability.mild": (("keep_capability",), ("capability_support",)),
    "condition.hypertension": (("chronic_control",), ("hypertension_follow_up",)),
    "condition.diabetes": (("chronic_control",), ("diabetes_follow_up",)),
    "condition.chd": (("chronic_control",), ("chronic_follow_up",)),
    "condition.heart_failure": (("chronic_control",), ("chronic_follow_up",)),
    "condition.copd": (("chronic_control",), ("chronic_follow_up",)),
    "condition.ckd": (("chronic_control",), ("chronic_follow_up",)),
    "condition.parkinson": (("keep_capability",), ("chronic_follow_up",)),
    "condition.severe_mental": ((), ("chronic_follow_up",)),
    "condition.stroke": (("keep_capability",), ("chronic_follow_up", "stroke_rehab")),
    "rehab.post_surgery": (("rehab_recovery",), ("rehab_plan",)),
    "fall.morse_high": (("fall_prevention",), ("fall_prevention",)),
    "cvd.china_par_high": (("cvd_risk_reduction",), ("cvd_risk_management",)),
    "alert.recent": ((), ("alert_review",)),
}


@dataclass(frozen=True, slots=True)
class CarePlanProposal:
    tier: Tier
    goals: tuple[str, ...]
    activities: tuple[str, ...]
    addresses: tuple[str, ...]  # the rule codes the plan answers, most severe first

    @property
    def bundle(self) -> Bundle:
        return BUNDLES[self.tier]


def propose_care_plan(decision: TierDecision) -> CarePlanProposal:
    """The decided tier's bundle plus what each reason calls for, without repeats, in order."""
    return plan_for(decision.tier, [reason.rule.code for reason in decision.reasons])


def plan_for(tier: Tier, rule_codes: Iterable[str]) -> CarePlanProposal:
    """The plan depends only on the tier and which rules matched, so residents share plans."""
    bundle = BUNDLES[tier]
    goals = list(bundle.goals)
    activities = list(bundle.activities)
    addresses: list[str] = []
    for code in rule_codes:
        if code not in addresses:
            addresses.append(code)
        extra_goals, extra_activities = REASON_EXTRAS.get(code, ((), ()))
        goals.extend(g for g in extra_goals if g not in goals)
        activities.extend(a for a in extra_activities if a not in activities)
    return CarePlanProposal(tier, tuple(goals), tuple(activities), tuple(addresses))


def without_rules(
    tier: Tier,
    goals: Sequence[str],
    activities: Sequence[str],
    addresses: Sequence[str],
    dropped: Collection[str],
) -> tuple[list[str], list[str], list[str]]:
    """A stored plan's goals, activities and addresses as shown without what the ``dropped`` rules
    put there: their codes leave ``addresses``, and a goal or activity leaves only when one of them
    called for it and neither the tier's bundle nor a rule that stays does (``REASON_EXTRAS``).
    Anything else the plan holds stays as stored."""
    gone = [code for code in addresses if code in dropped]
    if not gone:
        return list(goals), list(activities), list(addresses)
    kept = [code for code in addresses if code not in dropped]
    bundle = BUNDLES[tier]
    kept_goals, kept_activities = set(bundle.goals), set(bundle.activities)
    for code in kept:
        extra_goals, extra_activities = REASON_EXTRAS.get(code, ((), ()))
        kept_goals.update(extra_goals)
        kept_activities.update(extra_activities)
    gone_goals = {g for code in gone for g in REASON_EXTRAS.get(code, ((), ()))[0]} - kept_goals
    gone_activities = {a for code in gone for a in REASON_EXTRAS.get(code, ((), ()))[1]} - kept_activities
    return (
        [g for g in goals if g not in gone_goals],
        [a for a in activities if a not in gone_activities],
        kept,
    )
