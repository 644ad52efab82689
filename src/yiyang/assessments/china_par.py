"""China-PAR 10-year ASCVD risk (Yang et al., Circulation 2016;134:1430-1440).

Sex-specific Cox equations: risk = 1 - S10 ** exp(sum(beta * x) - mean), with the natural log
of age, systolic blood pressure (treated or untreated branch), total and HDL cholesterol in
mg/dL and waist in cm, and 0/1 smoker, diabetes, northern China, urban and family history.
Valid for ages 35-74 only; outside that the result says "not applicable" rather than extrapolate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yiyang.assessments.scoring import (
    AssessmentResult,
    Explanation,
    Item,
    ItemKind,
    Level,
    raise_problems,
    result,
    validate_answers,
)

# mg/dL = mmol/L / 0.0259 for cholesterol, the unit the equations were fitted in.
CHOLESTEROL_MMOL_PER_MG_DL = 0.0259
AGE_RANGE = (35, 74)


@dataclass(frozen=True, slots=True)
class Equation:
    """One sex's coefficients (the paper's 3-decimal set), its mean linear predictor and S10."""

    ln_age: float
    ln_sbp_treated: float
    ln_sbp_untreated: float
    ln_tc: float
    ln_hdl: float
    ln_waist: float
    smoker: float
    diabetes: float
    north: float
    urban: float
    family_history: float
    ln_age_x_ln_sbp_treated: float
    ln_age_x_ln_sbp_untreated: float
    ln_age_x_smoker: float
    ln_age_x_family_history: float
    mean: float
    baseline_survival: float


MEN = Equation(
    ln_age=31.967,
    ln_sbp_treated=27.388,
    ln_sbp_untreated=26.148,
    ln_tc=0.621,
    ln_hdl=-0.695,
    ln_waist=-0.712,
    smoker=3.955,
    diabetes=0.357,
    north=0.475,
    urban=-0.164,
    family_history=6.221,
    ln_age_x_ln_sbp_treated=-6.018,
    ln_age_x_ln_sbp_untreated=-5.731,
    ln_age_x_smoker=-0.939,
    ln_age_x_family_history=-1.534,
    mean=140.68,
    baseline_survival=0.9707,
)
# The women's equation has no urban or family-history terms. S10 is 0.9851: the paper prints
# 0.99, which does not reproduce the paper's own worked example.
WOMEN = Equation(
    ln_age=24.874,
    ln_sbp_treated=20.709,
    ln_sbp_untreated=19.982,
    ln_tc=0.058,
    ln_hdl=-0.217,
    ln_waist=1.475,
    smoker=0.495,
    diabetes=0.567,
    north=0.544,
    urban=0.0,
    family_history=0.0,
    ln_age_x_ln_sbp_treated=-4.528,
    ln_age_x_ln_sbp_untreated=-4.360,
    ln_age_x_smoker=0.0,
    ln_age_x_family_history=0.0,
    mean=117.26,
    baseline_survival=0.9851,
)
EQUATIONS = {"male": MEN, "female": WOMEN}


@dataclass(frozen=True, slots=True)
class RiskFactors:
    sex: str  # "male" or "female"
    age: int
    sbp: float  # mmHg
    bp_treated: bool
    tc_mmol: float
    hdl_mmol: float
    waist_cm: float
    smoker: bool
    diabetes: bool
    north: bool  # lives north of the Yangtze (长江以北)
    urban: bool = False
    family_history: bool = False


def mmol_to_mg_dl(mmol_per_l: float) -> float:
    return mmol_per_l / CHOLESTEROL_MMOL_PER_MG_DL


def applicable(age: float) -> bool:
    return AGE_RANGE[0] <= age <= AGE_RANGE[1]


def linear_predictor(factors: RiskFactors) -> float:
    """sum(beta * x) for the person's sex (no mean subtracted)."""
    eq = EQUATIONS[factors.sex]
    ln_age = math.log(factors.age)
    ln_sbp = math.log(factors.sbp)
    smoker, diabetes = float(factors.smoker), float(factors.diabetes)
    north, urban, family = float(factors.north), float(factors.urban), float(factors.family_history)
    if factors.bp_treated:
        sbp_term = eq.ln_sbp_treated * ln_sbp + eq.ln_age_x_ln_sbp_treated * ln_age * ln_sbp
    else:
        sbp_term = eq.ln_sbp_untreated * ln_sbp + eq.ln_age_x_ln_sbp_untreated * ln_age * ln_sbp
    return (
        eq.ln_age * ln_age
        + sbp_term
        + eq.ln_tc * math.log(mmol_to_mg_dl(factors.tc_mmol))
        + eq.ln_hdl * math.log(mmol_to_mg_dl(factors.hdl_mmol))
        + eq.ln_waist * math.log(factors.waist_cm)
        + eq.smoker * smoker
        + eq.diabetes * diabetes
        + eq.north * north
        + eq.urban * urban
        + eq.family_history * family
        + eq.ln_age_x_smoker * ln_age * smoker
        + eq.ln_age_x_family_history * ln_age * family
    )


