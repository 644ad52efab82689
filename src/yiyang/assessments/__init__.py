"""Standard assessment instruments (评估量表) as data plus pure scoring functions.

``score(code, answers)`` scores any registered instrument; the per-instrument functions
(``score_barthel``, ``score_china_par``, ``bp_grade`` ...) are importable for direct use.
"""

from yiyang.assessments.bp import bp_grade, score_bp
from yiyang.assessments.china_par import RiskFactors, risk_category, score_china_par, ten_year_risk
from yiyang.assessments.instruments import INSTRUMENTS, Instrument, get_instrument, score
from yiyang.assessments.scoring import (
    CAPABILITY_LEVEL_CODES,
    CAPABILITY_LEVELS,
    AssessmentResult,
    Explanation,
    Flag,
    Item,
    Level,
    adjust_capability_level,
    capability_level,
)

__all__ = [
    "CAPABILITY_LEVELS",
    "CAPABILITY_LEVEL_CODES",
    "INSTRUMENTS",
    "AssessmentResult",
    "Explanation",
    "Flag",
    "Instrument",
    "Item",
    "Level",
    "RiskFactors",
    "adjust_capability_level",
    "bp_grade",
    "capability_level",
    "get_instrument",
    "risk_category",
    "score",
    "score_bp",
    "score_china_par",
    "ten_year_risk",
]
