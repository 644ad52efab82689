"""Assessment scoring as pure functions: items as data, answers in, a result out.

Each ``score_*`` function takes a mapping of item code -> answer, validates every answer
against the instrument's items (raising ``yiyang.errors.Invalid`` that names the item and what
it allows), and returns an ``AssessmentResult``: total, level, an explanation of which items
and which rules produced the level, and flags other domains act on (e.g. ``self_harm_risk``).
No database, clock or settings inside; configurable cut-offs are keyword arguments.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from yiyang.errors import Invalid

# --------------------------------------------------------------------------------------------
# Items, levels and results


class ItemKind(enum.StrEnum):
    points = "points"  # one of the listed scores
    yes_no = "yes_no"  # true/false (also 1/0, "yes"/"no", "是"/"否")
    choice = "choice"  # one of the listed strings
    number = "number"  # a measurement within [minimum, maximum]
    codes = "codes"  # a list of strings (from ``choices`` when given)


@dataclass(frozen=True, slots=True)
class Item:
    """One input of an instrument: a scored question, or a fact the scoring needs."""

    code: str
    label_zh: str
    label_en: str
    allowed: tuple[int, ...] = ()
    kind: ItemKind = ItemKind.points
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    unit: str = ""
    required: bool = True
    default: Any = None
    domain: str | None = None

    @property
    def max_points(self) -> int:
        return max(self.allowed) if self.allowed else 0

    def allowed_zh(self) -> str:
        if self.kind is ItemKind.points:
            if _contiguous(self.allowed):
                return f"{self.allowed[0]}–{self.allowed[-1]} 的整数"
            return "、".join(str(value) for value in self.allowed) + " 之一"
        if self.kind is ItemKind.yes_no:
            return "是或否（true/false）"
        if self.kind is ItemKind.choice:
            return "、".join(self.choices) + " 之一"
        if self.kind is ItemKind.number:
            whole = "整数" if self.integer else "数值"
            return f"{_num(self.minimum)}–{_num(self.maximum)} {self.unit} 之间的{whole}".replace("  ", " ")
        if self.choices:
            return "由 " + "、".join(self.choices) + " 组成的列表"
        return "字符串列表"

    def allowed_en(self) -> str:
        if self.kind is ItemKind.points:
            if _contiguous(self.allowed):
                return f"a whole number {self.allowed[0]}-{self.allowed[-1]}"
            return "one of " + ", ".join(str(value) for value in self.allowed)
        if self.kind is ItemKind.yes_no:
            return "yes or no (true/false)"
        if self.kind is ItemKind.choice:
            return "one of " + ", ".join(self.choices)
        if self.kind is ItemKind.number:
            whole = "a whole number" if self.integer else "a number"
            unit = f" {self.unit}" if self.unit else ""
            return f"{whole} from {_num(self.minimum)} to {_num(self.maximum)}{unit}"
        if self.choices:
            return "a list drawn from " + ", ".join(self.choices)
        return "a list of strings"

    def describe(self) -> dict[str, Any]:
        """The item as plain data, for listings and forms."""
        body: dict[str, Any] = {
            "code": self.code,
            "label_zh": self.label_zh,
            "label_en": self.label_en,
            "kind": self.kind.value,
            "required": self.required,
        }
        if self.kind is ItemKind.points:
            body["allowed"] = list(self.allowed)
        if self.choices:
            body["choices"] = list(self.choices)
        if self.kind is ItemKind.number:
            body.update(minimum=self.minimum, maximum=self.maximum, unit=self.unit, integer=self.integer)
        if not self.required:
            body["default"] = self.default
        if self.domain:
            body["domain"] = self.domain
        return body


@dataclass(frozen=True, slots=True)
class Level:
    code: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Band:
    """Totals from ``low`` to ``high`` inclusive map to ``level``."""

    low: float
    high: float
    level: Level


class Explanation(BaseModel):
    """One reason behind a result: an item's points, a domain subtotal or a rule that applied."""

    model_config = ConfigDict(frozen=True)

    zh: str
    en: str
    item: str | None = None
    points: int | float | None = None


class Flag(BaseModel):
    """Something another part of the system must act on, whatever the level."""

    model_config = ConfigDict(frozen=True)

    code: str
    zh: str
    en: str


class AssessmentResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    instrument: str
    total: int | float | None
    max_total: int | float | None = None
    level: str
    level_zh: str
    level_en: str
    explanation: list[Explanation] = Field(default_factory=list)
    flags: list[Flag] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def flag_codes(self) -> set[str]:
        return {flag.code for flag in self.flags}


def result(
    instrument: str,
    total: int | float | None,
    level: Level,
    explanation: list[Explanation],
    *,
    max_total: int | float | None = None,
    flags: Sequence[Flag] = (),
    details: Mapping[str, Any] | None = None,
) -> AssessmentResult:
    return AssessmentResult(
        instrument=instrument,
        total=total,
        max_total=max_total,
        level=level.code,
        level_zh=level.zh,
        level_en=level.en,
        explanation=explanation,
        flags=list(flags),
        details=dict(details or {}),
    )


def band_of(total: float, bands: Sequence[Band]) -> Level:
    for band in bands:
        if band.low <= total <= band.high:
            return band.level
    raise ValueError(f"total {total} falls in no band")  # a table bug, never user input


# --------------------------------------------------------------------------------------------
# Validation