def ten_year_risk(factors: RiskFactors) -> float | None:
    """The 10-year ASCVD risk as a fraction, or None outside ages 35-74."""
    if not applicable(factors.age):
        return None
    eq = EQUATIONS[factors.sex]
    return 1.0 - eq.baseline_survival ** math.exp(linear_predictor(factors) - eq.mean)


LOW = Level("low", "低危", "low risk")
MEDIUM = Level("medium", "中危", "medium risk")
HIGH = Level("high", "高危", "high risk")
NOT_APPLICABLE = Level("not_applicable", "不适用", "not applicable")


def risk_category(percent: float) -> Level:
    """中国心血管病风险评估和管理指南: < 5% low, 5-9.9% medium, >= 10% high.

    Judged on the percentage as shown, to one decimal, so a displayed 10.0% is never "medium".
    """
    shown = round(percent, 1)
    if shown < 5.0:
        return LOW
    if shown < 10.0:
        return MEDIUM
    return HIGH


CHINA_PAR_ITEMS: tuple[Item, ...] = (
    Item("sex", "性别", "sex", kind=ItemKind.choice, choices=("male", "female")),
    Item("age", "年龄", "age", kind=ItemKind.number, minimum=18, maximum=120, integer=True, unit="岁/years"),
    Item(
        "sbp", "收缩压", "systolic blood pressure", kind=ItemKind.number, minimum=60, maximum=300, unit="mmHg"
    ),
    Item("bp_treated", "正在服用降压药", "taking blood-pressure medicine", kind=ItemKind.yes_no),
    Item(
        "tc", "总胆固醇", "total cholesterol", kind=ItemKind.number, minimum=1.0, maximum=20.0, unit="mmol/L"
    ),
    Item(
        "hdl",
        "高密度脂蛋白胆固醇",
        "HDL cholesterol",
        kind=ItemKind.number,
        minimum=0.2,
        maximum=5.0,
        unit="mmol/L",
    ),
    Item("waist", "腰围", "waist circumference", kind=ItemKind.number, minimum=40, maximum=200, unit="cm"),
    Item("smoker", "现在吸烟", "current smoker", kind=ItemKind.yes_no),
    Item("diabetes", "糖尿病", "diabetes", kind=ItemKind.yes_no),
    Item(
        "north",
        "居住在北方（长江以北）",
        "lives in northern China (north of the Yangtze)",
        kind=ItemKind.yes_no,
    ),
    # Men only; women's equation has no such terms, so women may leave them out.
    Item("urban", "居住在城市", "lives in a city", kind=ItemKind.yes_no, required=False, default=None),
    Item(
        "family_history",
        "ASCVD家族史（父母或兄弟姐妹）",
        "family history of ASCVD (parents or siblings)",
        kind=ItemKind.yes_no,
        required=False,
        default=None,
    ),
)
_MEN_ONLY = ("urban", "family_history")


