"""Office blood-pressure grading per 中国高血压防治指南 2018 (Chinese hypertension guideline).

Systolic and diastolic are graded separately and the higher grade wins; a reading at or above
140 systolic with diastolic below 90 is also isolated systolic hypertension (单纯收缩期高血压).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yiyang.assessments.scoring import (
    AssessmentResult,
    Explanation,
    Flag,
    Item,
    ItemKind,
    Level,
    raise_problems,
    result,
    validate_answers,
)

NORMAL = Level("normal", "正常血压", "normal")
HIGH_NORMAL = Level("high_normal", "正常高值", "high-normal")
GRADE_1 = Level("grade_1", "1级高血压（轻度）", "grade 1 hypertension (mild)")
GRADE_2 = Level("grade_2", "2级高血压（中度）", "grade 2 hypertension (moderate)")
GRADE_3 = Level("grade_3", "3级高血压（重度）", "grade 3 hypertension (severe)")
BP_GRADES: tuple[Level, ...] = (NORMAL, HIGH_NORMAL, GRADE_1, GRADE_2, GRADE_3)

# 中国高血压防治指南 2018 table: lower bound of each grade, systolic and diastolic (mmHg).
SYSTOLIC_FROM = ((180, GRADE_3), (160, GRADE_2), (140, GRADE_1), (120, HIGH_NORMAL))
DIASTOLIC_FROM = ((110, GRADE_3), (100, GRADE_2), (90, GRADE_1), (80, HIGH_NORMAL))

ISOLATED_SYSTOLIC = Flag(
    code="isolated_systolic_hypertension",
    zh="单纯收缩期高血压（收缩压≥140且舒张压<90）",
    en="isolated systolic hypertension (systolic >= 140 with diastolic < 90)",
)
# 国家基本公共卫生服务规范（第三版）: SBP >= 180 and/or DBP >= 110 needs urgent referral.
URGENT_REFERRAL = Flag(
    code="bp_urgent_referral",
    zh="收缩压≥180和/或舒张压≥110 mmHg，按基本公卫规范需紧急转诊",
    en="systolic >= 180 and/or diastolic >= 110 mmHg: urgent referral per the basic public health spec",
)

BP_ITEMS: tuple[Item, ...] = (
    Item(
        "systolic",
        "收缩压",
        "systolic pressure",
        kind=ItemKind.number,
        minimum=50,
        maximum=300,
        integer=True,
        unit="mmHg",
    ),
    Item(
        "diastolic",
        "舒张压",
        "diastolic pressure",
        kind=ItemKind.number,
        minimum=20,
        maximum=200,
        integer=True,
        unit="mmHg",
    ),
)


def systolic_grade(systolic: int) -> Level:
    return next((level for bound, level in SYSTOLIC_FROM if systolic >= bound), NORMAL)


def diastolic_grade(diastolic: int) -> Level:
    return next((level for bound, level in DIASTOLIC_FROM if diastolic >= bound), NORMAL)


def bp_grade(systolic: int, diastolic: int) -> Level:
    """The guideline grade of one reading: the higher of the systolic and diastolic grades."""
    return max(systolic_grade(systolic), diastolic_grade(diastolic), key=BP_GRADES.index)


def score_bp(answers: Mapping[str, Any]) -> AssessmentResult:
    code = "bp"
    values = validate_answers(code, BP_ITEMS, answers)
    systolic, diastolic = values["systolic"], values["diastolic"]
    if diastolic >= systolic:
        raise_problems(
            code,
            [
                {
                    "code": "assessment.item.range",
                    "item": "diastolic",
                    "message": f"舒张压 {diastolic} 应低于收缩压 {systolic} mmHg，请检查是否填反 "
                    f"(diastolic {diastolic} must be below systolic {systolic} mmHg; were they swapped?)",
                }
            ],
        )
    by_systolic, by_diastolic = systolic_grade(systolic), diastolic_grade(diastolic)
    level = bp_grade(systolic, diastolic)
    explanation = [
        Explanation(
            zh=f"收缩压 {systolic} mmHg：{by_systolic.zh}",
            en=f"systolic {systolic} mmHg: {by_systolic.en}",
            item="systolic",
        ),
        Explanation(
            zh=f"舒张压 {diastolic} mmHg：{by_diastolic.zh}",
            en=f"diastolic {diastolic} mmHg: {by_diastolic.en}",
            item="diastolic",
        ),
    ]
    if by_systolic != by_diastolic:
        explanation.append(
            Explanation(
                zh=f"两者不同，取较高的分级：{level.zh}",
                en=f"they differ; the higher grade counts: {level.en}",
            )
        )
    flags = []
    if systolic >= 140 and diastolic < 90:
        flags.append(ISOLATED_SYSTOLIC)
    if level is GRADE_3:
        flags.append(URGENT_REFERRAL)
    details = {"systolic": systolic, "diastolic": diastolic, "systolic_grade": by_systolic.code}
    details["diastolic_grade"] = by_diastolic.code
    return result(code, None, level, explanation, flags=flags, details=details)