def validate_answers(instrument: str, items: Sequence[Item], answers: Any) -> dict[str, Any]:
    """Every item's answer, coerced to its kind; raises ``Invalid`` naming each bad item."""
    if not isinstance(answers, Mapping):
        raise Invalid(
            "assessment.input.shape",
            f"评估输入应为“评估项代码 → 答案”的对象 (answers must be an object of item code -> answer, got {type(answers).__name__})",
            instrument=instrument,
        )
    known = {item.code: item for item in items}
    problems: list[dict[str, Any]] = []
    for code in answers:
        if code not in known:
            problems.append(
                {
                    "code": "assessment.item.unknown",
                    "item": str(code),  # where the problem is, as a validation error's loc
                    "message": f"未知的评估项，{instrument} 的评估项为：{', '.join(known)} "
                    f"(unknown item; the items of {instrument} are: {', '.join(known)})",
                }
            )
    values: dict[str, Any] = {}
    for item in items:
        raw = answers.get(item.code)
        if raw is None:
            if item.required:
                problems.append(
                    {
                        "code": "assessment.item.missing",
                        "item": item.code,
                        "message": f"缺少评估项「{item.label_zh}」({item.code})，应为 {item.allowed_zh()} "
                        f"(missing item {_name_en(item)}: {item.allowed_en()})",
                    }
                )
            else:
                values[item.code] = item.default
            continue
        value, problem = _coerce(item, raw)
        if problem:
            problems.append(problem)
        else:
            values[item.code] = value
    if problems:
        raise_problems(instrument, problems)
    return values


def raise_problems(instrument: str, problems: list[dict[str, Any]]) -> None:
    """One ``Invalid`` for a person: the first problem's code and message, all problems in detail."""
    first = problems[0]
    detail: dict[str, Any] = {"instrument": instrument, "item": first.get("item"), "errors": problems}
    if "allowed" in first:
        detail["allowed"] = first["allowed"]
    raise Invalid(first["code"], first["message"], **detail)


def item_problem(item: Item, code: str = "assessment.item.range") -> dict[str, Any]:
    """The item and what it allows; never the answer, which may be anything a person typed."""
    return {
        "code": code,
        "item": item.code,
        "allowed": _allowed_detail(item),
        "message": f"评估项「{item.label_zh}」({item.code}) 应为 {item.allowed_zh()} "
        f"(item {_name_en(item)} must be {item.allowed_en()})",
    }


def _name_en(item: Item) -> str:
    return f"'{item.code}'" if item.label_en == item.code else f"'{item.code}' ({item.label_en})"


_YES = {"yes", "y", "true", "1", "是", "有"}
_NO = {"no", "n", "false", "0", "否", "无"}


def _coerce(item: Item, raw: Any) -> tuple[Any, dict[str, Any] | None]:
    if item.kind is ItemKind.points:
        number = _whole_number(raw)
        if number is None:
            return None, item_problem(item, "assessment.item.type")
        if number not in item.allowed:
            return None, item_problem(item)
        return number, None
    if item.kind is ItemKind.yes_no:
        if isinstance(raw, bool):
            return raw, None
        if isinstance(raw, int | float) and raw in (0, 1):
            return bool(raw), None
        if isinstance(raw, str) and raw.strip().lower() in _YES | _NO:
            return raw.strip().lower() in _YES, None
        return None, item_problem(item, "assessment.item.type")
    if item.kind is ItemKind.choice:
        text = raw.strip().lower() if isinstance(raw, str) else raw
        if text not in item.choices:
            return None, item_problem(item)
        return text, None
    if item.kind is ItemKind.number:
        number = _number(raw)
        if number is None or (item.integer and not isinstance(number, int) and not number.is_integer()):
            return None, item_problem(item, "assessment.item.type")
        if item.integer:
            number = int(number)
        if (item.minimum is not None and number < item.minimum) or (
            item.maximum is not None and number > item.maximum
        ):
            return None, item_problem(item)
        return number, None
    # codes
    if isinstance(raw, str):
        raw_list: list[Any] = [part for part in raw.replace("，", ",").split(",") if part.strip()]
    elif isinstance(raw, list | tuple):
        raw_list = list(raw)
    else:
        return None, item_problem(item, "assessment.item.type")
    codes = []
    for entry in raw_list:
        # A lone surrogate cannot be stored or sent back, and no code holds a control character.
        if not isinstance(entry, str) or not entry.strip() or not entry.strip().isprintable():
            return None, item_problem(item, "assessment.item.type")
        code = entry.strip()
        if item.choices:
            code = code.lower()
            if code not in item.choices:
                return None, item_problem(item)
        codes.append(code)
    return tuple(codes), None