def score_china_par(answers: Mapping[str, Any]) -> AssessmentResult:
    """China-PAR 10-year ASCVD risk; total is the percentage to one decimal."""
    code = "china_par"
    values = validate_answers(code, CHINA_PAR_ITEMS, answers)
    if values["sex"] == "male":
        missing = [item for item in CHINA_PAR_ITEMS if item.code in _MEN_ONLY and values[item.code] is None]
        if missing:
            raise_problems(
                code,
                [
                    {
                        "code": "assessment.item.missing",
                        "item": item.code,
                        "message": f"男性需填写「{item.label_zh}」({item.code})，应为是或否 "
                        f"(men need '{item.code}' ({item.label_en}): yes or no)",
                    }
                    for item in missing
                ],
            )
    if values["hdl"] >= values["tc"]:
        raise_problems(
            code,
            [
                {
                    "code": "assessment.item.range",
                    "item": "hdl",
                    "message": f"高密度脂蛋白胆固醇 {values['hdl']} 不应高于总胆固醇 {values['tc']} mmol/L "
                    f"(HDL cholesterol {values['hdl']} cannot exceed total cholesterol {values['tc']} mmol/L)",
                }
            ],
        )
    factors = RiskFactors(
        sex=values["sex"],
        age=values["age"],
        sbp=values["sbp"],
        bp_treated=values["bp_treated"],
        tc_mmol=values["tc"],
        hdl_mmol=values["hdl"],
        waist_cm=values["waist"],
        smoker=values["smoker"],
        diabetes=values["diabetes"],
        north=values["north"],
        urban=bool(values["urban"]),
        family_history=bool(values["family_history"]),
    )
    explanation = _factor_lines(factors)
    risk = ten_year_risk(factors)
    if risk is None:
        low, high = AGE_RANGE
        explanation.append(
            Explanation(
                zh=f"China-PAR 仅适用于 {low}–{high} 岁，当前 {factors.age} 岁，不计算风险",
                en=f"China-PAR applies to ages {low}-{high}; age {factors.age} is outside, so no risk is given",
                item="age",
            )
        )
        return result(code, None, NOT_APPLICABLE, explanation, details={"sex": factors.sex})
    percent = round(risk * 100, 1)
    level = risk_category(percent)
    explanation.append(
        Explanation(
            zh=f"10年ASCVD风险 {percent}%：{level.zh}", en=f"10-year ASCVD risk {percent}%: {level.en}"
        )
    )
    details = {
        "sex": factors.sex,
        "risk": risk,
        "linear_predictor": linear_predictor(factors),
        "tc_mg_dl": mmol_to_mg_dl(factors.tc_mmol),
        "hdl_mg_dl": mmol_to_mg_dl(factors.hdl_mmol),
    }
    return result(code, percent, level, explanation, max_total=100, details=details)


def _factor_lines(factors: RiskFactors) -> list[Explanation]:
    sex_zh = "男性" if factors.sex == "male" else "女性"
    treated_zh, treated_en = ("服降压药", "treated") if factors.bp_treated else ("未服降压药", "untreated")
    lines = [
        Explanation(
            zh=f"{sex_zh}，{factors.age} 岁，收缩压 {factors.sbp:g} mmHg（{treated_zh}），"
            f"总胆固醇 {factors.tc_mmol:g}、HDL-C {factors.hdl_mmol:g} mmol/L，腰围 {factors.waist_cm:g} cm",
            en=f"{factors.sex}, {factors.age} years, SBP {factors.sbp:g} mmHg ({treated_en}), "
            f"TC {factors.tc_mmol:g} and HDL-C {factors.hdl_mmol:g} mmol/L, waist {factors.waist_cm:g} cm",
        )
    ]
    present = [
        ("smoker", "现在吸烟", "current smoker"),
        ("diabetes", "糖尿病", "diabetes"),
        ("north", "居住在北方", "lives in northern China"),
    ]
    if factors.sex == "male":
        present += [
            ("urban", "居住在城市", "lives in a city"),
            ("family_history", "ASCVD家族史", "family history"),
        ]
    for attribute, zh, en in present:
        if getattr(factors, attribute):
            lines.append(Explanation(zh=zh, en=en, item=attribute))
    return lines
