"""The instrument registry: code -> names, items, options and the scoring function.

``score(code, answers, **options)`` is the one entry point the CLI, the API and the capture
service share, so an instrument scores the same wherever it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from yiyang.assessments import bp, china_par, scoring
from yiyang.assessments.scoring import AssessmentResult, Item
from yiyang.errors import Invalid


@dataclass(frozen=True, slots=True)
class Option:
    """A setting the district chooses (not an answer), e.g. the Morse high-risk cut-off."""

    code: str
    label_zh: str
    label_en: str
    choices: tuple[int, ...]
    default: int


@dataclass(frozen=True, slots=True)
class Instrument:
    code: str
    name_zh: str
    name_en: str
    source: str
    items: tuple[Item, ...]
    scorer: Callable[..., AssessmentResult]
    options: tuple[Option, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "source": self.source,
            "items": [item.describe() for item in self.items],
            "options": [
                {
                    "code": option.code,
                    "label_zh": option.label_zh,
                    "label_en": option.label_en,
                    "choices": list(option.choices),
                    "default": option.default,
                }
                for option in self.options
            ],
        }


_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(
        "gbt42195",
        "老年人能力评估",
        "capability assessment of older adults",
        "GB/T 42195-2022 老年人能力评估规范",
        scoring.GBT42195_ITEMS + scoring.GBT42195_CONTEXT,
        scoring.score_gbt42195,
    ),
    Instrument(
        "self_care",
        "老年人生活自理能力评估",
        "self-care assessment of older adults",
        "国家基本公共卫生服务规范（第三版）",
        scoring.SELF_CARE_ITEMS,
        scoring.score_self_care,
    ),
    Instrument(
        "barthel",
        "Barthel指数",
        "Barthel index",
        "Mahoney & Barthel 1965",
        scoring.BARTHEL_ITEMS,
        scoring.score_barthel,
    ),
    Instrument(
        "ad8",
        "AD8痴呆筛查",
        "AD8 dementia screen",
        "Galvin et al. 2005",
        scoring.AD8_ITEMS,
        scoring.score_ad8,
    ),
    Instrument(
        "minicog",
        "Mini-Cog简易认知评估",
        "Mini-Cog",
        "Borson et al. 2000",
        scoring.MINICOG_ITEMS,
        scoring.score_minicog,
    ),
    Instrument(
        "mmse",
        "简易精神状态检查",
        "Mini-Mental State Examination",
        "Folstein 1975; Chinese education cut-offs",
        scoring.MMSE_ITEMS,
        scoring.score_mmse,
    ),
    Instrument(
        "phq9",
        "PHQ-9抑郁筛查",
        "PHQ-9 depression screen",
        "Kroenke et al. 2001",
        scoring.PHQ9_ITEMS,
        scoring.score_phq9,
    ),
    Instrument(
        "gds15",
        "老年抑郁量表简版",
        "Geriatric Depression Scale, 15 items",
        "Sheikh & Yesavage 1986",
        scoring.GDS15_ITEMS,
        scoring.score_gds15,
    ),
    Instrument(
        "morse",
        "Morse跌倒风险评估",
        "Morse fall scale",
        "Morse 1989",
        scoring.MORSE_ITEMS,
        scoring.score_morse,
        (
            Option(
                "high_risk_cutoff",
                "高风险界值",
                "high-risk cut-off",
                scoring.MORSE_HIGH_RISK_CUTOFFS,
                scoring.MORSE_DEFAULT_HIGH_RISK_CUTOFF,
            ),
        ),
    ),
    Instrument(
        "frail",
        "FRAIL衰弱筛查",
        "FRAIL scale",
        "Morley et al. 2012",
        scoring.FRAIL_ITEMS,
        scoring.score_frail,
    ),
    Instrument(
        "mna_sf",
        "微型营养评定简表",
        "Mini Nutritional Assessment, short form",
        "Rubenstein et al. 2001",
        scoring.MNA_SF_ITEMS,
        scoring.score_mna_sf,
    ),
    Instrument(
        "braden",
        "Braden压力性损伤风险评估",
        "Braden scale",
        "Bergstrom et al. 1987",
        scoring.BRADEN_ITEMS,
        scoring.score_braden,
    ),
    Instrument("bp", "血压分级", "blood-pressure grade", "中国高血压防治指南 2018", bp.BP_ITEMS, bp.score_bp),
    Instrument(
        "china_par",
        "China-PAR 10年ASCVD风险",
        "China-PAR 10-year ASCVD risk",
        "Yang et al., Circulation 2016",
        china_par.CHINA_PAR_ITEMS,
        china_par.score_china_par,
    ),
)
INSTRUMENTS: dict[str, Instrument] = {instrument.code: instrument for instrument in _INSTRUMENTS}


def get_instrument(code: str) -> Instrument:
    """The instrument for a code; ``china-par`` and ``China_PAR`` find ``china_par``."""
    key = code.strip().lower().replace("-", "_")
    instrument = INSTRUMENTS.get(key)
    if instrument is None:
        raise Invalid(
            "assessment.instrument.unknown",
            f"未知的评估量表 {code}，可用：{', '.join(INSTRUMENTS)} (unknown instrument '{code}'; known: {', '.join(INSTRUMENTS)})",
            instrument=code,
            known=list(INSTRUMENTS),
        )
    return instrument


def score(code: str, answers: Mapping[str, Any], /, **options: Any) -> AssessmentResult:
    """Score answers with an instrument; options not given take the instrument's default.

    ``code`` and ``answers`` are positional-only, so an option a person names ``code`` or
    ``answers`` is refused as an unknown option instead of colliding with them."""
    instrument = get_instrument(code)
    return instrument.scorer(answers, **_checked_options(instrument, options))


def _checked_options(instrument: Instrument, options: Mapping[str, Any]) -> dict[str, Any]:
    known = {option.code: option for option in instrument.options}
    checked: dict[str, Any] = {}
    for name, raw in options.items():
        option = known.get(name)
        if option is None:
            raise Invalid(
                "assessment.option.unknown",
                f"{instrument.code} 没有设置项 {name} (instrument '{instrument.code}' has no option '{name}'; "
                f"options: {', '.join(known) or 'none'})",
                option=name,
            )
        value = _as_int(raw)
        if value not in option.choices:
            allowed = ", ".join(map(str, option.choices))
            raise Invalid(
                "assessment.option.invalid",
                f"设置项「{option.label_zh}」应为 {allowed} 之一 "
                f"(option '{name}' ({option.label_en}) must be one of {allowed})",
                option=name,
                allowed=list(option.choices),
            )
        checked[name] = value
    return checked


def _as_int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError:
        return None