def _whole_number(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None  # true/false is not a score
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and "_" not in raw:  # Python reads "1_0" as 10: a typo, not a score
        try:
            return int(raw.strip())
        except ValueError:
            return None
    return None


def _number(raw: Any) -> float | int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw  # never through float(): a 400-digit whole number would overflow it
    if isinstance(raw, float):
        return raw if math.isfinite(raw) else None
    if isinstance(raw, str) and "_" not in raw:
        try:
            value = float(raw.strip())
        except ValueError:
            return None
        return value if math.isfinite(value) else None
    return None


def _contiguous(values: tuple[int, ...]) -> bool:
    return len(values) > 2 and list(values) == list(range(values[0], values[-1] + 1))


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() else str(value)


def _allowed_detail(item: Item) -> Any:
    if item.kind is ItemKind.points:
        return list(item.allowed)
    if item.kind is ItemKind.number:
        return {"minimum": item.minimum, "maximum": item.maximum, "unit": item.unit}
    if item.kind is ItemKind.yes_no:
        return [True, False]
    return list(item.choices)


# --------------------------------------------------------------------------------------------
# Shared helpers for summed questionnaires


def points_item(code: str, zh: str, en: str, allowed: Sequence[int], domain: str | None = None) -> Item:
    return Item(code=code, label_zh=zh, label_en=en, allowed=tuple(allowed), domain=domain)


def yes_no_item(code: str, zh: str, en: str) -> Item:
    return Item(code=code, label_zh=zh, label_en=en, kind=ItemKind.yes_no)


def item_lines(items: Sequence[Item], points: Mapping[str, int], unit_zh: str = "分") -> list[Explanation]:
    """One explanation per item that added points, in the instrument's order."""
    lines = []
    for item in items:
        value = points.get(item.code, 0)
        if value:
            lines.append(
                Explanation(
                    zh=f"{item.label_zh}：{value} {unit_zh}",
                    en=f"{item.label_en}: {value} point{'s' if value != 1 else ''}",
                    item=item.code,
                    points=value,
                )
            )
    return lines


def level_line(total: float, level: Level, name_zh: str, name_en: str) -> Explanation:
    return Explanation(
        zh=f"{name_zh}总分 {_num(total)}：{level.zh}", en=f"{name_en} total {_num(total)}: {level.en}"
    )


def _summed(
    code: str,
    name_zh: str,
    name_en: str,
    items: Sequence[Item],
    bands: Sequence[Band],
    answers: Any,
    points_of: Mapping[str, Any] | None = None,
) -> tuple[AssessmentResult, dict[str, Any], int]:
    """Validate, add up the item points and band the total (the common case)."""
    values = validate_answers(code, items, answers)
    points = {
        item.code: (points_of[item.code](values[item.code]) if points_of else values[item.code])
        for item in items
    }
    total = sum(points.values())
    level = band_of(total, bands)
    explanation = [*item_lines(items, points), level_line(total, level, name_zh, name_en)]
    max_total = sum(_max_points(item, points_of) for item in items)
    return result(code, total, level, explanation, max_total=max_total), values, total


def _max_points(item: Item, points_of: Mapping[str, Any] | None) -> int:
    if points_of:
        return max(points_of[item.code](answer) for answer in (True, False))
    return item.max_points


def _yes_scores(value: bool) -> int:
    return 1 if value else 0


def _no_scores(value: bool) -> int:
    return 0 if value else 1


# --------------------------------------------------------------------------------------------
# GB/T 42195-2022 老年人能力评估规范 (capability assessment of older adults)

# Annex B: four domains, 26 items; each item's top score is its best function.
SELF_CARE = "self_care"
BASIC_MOVEMENT = "basic_movement"
MENTAL_STATE = "mental_state"
PERCEPTION_SOCIAL = "perception_social"
CAPABILITY_DOMAINS: dict[str, tuple[str, str]] = {
    SELF_CARE: ("自理能力", "self-care"),
    BASIC_MOVEMENT: ("基础运动能力", "basic movement"),
    MENTAL_STATE: ("精神状态", "mental state"),
    PERCEPTION_SOCIAL: ("感知觉与社会参与", "perception and social participation"),
}
_0_4 = (0, 1, 2, 3, 4)
_0_3 = (0, 1, 2, 3)
_0_2 = (0, 1, 2)
_0_1 = (0, 1)
GBT42195_ITEMS: tuple[Item, ...] = (
    points_item("eating", "进食", "eating", _0_4, SELF_CARE),
    points_item("grooming", "修饰", "grooming", _0_4, SELF_CARE),
    points_item("bathing", "洗澡", "bathing", _0_4, SELF_CARE),
    points_item("dressing_upper", "穿/脱上衣", "dressing: upper body", _0_4, SELF_CARE),
    points_item("dressing_lower", "穿/脱裤子和鞋袜", "dressing: trousers, shoes and socks", _0_4, SELF_CARE),
    points_item("urine_control", "小便控制", "bladder control", _0_4, SELF_CARE),
    points_item("bowel_control", "大便控制", "bowel control", _0_4, SELF_CARE),
    points_item("toileting", "如厕", "toileting", _0_4, SELF_CARE),
    points_item("bed_mobility", "床上体位转移", "turning and sitting up in bed", _0_4, BASIC_MOVEMENT),
    points_item("bed_chair_transfer", "床椅转移", "bed-chair transfer", _0_4, BASIC_MOVEMENT),
    points_item("walking", "平地行走", "walking on level ground", _0_4, BASIC_MOVEMENT),
    points_item("stairs", "上下楼梯", "stairs", _0_3, BASIC_MOVEMENT),
    points_item("time_orientation", "时间定向", "orientation to time", _0_4, MENTAL_STATE),
    points_item("place_orientation", "空间定向", "orientation to place", _0_4, MENTAL_STATE),
    points_item("person_orientation", "人物定向", "orientation to people", _0_4, MENTAL_STATE),
    points_item("memory", "记忆", "memory", _0_4, MENTAL_STATE),
    points_item("comprehension", "理解能力", "understanding others", _0_4, MENTAL_STATE),
    points_item("expression", "表达能力", "expressing oneself", _0_4, MENTAL_STATE),
    points_item(
        "aggression",
        "攻击行为（1=近一月未出现）",
        "aggressive behaviour (1 = none in the last month)",
        _0_1,
        MENTAL_STATE,
    ),
    points_item(
        "depressive_symptoms",
        "抑郁症状（1=近一月未出现）",
        "depressive symptoms (1 = none in the last month)",
        _0_1,
        MENTAL_STATE,
    ),
    points_item("consciousness", "意识水平", "level of consciousness", _0_2, MENTAL_STATE),
    points_item("vision", "视力", "vision", _0_2, PERCEPTION_SOCIAL),
    points_item("hearing", "听力", "hearing", _0_2, PERCEPTION_SOCIAL),
    points_item("daily_affairs", "执行日常事务", "managing daily affairs", _0_4, PERCEPTION_SOCIAL),
    points_item("transport", "使用交通工具外出", "going out by transport", _0_3, PERCEPTION_SOCIAL),
    points_item("social_interaction", "社会交往能力", "social interaction", _0_4, PERCEPTION_SOCIAL),
)
CARE_RISK_EVENTS: dict[str, tuple[str, str]] = {
    "fall": ("跌倒", "fall"),
    "choking": ("噎食", "choking"),
    "self_harm": ("自伤/自杀", "self-harm"),
    "wandering": ("走失", "wandering"),
}
GBT42195_CONTEXT: tuple[Item, ...] = (
    Item("coma", "处于昏迷状态", "in a coma", kind=ItemKind.yes_no, required=False, default=False),
    Item(
        "diagnoses",
        "诊断（ICD-10 编码）",
        "diagnoses (ICD-10 codes)",
        kind=ItemKind.codes,
        required=False,
        default=(),
    ),
    Item(
        "psychiatric_diagnosis",
        "精神科专科医生诊断的其他精神和行为障碍",
        "other mental or behavioural disorder diagnosed by a psychiatrist",
        kind=ItemKind.yes_no,
        required=False,
        default=False,
    ),
    Item(
        "care_risk_events",
        "近30天照护风险事件",
        "care-risk events in the last 30 days",
        kind=ItemKind.codes,
        choices=tuple(CARE_RISK_EVENTS),
        required=False,
        default=(),
    ),
)

# The five levels shared with the registry (resident.capability_level), least to most severe.
CAPABILITY_LEVELS: tuple[Level, ...] = (
    Level("intact", "能力完好", "capability intact"),
    Level("mild", "轻度失能", "mild disability"),
    Level("moderate", "中度失能", "moderate disability"),
    Level("severe", "重度失能", "severe disability"),
    Level("total", "完全失能", "total disability"),
)
CAPABILITY_LEVEL_CODES: tuple[str, ...] = tuple(level.code for level in CAPABILITY_LEVELS)
_CAPABILITY = {level.code: level for level in CAPABILITY_LEVELS}
# GB/T 42195-2022 clause 6 (能力等级划分): 90 / 66-89 / 46-65 / 30-45 / 0-29.
GBT42195_BANDS: tuple[Band, ...] = (
    Band(90, 90, _CAPABILITY["intact"]),
    Band(66, 89, _CAPABILITY["mild"]),
    Band(46, 65, _CAPABILITY["moderate"]),
    Band(30, 45, _CAPABILITY["severe"]),
    Band(0, 29, _CAPABILITY["total"]),
)
DEMENTIA_ICD10_PREFIXES = ("F00", "F01", "F02", "F03")


def is_dementia_code(code: str) -> bool:
    """ICD-10 F00-F03 (dementia in Alzheimer's, vascular, other and unspecified dementia)."""
    return code.strip().upper().replace(" ", "")[:3] in DEMENTIA_ICD10_PREFIXES


def capability_level(total: int) -> Level:
    """The level from the total alone (GB/T 42195-2022 clause 6), before any adjustment."""
    return band_of(total, GBT42195_BANDS)


def adjust_capability_level(
    base: str,
    *,
    coma: bool = False,
    dementia: bool = False,
    dementia_codes: Sequence[str] = (),
    psychiatric_diagnosis: bool = False,
    care_risk_events: Sequence[str] = (),
) -> tuple[Level, list[Explanation], list[Flag]]:
    """Apply the standard's level changes to a base level code.

    GB/T 42195-2022 clause 6 notes: coma -> total disability; dementia or another psychiatric
    diagnosis -> one level more severe; >= 2 care-risk events in 30 days -> one level more severe.
    The two one-level rules add up; nothing goes past total disability.
    """
    index = CAPABILITY_LEVEL_CODES.index(base)
    lines: list[Explanation] = []
    flags: list[Flag] = []
    last = len(CAPABILITY_LEVELS) - 1
    if coma:
        flags.append(Flag(code="coma", zh="处于昏迷状态", en="in a coma"))
        lines.append(
            Explanation(
                zh=f"处于昏迷状态，直接评定为{CAPABILITY_LEVELS[last].zh}",
                en=f"in a coma: rated {CAPABILITY_LEVELS[last].en} directly",
            )
        )
        return CAPABILITY_LEVELS[last], lines, flags

    steps: list[tuple[str, str]] = []
    dementia = dementia or bool(dementia_codes)
    if dementia or psychiatric_diagnosis:
        reasons_zh, reasons_en = [], []
        if dementia:
            codes = f"（{'、'.join(dementia_codes)}）" if dementia_codes else ""
            flags.append(Flag(code="dementia", zh="确诊痴呆", en="diagnosed dementia"))
            reasons_zh.append(f"确诊痴呆{codes}")
            reasons_en.append(
                "diagnosed dementia" + (f" ({', '.join(dementia_codes)})" if dementia_codes else "")
            )
        if psychiatric_diagnosis:
            flags.append(
                Flag(
                    code="psychiatric_diagnosis", zh="精神科诊断的精神和行为障碍", en="psychiatric diagnosis"
                )
            )
            reasons_zh.append("精神科诊断的其他精神和行为障碍")
            reasons_en.append("other psychiatric diagnosis")
        # One step for the clause, even when both a dementia and another diagnosis are known.
        steps.append(("、".join(reasons_zh), " and ".join(reasons_en)))
    if len(care_risk_events) >= 2:
        kinds_zh = "、".join(CARE_RISK_EVENTS[event][0] for event in care_risk_events)
        kinds_en = ", ".join(CARE_RISK_EVENTS[event][1] for event in care_risk_events)
        flags.append(
            Flag(
                code="care_risk_events",
                zh="近30天多次照护风险事件",
                en="repeated care-risk events in 30 days",
            )
        )
        steps.append(
            (
                f"近30天发生照护风险事件 {len(care_risk_events)} 次（{kinds_zh}）",
                f"{len(care_risk_events)} care-risk events in the last 30 days ({kinds_en})",
            )
        )
    for zh, en in steps:
        before = CAPABILITY_LEVELS[index]
        if index == last:
            lines.append(
                Explanation(
                    zh=f"{zh}：已是{before.zh}，不再提高", en=f"{en}: already {before.en}, no further step"
                )
            )
            continue
        index += 1
        after = CAPABILITY_LEVELS[index]
        lines.append(
            Explanation(
                zh=f"{zh}：能力等级提高一级，{before.zh} → {after.zh}",
                en=f"{en}: one level more severe, {before.en} -> {after.en}",
            )
        )
    return CAPABILITY_LEVELS[index], lines, flags


def score_gbt42195(answers: Mapping[str, Any]) -> AssessmentResult:
    """老年人能力评估 per GB/T 42195-2022: 26 items, 0-90, five levels with adjustments."""
    code = "gbt42195"
    values = validate_answers(code, GBT42195_ITEMS + GBT42195_CONTEXT, answers)
    bad_codes = [entry for entry in values["diagnoses"] if not _looks_like_icd10(entry)]
    if bad_codes:
        item = GBT42195_CONTEXT[1]
        raise_problems(
            code,
            [
                {
                    "code": "assessment.item.range",
                    "item": item.code,
                    "message": f"诊断编码 {bad_codes[0]} 不是 ICD-10 编码（应如 F03 或 F00.1） "
                    f"(diagnosis '{bad_codes[0]}' is not an ICD-10 code such as F03 or F00.1)",
                }
            ],
        )
    subtotals = {domain: 0 for domain in CAPABILITY_DOMAINS}
    maxima = {domain: 0 for domain in CAPABILITY_DOMAINS}
    for item in GBT42195_ITEMS:
        subtotals[item.domain or ""] += values[item.code]
        maxima[item.domain or ""] += item.max_points
    total = sum(subtotals.values())
    base = capability_level(total)
    explanation = [
        Explanation(
            zh=f"{CAPABILITY_DOMAINS[domain][0]} {subtotals[domain]}/{maxima[domain]} 分",
            en=f"{CAPABILITY_DOMAINS[domain][1]} {subtotals[domain]}/{maxima[domain]}",
            item=domain,
            points=subtotals[domain],
        )
        for domain in CAPABILITY_DOMAINS
    ]
    explanation += _shortfall_lines(values)
    explanation.append(level_line(total, base, "能力评估", "capability"))
    dementia_codes = [entry.strip().upper() for entry in values["diagnoses"] if is_dementia_code(entry)]
    level, adjustments, flags = adjust_capability_level(
        base.code,
        coma=values["coma"],
        dementia_codes=dementia_codes,
        psychiatric_diagnosis=values["psychiatric_diagnosis"],
        care_risk_events=values["care_risk_events"],
    )
    return result(
        code,
        total,
        level,
        explanation + adjustments,
        max_total=sum(maxima.values()),
        flags=flags,
        details={"domains": subtotals, "base_level": base.code, "adjusted": level.code != base.code},
    )


def _shortfall_lines(values: Mapping[str, Any]) -> list[Explanation]:
    """The items below their best score: where the points were lost."""
    lines = []
    for item in GBT42195_ITEMS:
        value = values[item.code]
        if value < item.max_points:
            lines.append(
                Explanation(
                    zh=f"{item.label_zh}：{value}/{item.max_points} 分",
                    en=f"{item.label_en}: {value}/{item.max_points}",
                    item=item.code,
                    points=value,
                )
            )
    return lines


def _looks_like_icd10(code: str) -> bool:
    text = code.strip().upper()
    return len(text) >= 3 and text[0].isalpha() and text[1:3].isdigit()


# --------------------------------------------------------------------------------------------
# 国家基本公共卫生服务规范（第三版）老年人生活自理能力评估表

SELF_CARE_ITEMS: tuple[Item, ...] = (
    points_item("eating", "进餐", "eating", (0, 3, 5)),
    points_item("grooming", "梳洗", "washing and grooming", (0, 1, 3, 7)),
    points_item("dressing", "穿衣", "dressing", (0, 3, 5)),
    points_item("toileting", "如厕", "toileting", (0, 1, 5, 10)),
    points_item("activity", "活动", "moving about", (0, 1, 5, 10)),
)
# 基本公卫 elderly health management: 0-3 / 4-8 / 9-18 / >= 19 (maximum 37).
SELF_CARE_BANDS: tuple[Band, ...] = (
    Band(0, 3, Level("independent", "可自理", "independent")),
    Band(4, 8, Level("mild_dependence", "轻度依赖", "mild dependence")),
    Band(9, 18, Level("moderate_dependence", "中度依赖", "moderate dependence")),
    Band(19, 37, Level("dependent", "不能自理", "cannot care for self")),
)


def score_self_care(answers: Mapping[str, Any]) -> AssessmentResult:
    """老年人生活自理能力评估 (基本公卫 3rd ed.): higher totals mean more dependence."""
    scored, _, _ = _summed(
        "self_care", "生活自理能力", "self-care", SELF_CARE_ITEMS, SELF_CARE_BANDS, answers
    )
    return scored


# --------------------------------------------------------------------------------------------
# Barthel index (日常生活活动能力)

BARTHEL_ITEMS: tuple[Item, ...] = (
    points_item("feeding", "进食", "feeding", (0, 5, 10)),
    points_item("bathing", "洗澡", "bathing", (0, 5)),
    points_item("grooming", "修饰", "grooming", (0, 5)),
    points_item("dressing", "穿衣", "dressing", (0, 5, 10)),
    points_item("bowels", "控制大便", "bowel control", (0, 5, 10)),
    points_item("bladder", "控制小便", "bladder control", (0, 5, 10)),
    points_item("toilet_use", "如厕", "toilet use", (0, 5, 10)),
    points_item("transfers", "床椅转移", "bed-chair transfer", (0, 5, 10, 15)),
    points_item("mobility", "平地行走45米", "walking 45 m on level ground", (0, 5, 10, 15)),
    points_item("stairs", "上下楼梯", "stairs", (0, 5, 10)),
)
# Chinese nursing bands: <= 40 severe, 41-60 moderate, 61-99 mild, 100 independent.
BARTHEL_BANDS: tuple[Band, ...] = (
    Band(100, 100, Level("independent", "无需依赖", "independent")),
    Band(61, 99, Level("mild", "轻度依赖", "mild dependence")),
    Band(41, 60, Level("moderate", "中度依赖", "moderate dependence")),
    Band(0, 40, Level("severe", "重度依赖", "severe dependence")),
)


def score_barthel(answers: Mapping[str, Any]) -> AssessmentResult:
    scored, _, _ = _summed("barthel", "Barthel指数", "Barthel index", BARTHEL_ITEMS, BARTHEL_BANDS, answers)
    return scored


# --------------------------------------------------------------------------------------------
# AD8 dementia screen (AD8 痴呆筛查)

AD8_ITEMS: tuple[Item, ...] = (
    yes_no_item("judgment", "判断力出现问题", "problems with judgment"),
    yes_no_item("interest", "对活动和爱好的兴趣降低", "less interest in hobbies and activities"),
    yes_no_item("repetition", "反复说同样的事情、问同样的问题", "repeats questions, stories or statements"),
    yes_no_item(
        "learning_tools", "学习使用工具或家用电器有困难", "trouble learning to use a tool or appliance"
    ),
    yes_no_item("month_year", "记不清当前的月份或年份", "forgets the correct month or year"),
    yes_no_item("finances", "处理复杂的个人经济事务有困难", "trouble handling complicated financial affairs"),
    yes_no_item("appointments", "记不住和别人的约定", "trouble remembering appointments"),
    yes_no_item("daily_thinking", "日常记忆和思考能力出现问题", "daily problems with thinking or memory"),
)
# AD8: two or more changes noticed means cognitive impairment is likely.
AD8_BANDS: tuple[Band, ...] = (
    Band(0, 1, Level("negative", "筛查阴性", "screen negative")),
    Band(
        2, 8, Level("positive", "筛查阳性：可能存在认知障碍", "screen positive: cognitive impairment likely")
    ),
)


def score_ad8(answers: Mapping[str, Any]) -> AssessmentResult:
    points_of = {item.code: _yes_scores for item in AD8_ITEMS}
    scored, _, _ = _summed("ad8", "AD8", "AD8", AD8_ITEMS, AD8_BANDS, answers, points_of)
    return scored


# --------------------------------------------------------------------------------------------
# Mini-Cog (简易认知评估)

MINICOG_ITEMS: tuple[Item, ...] = (
    points_item("word_recall", "三个词语回忆", "three-word recall", (0, 1, 2, 3)),
    points_item("clock", "画钟试验（正常2分，异常0分）", "clock drawing (normal 2, abnormal 0)", (0, 2)),
)
# Mini-Cog: a total of 0-2 is a positive screen for cognitive impairment.
MINICOG_BANDS: tuple[Band, ...] = (
    Band(
        0,
        2,
        Level("positive", "筛查阳性：可能存在认知障碍", "screen positive: cognitive impairment possible"),
    ),
    Band(3, 5, Level("negative", "筛查阴性", "screen negative")),
)


def score_minicog(answers: Mapping[str, Any]) -> AssessmentResult:
    scored, _, _ = _summed("minicog", "Mini-Cog", "Mini-Cog", MINICOG_ITEMS, MINICOG_BANDS, answers)
    return scored


# --------------------------------------------------------------------------------------------
# MMSE (简易精神状态检查) with education-specific dementia cut-offs

MMSE_EDUCATION: dict[str, tuple[str, str, int]] = {
    # education -> (zh, en, highest total that suggests dementia)
    "illiterate": ("文盲", "illiterate", 17),
    "primary": ("小学", "primary school", 20),
    "secondary_plus": ("中学及以上", "secondary school or above", 24),
}
MMSE_ITEMS: tuple[Item, ...] = (
    points_item("total", "MMSE 总分", "MMSE total", tuple(range(31))),
    Item(
        "education",
        "受教育程度",
        "education",
        kind=ItemKind.choice,
        choices=tuple(MMSE_EDUCATION),
    ),
)
MMSE_POSSIBLE_DEMENTIA = Level("possible_dementia", "可能痴呆", "possible dementia")
MMSE_NORMAL = Level("normal", "未达痴呆界值", "above the dementia cut-off")


def score_mmse(answers: Mapping[str, Any]) -> AssessmentResult:
    """MMSE total judged against the cut-off for the person's education (Chinese norms)."""
    values = validate_answers("mmse", MMSE_ITEMS, answers)
    total, education = values["total"], values["education"]
    zh, en, cutoff = MMSE_EDUCATION[education]
    level = MMSE_POSSIBLE_DEMENTIA if total <= cutoff else MMSE_NORMAL
    explanation = [
        Explanation(
            zh=f"受教育程度：{zh}，痴呆界值 ≤ {cutoff} 分",
            en=f"education: {en}; dementia cut-off <= {cutoff}",
            item="education",
        ),
        level_line(total, level, "MMSE", "MMSE"),
    ]
    return result("mmse", total, level, explanation, max_total=30, details={"cutoff": cutoff})


# --------------------------------------------------------------------------------------------
# PHQ-9 (患者健康问卷抑郁量表)

_PHQ_FREQUENCY = (0, 1, 2, 3)  # 完全不会 / 好几天 / 一半以上的天数 / 几乎每天
PHQ9_ITEMS: tuple[Item, ...] = (
    points_item(
        "interest", "做事时提不起劲或没有兴趣", "little interest or pleasure in doing things", _PHQ_FREQUENCY
    ),
    points_item("mood", "感到心情低落、沮丧或绝望", "feeling down, depressed or hopeless", _PHQ_FREQUENCY),
    points_item(
        "sleep", "入睡困难、睡不安稳或睡眠过多", "trouble sleeping, or sleeping too much", _PHQ_FREQUENCY
    ),
    points_item("energy", "感觉疲倦或没有活力", "feeling tired or having little energy", _PHQ_FREQUENCY),
    points_item("appetite", "食欲不振或吃太多", "poor appetite or overeating", _PHQ_FREQUENCY),
    points_item(
        "self_worth",
        "觉得自己很糟、很失败，或让自己或家人失望",
        "feeling bad about yourself, a failure",
        _PHQ_FREQUENCY,
    ),
    points_item("concentration", "对事物专注有困难", "trouble concentrating", _PHQ_FREQUENCY),
    points_item(
        "psychomotor",
        "动作或说话缓慢，或坐立不安",
        "moving or speaking slowly, or being restless",
        _PHQ_FREQUENCY,
    ),
    points_item(
        "self_harm",
        "有不如死掉或用某种方式伤害自己的念头",
        "thoughts of being better off dead or of self-harm",
        _PHQ_FREQUENCY,
    ),
)
PHQ9_BANDS: tuple[Band, ...] = (
    Band(0, 4, Level("none", "无抑郁症状", "no or minimal depression")),
    Band(5, 9, Level("mild", "轻度抑郁", "mild depression")),
    Band(10, 14, Level("moderate", "中度抑郁", "moderate depression")),
    Band(15, 19, Level("moderately_severe", "中重度抑郁", "moderately severe depression")),
    Band(20, 27, Level("severe", "重度抑郁", "severe depression")),
)
SELF_HARM_FLAG = Flag(
    code="self_harm_risk",
    zh="PHQ-9 第9题阳性（有轻生或自伤念头），需尽快评估安全",
    en="PHQ-9 item 9 positive (thoughts of death or self-harm): assess safety promptly",
)


def score_phq9(answers: Mapping[str, Any]) -> AssessmentResult:
    scored, values, _ = _summed("phq9", "PHQ-9", "PHQ-9", PHQ9_ITEMS, PHQ9_BANDS, answers)
    # Item 9 is a safety question: any answer above 0 needs a person, whatever the total.
    if values["self_harm"] > 0:
        return scored.model_copy(update={"flags": [*scored.flags, SELF_HARM_FLAG]})
    return scored


# --------------------------------------------------------------------------------------------
# GDS-15 (老年抑郁量表简版)

# (code, zh, en, depressed answer is "yes"): five items are reverse-keyed (a "no" scores).
_GDS15 = (
    ("satisfied", "您对生活基本满意吗", "basically satisfied with your life", False),
    ("dropped_activities", "您是否放弃了很多活动和兴趣", "dropped many activities and interests", True),
    ("life_empty", "您是否觉得生活空虚", "feel that your life is empty", True),
    ("bored", "您是否常感到厌倦", "often get bored", True),
    ("good_spirits", "您大部分时间精神都好吗", "in good spirits most of the time", False),
    ("afraid", "您是否害怕会有不好的事情发生在您身上", "afraid something bad will happen to you", True),
    ("happy", "您大部分时间感到快乐吗", "feel happy most of the time", False),
    ("helpless", "您是否常感到无助", "often feel helpless", True),
    ("stay_home", "您是否宁愿待在家里而不愿外出做新鲜事", "prefer to stay at home rather than go out", True),
    ("memory", "您是否觉得记忆力比大多数人差", "more problems with memory than most", True),
    ("wonderful_alive", "您是否觉得现在活着很美好", "think it is wonderful to be alive now", False),
    ("worthless", "您是否觉得自己现在很没用", "feel pretty worthless the way you are now", True),
    ("full_of_energy", "您觉得精力充沛吗", "feel full of energy", False),
    ("hopeless", "您是否觉得自己的处境没有希望", "feel that your situation is hopeless", True),
    ("others_better", "您是否觉得大多数人比您过得好", "think most people are better off than you", True),
)
GDS15_ITEMS: tuple[Item, ...] = tuple(yes_no_item(code, zh, en) for code, zh, en, _ in _GDS15)
GDS15_REVERSE_KEYED: tuple[str, ...] = tuple(
    code for code, _, _, depressed_yes in _GDS15 if not depressed_yes
)
GDS15_BANDS: tuple[Band, ...] = (
    Band(0, 4, Level("normal", "无抑郁提示", "no depression indicated")),
    Band(5, 15, Level("suggests_depression", "提示抑郁", "suggests depression")),
)


def score_gds15(answers: Mapping[str, Any]) -> AssessmentResult:
    points_of = {code: (_yes_scores if depressed_yes else _no_scores) for code, _, _, depressed_yes in _GDS15}
    scored, _, _ = _summed("gds15", "GDS-15", "GDS-15", GDS15_ITEMS, GDS15_BANDS, answers, points_of)
    return scored


# --------------------------------------------------------------------------------------------
# Morse Fall Scale (Morse 跌倒风险评估量表)

MORSE_ITEMS: tuple[Item, ...] = (
    points_item("fall_history", "近3个月跌倒史（有25分）", "history of falling (yes 25)", (0, 25)),
    points_item("secondary_diagnosis", "超过一个医学诊断（有15分）", "secondary diagnosis (yes 15)", (0, 15)),
    points_item(
        "ambulatory_aid",
        "行走辅助（无/卧床/护士扶助0分，拐杖/助行器15分，扶家具行走30分）",
        "ambulatory aid (none/bed rest/nurse 0, crutches/cane/walker 15, furniture 30)",
        (0, 15, 30),
    ),
    points_item("iv_access", "静脉输液或留置针（有20分）", "IV therapy or heparin lock (yes 20)", (0, 20)),
    points_item(
        "gait",
        "步态（正常/卧床/轮椅0分，虚弱10分，受损20分）",
        "gait (normal/bed rest/wheelchair 0, weak 10, impaired 20)",
        (0, 10, 20),
    ),
    points_item(
        "mental_status",
        "认知状态（了解自身能力0分，高估或忘记自身限制15分）",
        "mental status (knows own ability 0, overestimates or forgets limits 15)",
        (0, 15),
    ),
)
# Sources disagree on the high-risk cut-off: Morse's own >= 45, many Chinese nursing texts >= 51
# (with 25-50 moderate). Both are offered; the district chooses, 45 is the default.
MORSE_HIGH_RISK_CUTOFFS: tuple[int, ...] = (45, 51)
MORSE_DEFAULT_HIGH_RISK_CUTOFF = 45
MORSE_LOW_RISK_BELOW = 25


def morse_bands(high_risk_cutoff: int = MORSE_DEFAULT_HIGH_RISK_CUTOFF) -> tuple[Band, ...]:
    if high_risk_cutoff not in MORSE_HIGH_RISK_CUTOFFS:
        raise Invalid(
            "assessment.option.invalid",
            f"Morse 高风险界值应为 {' 或 '.join(map(str, MORSE_HIGH_RISK_CUTOFFS))}，收到 {high_risk_cutoff} "
            f"(Morse high-risk cut-off must be one of {', '.join(map(str, MORSE_HIGH_RISK_CUTOFFS))}; got {high_risk_cutoff})",
            option="high_risk_cutoff",
            allowed=list(MORSE_HIGH_RISK_CUTOFFS),
        )
    return (
        Band(0, MORSE_LOW_RISK_BELOW - 1, Level("low", "低风险", "low fall risk")),
        Band(MORSE_LOW_RISK_BELOW, high_risk_cutoff - 1, Level("moderate", "中风险", "moderate fall risk")),
        Band(high_risk_cutoff, 125, Level("high", "高风险", "high fall risk")),
    )


def score_morse(
    answers: Mapping[str, Any], *, high_risk_cutoff: int = MORSE_DEFAULT_HIGH_RISK_CUTOFF
) -> AssessmentResult:
    bands = morse_bands(high_risk_cutoff)
    scored, _, _ = _summed("morse", "Morse跌倒风险", "Morse fall scale", MORSE_ITEMS, bands, answers)
    line = Explanation(
        zh=f"高风险界值：≥ {high_risk_cutoff} 分", en=f"high-risk cut-off: >= {high_risk_cutoff}"
    )
    return scored.model_copy(
        update={"explanation": [*scored.explanation, line], "details": {"high_risk_cutoff": high_risk_cutoff}}
    )


# --------------------------------------------------------------------------------------------
# FRAIL scale (衰弱筛查量表)

FRAIL_ITEMS: tuple[Item, ...] = (
    yes_no_item("fatigue", "疲乏：过去4周大部分时间感到疲乏", "fatigue most of the time in the past 4 weeks"),
    yes_no_item(
        "resistance", "阻力：不借助辅助难以连续上10级台阶", "cannot climb 10 steps without help or rest"
    ),
    yes_no_item("ambulation", "自由活动：难以步行几百米", "cannot walk a few hundred metres"),
    yes_no_item("illnesses", "疾病：患5种及以上慢性疾病", "5 or more chronic illnesses"),
    yes_no_item("weight_loss", "体重下降：1年内体重下降超过5%", "lost more than 5% of body weight in a year"),
)
FRAIL_BANDS: tuple[Band, ...] = (
    Band(0, 0, Level("robust", "无衰弱", "robust")),
    Band(1, 2, Level("pre_frail", "衰弱前期", "pre-frail")),
    Band(3, 5, Level("frail", "衰弱", "frail")),
)


def score_frail(answers: Mapping[str, Any]) -> AssessmentResult:
    points_of = {item.code: _yes_scores for item in FRAIL_ITEMS}
    scored, _, _ = _summed("frail", "FRAIL", "FRAIL", FRAIL_ITEMS, FRAIL_BANDS, answers, points_of)
    return scored


# --------------------------------------------------------------------------------------------
# MNA-SF (微型营养评定简表)

MNA_SF_ITEMS: tuple[Item, ...] = (
    points_item(
        "food_intake",
        "近3个月进食量减少（严重0，中度1，无2）",
        "food intake decline in 3 months (severe 0, moderate 1, none 2)",
        (0, 1, 2),
    ),
    points_item(
        "weight_loss",
        "近3个月体重下降（>3kg 0，不知道1，1-3kg 2，无3）",
        "weight loss in 3 months (>3 kg 0, unknown 1, 1-3 kg 2, none 3)",
        (0, 1, 2, 3),
    ),
    points_item(
        "mobility",
        "活动能力（卧床或坐轮椅0，能下床但不能外出1，能外出2）",
        "mobility (bed or chair bound 0, out of bed but not out 1, goes out 2)",
        (0, 1, 2),
    ),
    points_item(
        "acute_stress",
        "近3个月心理创伤或急性疾病（有0，无2）",
        "psychological stress or acute disease in 3 months (yes 0, no 2)",
        (0, 2),
    ),
    points_item(
        "neuropsychological",
        "精神心理问题（严重痴呆或抑郁0，轻度痴呆1，无2）",
        "neuropsychological problems (severe dementia or depression 0, mild dementia 1, none 2)",
        (0, 1, 2),
    ),
    points_item(
        "bmi_or_calf",
        "BMI（<19 0，19-21 1，21-23 2，≥23 3）或小腿围（<31cm 0，≥31cm 3）",
        "BMI (<19 0, 19-21 1, 21-23 2, >=23 3) or calf circumference (<31 cm 0, >=31 cm 3)",
        (0, 1, 2, 3),
    ),
)
MNA_SF_BANDS: tuple[Band, ...] = (
    Band(12, 14, Level("normal", "营养正常", "normal nutritional status")),
    Band(8, 11, Level("at_risk", "有营养不良风险", "at risk of malnutrition")),
    Band(0, 7, Level("malnourished", "营养不良", "malnourished")),
)


def score_mna_sf(answers: Mapping[str, Any]) -> AssessmentResult:
    scored, _, _ = _summed("mna_sf", "MNA-SF", "MNA-SF", MNA_SF_ITEMS, MNA_SF_BANDS, answers)
    return scored


# --------------------------------------------------------------------------------------------
# Braden scale (Braden 压力性损伤风险评估)

_1_4 = (1, 2, 3, 4)
BRADEN_ITEMS: tuple[Item, ...] = (
    points_item("sensory_perception", "感知能力", "sensory perception", _1_4),
    points_item("moisture", "皮肤潮湿", "moisture", _1_4),
    points_item("activity", "活动能力", "activity", _1_4),
    points_item("mobility", "移动能力", "mobility", _1_4),
    points_item("nutrition", "营养摄取", "nutrition", _1_4),
    points_item("friction_shear", "摩擦力和剪切力", "friction and shear", (1, 2, 3)),
)
# Lower is worse: <= 9 very high, 10-12 high, 13-14 moderate, 15-18 mild, >= 19 no risk.
BRADEN_BANDS: tuple[Band, ...] = (
    Band(6, 9, Level("very_high", "极高危", "very high risk")),
    Band(10, 12, Level("high", "高危", "high risk")),
    Band(13, 14, Level("moderate", "中危", "moderate risk")),
    Band(15, 18, Level("mild", "低危", "mild risk")),
    Band(19, 23, Level("none", "无风险", "no risk")),
)


def score_braden(answers: Mapping[str, Any]) -> AssessmentResult:
    scored, _, _ = _summed("braden", "Braden", "Braden", BRADEN_ITEMS, BRADEN_BANDS, answers)
    return scored
