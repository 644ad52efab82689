"""The follow-up schedule engine: pure functions on plain values, each rule naming its clause.

Source: 国家基本公共卫生服务规范（第三版, 2017）, the chapters on hypertension, type 2 diabetes,
severe mental disorders and older people's health management; capability reassessment every six
months follows GB/T 42195-2022 practice as the district runs it. Intervals are configurable
(``ScheduleRules``) because districts and later editions differ.

No database, no clock: the caller passes the visit, the dates and the rules.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from yiyang.care.models import WorkKind


class Programme(enum.StrEnum):
    hypertension = "hypertension"  # 高血压患者健康管理
    diabetes = "diabetes"  # 2型糖尿病患者健康管理
    severe_mental = "severe_mental"  # 严重精神障碍患者管理
    elderly_check = "elderly_check"  # 老年人健康管理 (annual)
    capability = "capability"  # 能力复评
    home_sickbed = "home_sickbed"  # 家庭病床上门
    rehab = "rehab"  # 康复
    alert = "alert"  # an alert's home visit
    care_plan = "care_plan"  # an activity of an accepted care plan
    referral = "referral"


# Clinical work: it names a diagnosis, care plan or referral, which docs/access.md files as `clinical`.
CLINICAL_PROGRAMMES = frozenset({
    Programme.hypertension, Programme.diabetes, Programme.severe_mental, Programme.care_plan, Programme.referral,
})  # fmt: skip
# Work raised by a care plan or a referral is clinical whatever its programme (care plans' ``plan.*`` too).
CLINICAL_SOURCES = frozenset({"care_plan", "referral"})


def is_clinical_work(programme: str, source_type: str | None) -> bool:
    """Does a work item of this programme, raised by this source, show clinical data (docs/care.md)?
    ``overdue.clinical_work()`` is the same test in SQL."""
    return programme in CLINICAL_PROGRAMMES or (source_type is not None and source_type in CLINICAL_SOURCES)


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    clause: str  # the standard and clause the rule follows
    zh: str
    en: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule("bphs.htn.quarterly", "基本公卫规范第三版 高血压患者健康管理 服务要求：每年至少4次面对面随访",
             "高血压季度随访", "quarterly hypertension follow-up"),
        Rule("bphs.htn.unsatisfactory", "基本公卫规范第三版 高血压 随访分类：控制不满意，2周内随访",
             "血压控制不满意，2周内随访", "BP not controlled: follow up within 2 weeks"),
        Rule("bphs.htn.two_unsatisfactory", "基本公卫规范第三版 高血压 随访分类：连续两次控制不满意，转诊，2周内随访",
             "连续两次控制不满意，转诊并2周内随访", "two unsatisfactory visits in a row: refer, follow up in 2 weeks"),
        Rule("bphs.htn.urgent_referral", "基本公卫规范第三版 高血压 筛查与随访：紧急转诊，2周内主动随访",
             "紧急转诊后2周内随访", "follow up within 2 weeks of an urgent referral"),
        Rule("bphs.dm.quarterly", "基本公卫规范第三版 2型糖尿病患者健康管理：每年4次空腹血糖及至少4次面对面随访",
             "糖尿病季度随访", "quarterly diabetes follow-up"),
        Rule("bphs.dm.unsatisfactory", "基本公卫规范第三版 2型糖尿病 随访分类：控制不满意，2周内随访",
             "血糖控制不满意，2周内随访", "glucose not controlled: follow up within 2 weeks"),
        Rule("bphs.dm.two_unsatisfactory", "基本公卫规范第三版 2型糖尿病 随访分类：连续两次控制不满意，转诊，2周内随访",
             "连续两次控制不满意，转诊并2周内随访", "two unsatisfactory visits in a row: refer, follow up in 2 weeks"),
        Rule("bphs.dm.urgent_referral", "基本公卫规范第三版 2型糖尿病 随访评估：紧急转诊，2周内主动随访",
             "紧急转诊后2周内随访", "follow up within 2 weeks of an urgent referral"),
        Rule("bphs.smd.stable", "基本公卫规范第三版 严重精神障碍 随访分类：病情稳定（危险性0级），3个月时随访",
             "严重精神障碍（稳定）3个月随访", "severe mental disorder, stable: follow up in 3 months"),
        Rule("bphs.smd.basically_stable", "基本公卫规范第三版 严重精神障碍 随访分类：基本稳定（危险性1-2级），2周时随访",
             "严重精神障碍（基本稳定）2周随访", "severe mental disorder, basically stable: follow up in 2 weeks"),
        Rule("bphs.smd.unstable", "基本公卫规范第三版 严重精神障碍 随访分类：不稳定（危险性3-5级），转诊，2周内随访",
             "严重精神障碍（不稳定）转诊并2周内随访", "severe mental disorder, unstable: refer, follow up in 2 weeks"),
        Rule("bphs.elderly.annual", "基本公卫规范第三版 老年人健康管理：65岁及以上每年1次健康管理服务",
             "65岁以上老年人年度健康体检", "yearly health check for residents 65 and over"),
        Rule("gbt42195.reassess", "GB/T 42195-2022 老年人能力评估：每6个月复评（本区做法，可配置）",
             "能力评估每6个月复评", "capability reassessment every 6 months"),
        Rule("package.home_sickbed.weekly", "家庭病床服务规范（本区签约服务包）：建床后每周上门",
             "家庭病床每周上门", "weekly home sickbed visit"),
        Rule("package.rehab.monthly", "本区签约服务包：康复上门指导每月一次",
             "康复上门指导每月一次", "monthly rehab home visit"),
        Rule("alert.home_visit", "本区告警处置流程：告警转网格员或签约团队上门",
             "告警上门核实", "home visit to check on an alert"),
        Rule("care_plan.activity", "三色分级照护计划：确认后转为工作任务",
             "照护计划服务项目", "activity of an accepted care plan"),
        Rule("referral.urgent", "双向转诊：紧急转诊后2周内主动随访（同基本公卫规范第三版 高血压/糖尿病）",
             "紧急转诊后2周内随访", "follow up within 2 weeks of an urgent referral"),
        Rule("referral.returned", "双向转诊：下转后社区2周内随访",
             "转诊回社区后2周内随访", "follow up within 2 weeks of a returned referral"),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScheduleRules:
    """Intervals in days, configurable where districts and sources differ."""

    quarterly_days: int = 90  # "at least 4 a year"
    short_follow_up_days: int = 14  # the spec's "within 2 weeks"
    stable_mental_days: int = 90
    reassessment_days: int = 182  # six months
    sickbed_days: int = 7
    rehab_days: int = 30
    first_visit_days: int = 30  # window for the first follow-up of a newly managed resident
    window_days: int = 14  # a routine visit may be done this long before its due date
    elderly_age: int = 65
    # 国家基本公共卫生服务规范（第三版）高血压: control is < 140/90; 65+ < 150/90 [unverified].
    bp_limit: tuple[int, int] = (140, 90)
    bp_limit_elderly: tuple[int, int] | None = (150, 90)
    # 紧急转诊: SBP >= 180 and/or DBP >= 110.
    bp_urgent: tuple[int, int] = (180, 110)
    # 2型糖尿病: controlled when fasting glucose < 7.0 mmol/L; urgent when >= 16.7 or <= 3.9.
    glucose_limit: float = 7.0
    glucose_urgent_high: float = 16.7
    glucose_urgent_low: float = 3.9
    escalate_to_lead_after_days: int = 7  # overdue this long: the team lead
    escalate_to_centre_after_days: int = 21  # overdue this long: the health centre


DEFAULT_RULES = ScheduleRules()


class VisitClass(enum.StrEnum):
    controlled = "controlled"  # 控制满意
    unsatisfactory = "unsatisfactory"  # 控制不满意
    urgent = "urgent"  # 需紧急转诊
    adverse = "adverse"  # 不良反应 (counts as unsatisfactory for the next step)


@dataclass(frozen=True, slots=True)
class VisitOutcome:
    """A chronic-disease follow-up as recorded: the structured outcome that feeds the next step."""

    systolic: int | None = None
    diastolic: int | None = None
    fasting_glucose: float | None = None
    adverse_reaction: bool = False
    new_complication: bool = False
    danger_symptoms: bool = False
    risk_grade: int | None = None  # severe mental disorders, 0-5


def bp_urgent(systolic: int | None, diastolic: int | None, rules: ScheduleRules = DEFAULT_RULES) -> bool:
    """基本公卫规范第三版 高血压: SBP >= 180 and/or DBP >= 110 is an urgent referral."""
    return (systolic or 0) >= rules.bp_urgent[0] or (diastolic or 0) >= rules.bp_urgent[1]


def bp_controlled(
    systolic: int, diastolic: int, age: int | None, rules: ScheduleRules = DEFAULT_RULES
) -> bool:
    """基本公卫规范第三版 高血压: controlled below 140/90 (65+: 150/90 where the district uses it)."""
    limit = rules.bp_limit
    if age is not None and age >= rules.elderly_age and rules.bp_limit_elderly:
        limit = rules.bp_limit_elderly
    return systolic < limit[0] and diastolic < limit[1]


def classify_visit(
    programme: Programme, outcome: VisitOutcome, age: int | None, rules: ScheduleRules = DEFAULT_RULES
) -> VisitClass:
    """基本公卫规范第三版 随访分类 for hypertension and type 2 diabetes."""
    if outcome.danger_symptoms or bp_urgent(outcome.systolic, outcome.diastolic, rules):
        return VisitClass.urgent
    glucose = outcome.fasting_glucose
    if (
        programme is Programme.diabetes
        and glucose is not None
        and (glucose >= rules.glucose_urgent_high or glucose <= rules.glucose_urgent_low)
    ):
        return VisitClass.urgent
    if outcome.adverse_reaction:
        return VisitClass.adverse
    if outcome.new_complication:
        return VisitClass.unsatisfactory
    if programme is Programme.diabetes:
        if glucose is None or glucose >= rules.glucose_limit:
            return VisitClass.unsatisfactory
        return VisitClass.controlled
    if outcome.systolic is None or outcome.diastolic is None:
        return VisitClass.unsatisfactory  # a hypertension visit without a BP reading is not satisfactory
    return (
        VisitClass.controlled
        if bp_controlled(outcome.systolic, outcome.diastolic, age, rules)
        else VisitClass.unsatisfactory
    )


@dataclass(frozen=True, slots=True)
class NextStep:
    """Work the outcome calls for: a new work item, and whether a referral must be sent."""

    kind: WorkKind
    programme: Programme
    due_from: dt.date
    due_by: dt.date
    rule: str
    refer: bool = False  # the caller raises a referral as well
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class VisitDecision:
    visit_class: VisitClass
    steps: tuple[NextStep, ...] = field(default_factory=tuple)

    @property
    def refer(self) -> bool:
        return any(step.refer for step in self.steps)


def _within(day: dt.date, days: int) -> tuple[dt.date, dt.date]:
    return day, day + dt.timedelta(days=days)


def _routine(day: dt.date, days: int, rules: ScheduleRules) -> tuple[dt.date, dt.date]:
    due_by = day + dt.timedelta(days=days)
    return due_by - dt.timedelta(days=min(rules.window_days, days)), due_by


_CODES = {Programme.hypertension: "htn", Programme.diabetes: "dm"}


def after_chronic_visit(
    programme: Programme,
    outcome: VisitOutcome,
    visited_on: dt.date,
    *,
    age: int | None,
    previous_unsatisfactory: bool,
    rules: ScheduleRules = DEFAULT_RULES,
) -> VisitDecision:
    """The next step after a hypertension or diabetes follow-up (基本公卫规范第三版 随访分类与处理).

    - urgent (SBP >= 180 / DBP >= 110, glucose >= 16.7 or <= 3.9, danger signs): refer at once,
      follow up within 2 weeks;
    - unsatisfactory (or an adverse reaction) for the second time in a row: refer, follow up within 2 weeks;
    - unsatisfactory the first time: adjust treatment, follow up within 2 weeks;
    - controlled: the next quarterly follow-up.
    """
    code = _CODES[programme]
    visit_class = classify_visit(programme, outcome, age, rules)
    short = _within(visited_on, rules.short_follow_up_days)
    if visit_class is VisitClass.urgent:
        step = NextStep(
            WorkKind.referral_follow_up,
            programme,
            *short,
            f"bphs.{code}.urgent_referral",
            refer=True,
            urgent=True,
        )
    elif visit_class in (VisitClass.unsatisfactory, VisitClass.adverse) and previous_unsatisfactory:
        step = NextStep(
            WorkKind.referral_follow_up, programme, *short, f"bphs.{code}.two_unsatisfactory", refer=True
        )
    elif visit_class in (VisitClass.unsatisfactory, VisitClass.adverse):
        step = NextStep(WorkKind.follow_up, programme, *short, f"bphs.{code}.unsatisfactory")
    else:
        window = _routine(visited_on, rules.quarterly_days, rules)
        step = NextStep(WorkKind.follow_up, programme, *window, f"bphs.{code}.quarterly")
    return VisitDecision(visit_class, (step,))


def after_mental_visit(
    risk_grade: int, visited_on: dt.date, rules: ScheduleRules = DEFAULT_RULES
) -> VisitDecision:
    """基本公卫规范第三版 严重精神障碍 随访分类: by the 0-5 risk grade.

    grade 0 stable: 3 months; grade 1-2 basically stable: 2 weeks; grade 3-5 unstable: refer, 2 weeks.
    """
    if not 0 <= risk_grade <= 5:
        raise ValueError("risk grade is 0-5")
    short = _within(visited_on, rules.short_follow_up_days)
    if risk_grade >= 3:
        step = NextStep(
            WorkKind.referral_follow_up,
            Programme.severe_mental,
            *short,
            "bphs.smd.unstable",
            refer=True,
            urgent=True,
        )
        return VisitDecision(VisitClass.urgent, (step,))
    if risk_grade >= 1:
        step = NextStep(WorkKind.follow_up, Programme.severe_mental, *short, "bphs.smd.basically_stable")
        return VisitDecision(VisitClass.unsatisfactory, (step,))
    window = _routine(visited_on, rules.stable_mental_days, rules)
    return VisitDecision(
        VisitClass.controlled,
        (NextStep(WorkKind.follow_up, Programme.severe_mental, *window, "bphs.smd.stable"),),
    )


# -- cadences the day job generates from ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cadence:
    """Recurring work a programme promises: the kind, the rule and the interval in days."""

    programme: Programme
    kind: WorkKind
    rule: str
    days: int


def cadences(rules: ScheduleRules = DEFAULT_RULES) -> dict[Programme, Cadence]:
    return {
        Programme.hypertension: Cadence(Programme.hypertension, WorkKind.follow_up, "bphs.htn.quarterly", rules.quarterly_days),
        Programme.diabetes: Cadence(Programme.diabetes, WorkKind.follow_up, "bphs.dm.quarterly", rules.quarterly_days),
        Programme.severe_mental: Cadence(Programme.severe_mental, WorkKind.follow_up, "bphs.smd.stable", rules.stable_mental_days),
        Programme.elderly_check: Cadence(Programme.elderly_check, WorkKind.health_check, "bphs.elderly.annual", 365),
        Programme.capability: Cadence(Programme.capability, WorkKind.reassessment, "gbt42195.reassess", rules.reassessment_days),
        Programme.home_sickbed: Cadence(Programme.home_sickbed, WorkKind.home_visit, "package.home_sickbed.weekly", rules.sickbed_days),
        Programme.rehab: Cadence(Programme.rehab, WorkKind.home_visit, "package.rehab.monthly", rules.rehab_days),
    }  # fmt: skip


def next_due(
    cadence: Cadence, last_done: dt.date | None, today: dt.date, rules: ScheduleRules = DEFAULT_RULES
) -> tuple[dt.date, dt.date]:
    """The due window of a programme's next routine item.

    Never done: due within ``first_visit_days`` (the annual check: by the end of this year).
    Done before: ``days`` after the last one (the annual check: once in the next calendar year).
    """
    if cadence.programme is Programme.elderly_check:
        return annual_check_window(last_done, today)
    if last_done is None:
        return today, today + dt.timedelta(days=min(rules.first_visit_days, cadence.days))
    return _routine(last_done, cadence.days, rules)


def annual_check_window(last_done: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """基本公卫规范第三版 老年人健康管理: one service each calendar year, for 65 and over."""
    year = today.year if last_done is None or last_done.year < today.year else last_done.year + 1
    start = max(today, dt.date(year, 1, 1)) if year == today.year else dt.date(year, 1, 1)
    return start, dt.date(year, 12, 31)


def status_on(due_from: dt.date, due_by: dt.date, today: dt.date) -> str:
    """scheduled before the window opens, due inside it, overdue after it."""
    if today < due_from:
        return "scheduled"
    if today > due_by:
        return "overdue"
    return "due"


def escalation_level(due_by: dt.date, today: dt.date, rules: ScheduleRules = DEFAULT_RULES) -> int:
    """0 while less overdue than the lead's threshold; 1: the team lead; 2: the health centre."""
    late = (today - due_by).days
    if late >= rules.escalate_to_centre_after_days:
        return 2
    if late >= rules.escalate_to_lead_after_days:
        return 1
    return 0
