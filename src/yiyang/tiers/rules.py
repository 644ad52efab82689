"""Tier rules as data and their pure evaluation: facts in, red / yellow / green with reasons out.

A fact is something known about a resident with where it came from (feed and source key, or an
assessment id) and when it was observed. A rule names the kind of fact it reads, which values
match (capability levels, ICD-10 codes or ranges, assessment levels, flags) and, where a fact
only counts for a while, how many days. The worst tier any rule reaches wins; every rule that
matched is kept as a reason, so a red resident's hypertension is still listed.

Defaults are ``DEFAULT_RULES``; a district overrides them from a TOML or JSON file
(``load_rules``, docs/tiers.md). No database, clock or settings here.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from yiyang.assessments.instruments import INSTRUMENTS
from yiyang.assessments.scoring import CAPABILITY_LEVEL_CODES, CAPABILITY_LEVELS
from yiyang.db import CHINA_TZ
from yiyang.errors import Invalid
from yiyang.i18n import translate


class Tier(enum.StrEnum):
    """红黄绿三色: most to least in need of care."""

    red = "red"  # 失能、失智: home sickbed + home care bed
    yellow = "yellow"  # 慢病、术后康复: health butler, chronic-disease plan, remote monitoring
    green = "green"  # 健康活力: wellness activities, volunteering


SEVERITY = {Tier.red: 0, Tier.yellow: 1, Tier.green: 2}
TIER_NAMES = {
    Tier.red: ("红色（失能失智）", "red (disabled or demented)"),
    Tier.yellow: ("黄色（慢病康复）", "yellow (chronic disease or rehab)"),
    Tier.green: ("绿色（健康活力）", "green (healthy and active)"),
}


class FactKind(enum.StrEnum):
    capability_level = "capability_level"  # resident.capability_level, with its provenance
    condition = "condition"  # a diagnosis (ICD-10) from the health or insurance feed
    assessment = "assessment"  # the latest result of an instrument
    assessment_flag = "assessment_flag"  # a flag on the latest result of an instrument
    alert = "alert"  # a recent alert (the alerts domain supplies these)


FACT_FIELDS = (
    "kind", "value", "observed_at", "feed", "source_key", "source_record_id", "assessment_id", "instrument", "display",
)  # fmt: skip
# A stored reason is one JSON array: the rule's code, its tier, then the fact's fields in this order.
# Arrays rather than objects: a sweep writes 400,000 residents' reasons and names would double them.
REASON_FIELDS = ("rule", "tier", *FACT_FIELDS)


# Facts, reasons and decisions are plain slotted dataclasses, not frozen ones: a sweep builds about
# a million of them and a frozen dataclass takes several times longer to construct. Treat them as
# values all the same.
@dataclass(slots=True, unsafe_hash=True)
class Fact:
    """Something known about a resident, where it came from and when it was observed."""

    kind: FactKind
    value: str  # capability level code, ICD-10 code, assessment level, flag code or alert kind
    observed_at: dt.datetime | dt.date
    feed: str | None = None
    source_key: str | None = None
    source_record_id: int | None = None
    assessment_id: int | None = None
    instrument: str | None = None
    display: str | None = None  # condition name or the level as staff read it

    def as_json(self) -> dict[str, Any]:
        """Every field by name, dates as ISO text (a naive datetime is UTC)."""
        return dict(
            zip(FACT_FIELDS, orjson.loads(orjson.dumps(self.row(), option=orjson.OPT_NAIVE_UTC)), strict=True)
        )

    def row(self) -> tuple[Any, ...]:
        """The fields in ``FACT_FIELDS`` order: how a stored reason holds its fact."""
        return (
            self.kind, self.value, self.observed_at, self.feed, self.source_key, self.source_record_id,
            self.assessment_id, self.instrument, self.display,
        )  # fmt: skip

    @staticmethod
    def from_json(body: Mapping[str, Any] | Sequence[Any]) -> Fact:
        """A fact from its stored row (``FACT_FIELDS`` order) or from a mapping of the same names."""
        values = dict(zip(FACT_FIELDS, body, strict=False)) if not isinstance(body, Mapping) else dict(body)
        raw = str(values["observed_at"])
        observed: dt.datetime | dt.date = (
            dt.datetime.fromisoformat(raw) if "T" in raw else dt.date.fromisoformat(raw)
        )
        return Fact(
            FactKind(values["kind"]), str(values["value"]), observed, values.get("feed"), values.get("source_key"),
            values.get("source_record_id"), values.get("assessment_id"), values.get("instrument"), values.get("display"),
        )  # fmt: skip

    @property
    def observed_on(self) -> dt.date:
        """The day in China (UTC+8) a timed fact was observed; dates stay as they are."""
        if isinstance(self.observed_at, dt.datetime):
            at = self.observed_at if self.observed_at.tzinfo else self.observed_at.replace(tzinfo=dt.UTC)
            return at.astimezone(CHINA_TZ).date()
        return self.observed_at


# --------------------------------------------------------------------------------------------
# ICD-10 code sets


@dataclass(frozen=True, slots=True)
class CodeSpec:
    """An ICD-10 category range ("I10-I15"), a category ("J44") or a subcode prefix ("Z54.0")."""

    low: str
    high: str
    prefix: bool  # match the compact code by prefix (subcodes), not the category by range

    @staticmethod
    def parse(text: str) -> CodeSpec:
        spec = text.strip().upper().replace(" ", "")
        low, sep, high = spec.partition("-")
        high = high if sep else low
        for end in (low, high):
            if len(end) < 3 or not end[0].isalpha() or not end[1:3].isdigit():
                raise ValueError(f"'{text}' is not an ICD-10 code or range such as I10, I10-I15 or Z54.0")
        if sep and (len(low) != 3 or len(high) != 3 or low[0] != high[0] or low > high):
            raise ValueError(f"'{text}': a range joins two categories of one chapter letter, e.g. I10-I15")
        if not sep and len(low) > 3:
            return CodeSpec(low.replace(".", ""), low.replace(".", ""), prefix=True)
        return CodeSpec(low, high, prefix=False)

    def matches(self, code: str) -> bool:
        compact = code.strip().upper().replace(" ", "").replace(".", "")
        if self.prefix:
            return compact.startswith(self.low)
        return self.low <= compact[:3] <= self.high


# --------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True, slots=True)
class TierRule:
    """Facts of ``kind`` whose value matches put the resident at least in ``tier``."""

    code: str
    tier: Tier
    kind: FactKind
    label_zh: str
    label_en: str
    values: tuple[str, ...] = ()  # exact values; empty means any value of the kind
    icd10: tuple[str, ...] = ()  # condition rules: codes, categories or ranges
    instrument: str | None = None  # assessment rules: the instrument whose result is read
    within_days: int | None = None  # the fact counts only this many days after it was observed
    standard: str = ""  # where the rule comes from
    specs: tuple[CodeSpec, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.icd10 and not self.specs:
            object.__setattr__(self, "specs", tuple(CodeSpec.parse(code) for code in self.icd10))

    def matches_value(self, fact: Fact) -> bool:
        if fact.kind is not self.kind:
            return False
        if self.instrument is not None and fact.instrument != self.instrument:
            return False
        if self.specs and not any(spec.matches(fact.value) for spec in self.specs):
            return False
        return not self.values or fact.value in self.values

    def in_window(self, fact: Fact, as_of: dt.date) -> bool:
        return self.within_days is None or (as_of - fact.observed_on).days <= self.within_days

    def as_json(self) -> dict[str, Any]:
        body = {
            "code": self.code, "tier": self.tier.value, "kind": self.kind.value, "label_zh": self.label_zh,
            "label_en": self.label_en, "values": list(self.values), "icd10": list(self.icd10),
            "instrument": self.instrument, "within_days": self.within_days, "standard": self.standard,
        }  # fmt: skip
        return body


_DISABLED = ("moderate", "severe", "total")

DEFAULT_RULES: tuple[TierRule, ...] = (
    # -- red: 失能、失智 ------------------------------------------------------------------------
    TierRule("capability.disabled", Tier.red, FactKind.capability_level, "中度及以上失能", "moderate or worse disability",
             values=_DISABLED, standard="GB/T 42195-2022 能力等级"),
    TierRule("dementia.diagnosis", Tier.red, FactKind.condition, "痴呆诊断", "dementia diagnosis",
             icd10=("F00-F03", "G30"), standard="ICD-10 F00-F03, G30"),
    TierRule("dementia.ad8", Tier.red, FactKind.assessment, "AD8筛查阳性", "positive AD8 screen",
             instrument="ad8", values=("positive",), standard="AD8 >= 2"),
    TierRule("dementia.minicog", Tier.red, FactKind.assessment, "Mini-Cog筛查阳性", "positive Mini-Cog screen",
             instrument="minicog", values=("positive",), standard="Mini-Cog 0-2"),
    TierRule("dementia.mmse", Tier.red, FactKind.assessment, "MMSE提示痴呆", "MMSE at the dementia cut-off",
             instrument="mmse", values=("possible_dementia",), standard="MMSE education cut-offs"),
    TierRule("dementia.capability_assessment", Tier.red, FactKind.assessment_flag, "能力评估记录痴呆诊断",
             "dementia recorded in the capability assessment", instrument="gbt42195", values=("dementia",),
             standard="GB/T 42195-2022"),
    TierRule("disability.barthel", Tier.red, FactKind.assessment, "Barthel指数中重度依赖",
             "moderate or severe dependence on the Barthel index", instrument="barthel",
             values=("moderate", "severe"), standard="Barthel <= 60"),
    # -- yellow: 慢病、术后康复、风险 -------------------------------------------------------------
    TierRule("capability.mild", Tier.yellow, FactKind.capability_level, "轻度失能", "mild disability",
             values=("mild",), standard="GB/T 42195-2022 能力等级"),
    TierRule("condition.hypertension", Tier.yellow, FactKind.condition, "高血压", "hypertension",
             icd10=("I10-I15",), standard="ICD-10 I10-I15"),
    TierRule("condition.diabetes", Tier.yellow, FactKind.condition, "糖尿病", "diabetes",
             icd10=("E10-E14",), standard="ICD-10 E10-E14"),
    TierRule("condition.chd", Tier.yellow, FactKind.condition, "冠心病", "coronary heart disease",
             icd10=("I20-I25",), standard="ICD-10 I20-I25"),
    TierRule("condition.stroke", Tier.yellow, FactKind.condition, "脑卒中", "stroke",
             icd10=("I60-I69",), standard="ICD-10 I60-I69"),
    TierRule("condition.copd", Tier.yellow, FactKind.condition, "慢阻肺", "COPD",
             icd10=("J44",), standard="ICD-10 J44"),
    TierRule("condition.heart_failure", Tier.yellow, FactKind.condition, "心力衰竭", "heart failure",
             icd10=("I50",), standard="ICD-10 I50"),
    TierRule("condition.ckd", Tier.yellow, FactKind.condition, "慢性肾脏病", "chronic kidney disease",
             icd10=("N18",), standard="ICD-10 N18"),
    TierRule("condition.parkinson", Tier.yellow, FactKind.condition, "帕金森病", "Parkinson's disease",
             icd10=("G20",), standard="ICD-10 G20"),
    TierRule("condition.severe_mental", Tier.yellow, FactKind.condition, "严重精神障碍", "severe mental disorder",
             icd10=("F20", "F22", "F25", "F31"), standard="国家基本公共卫生服务规范（第三版）严重精神障碍"),
    TierRule("rehab.post_surgery", Tier.yellow, FactKind.condition, "术后康复期", "post-operative rehabilitation",
             icd10=("Z47", "Z48", "Z54.0", "Z09.0"), within_days=90,
             standard="ICD-10 Z47/Z48 aftercare, Z54.0/Z09.0 after surgery"),
    TierRule("fall.morse_high", Tier.yellow, FactKind.assessment, "跌倒高风险", "high fall risk",
             instrument="morse", values=("high",), within_days=365, standard="Morse fall scale"),
    TierRule("cvd.china_par_high", Tier.yellow, FactKind.assessment, "心血管病高危", "high cardiovascular risk",
             instrument="china_par", values=("high",), standard="China-PAR >= 10%"),
    TierRule("alert.recent", Tier.yellow, FactKind.alert, "近期告警", "recent alert", within_days=30),
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass(slots=True)
class TierReason:
    """One rule that matched one fact; the sentence a person reads is built when asked for."""

    rule: TierRule
    fact: Fact

    @property
    def tier(self) -> Tier:
        return self.rule.tier

    @property
    def zh(self) -> str:
        return reason_text(self.rule, self.fact)[0]

    @property
    def en(self) -> str:
        return reason_text(self.rule, self.fact)[1]

    def as_json(self) -> dict[str, Any]:
        """The rule and the fact by name (stored as an array, see ``REASON_FIELDS``)."""
        return {"rule": self.rule.code, "tier": self.rule.tier.value, **self.fact.as_json()}


@dataclass(slots=True)
class TierDecision:
    tier: Tier
    reasons: tuple[TierReason, ...]

    @property
    def decisive(self) -> tuple[TierReason, ...]:
        """The reasons that put the resident in this tier (the others are milder)."""
        return tuple(reason for reason in self.reasons if reason.tier is self.tier)

    def as_json(self) -> list[dict[str, Any]]:
        return [reason.as_json() for reason in self.reasons]

    def dumps_reasons(self) -> bytes:
        """The reasons as stored: a JSON array of ``REASON_FIELDS`` arrays, written by orjson in C."""
        return orjson.dumps(
            [(r.rule.code, r.rule.tier, *r.fact.row()) for r in self.reasons], option=orjson.OPT_NAIVE_UTC
        )


GREEN = TierDecision(Tier.green, ())


class CompiledRules:
    """Rules indexed by fact kind, with a per-code cache for conditions (a sweep sees each code often)."""

    def __init__(self, rules: Sequence[TierRule]) -> None:
        self.rules = tuple(rules)
        self.by_code = {rule.code: rule for rule in self.rules}
        self.order = {rule.code: index for index, rule in enumerate(self.rules)}
        self.by_kind: dict[FactKind, tuple[TierRule, ...]] = {
            kind: tuple(rule for rule in self.rules if rule.kind is kind) for kind in FactKind
        }
        self._matching: dict[tuple[FactKind, str | None, str], tuple[TierRule, ...]] = {}
        self.instruments = frozenset(rule.instrument for rule in self.rules if rule.instrument)

    def matching(self, fact: Fact) -> tuple[TierRule, ...]:
        """The rules whose values this fact has (windows aside), cached: a sweep sees each value often."""
        key = (fact.kind, fact.instrument, fact.value)
        found = self._matching.get(key)
        if found is None:
            found = tuple(rule for rule in self.by_kind[fact.kind] if rule.matches_value(fact))
            self._matching[key] = found
        return found


@lru_cache(maxsize=8)
def compile_rules(rules: tuple[TierRule, ...]) -> CompiledRules:
    return CompiledRules(rules)


def evaluate_tier(
    facts: Iterable[Fact], rules: Sequence[TierRule] | CompiledRules = DEFAULT_RULES, *, as_of: dt.date
) -> TierDecision:
    """The tier the facts call for on ``as_of``, with every matching rule and fact as a reason.

    The most severe tier any rule reaches wins; with no red or yellow fact the resident is green.
    Reasons come most severe first, in rule order, newest fact first within a rule.
    """
    compiled = rules if isinstance(rules, CompiledRules) else compile_rules(tuple(rules))
    matched: list[tuple[TierRule, Fact]] = []
    for fact in facts:
        for rule in compiled.matching(fact):
            if rule.within_days is None or rule.in_window(fact, as_of):
                matched.append((rule, fact))
    if not matched:
        return GREEN
    if len(matched) > 1:
        unique: dict[tuple[str, Fact], tuple[TierRule, Fact]] = {}
        for pair in matched:
            unique.setdefault((pair[0].code, pair[1]), pair)  # the same fact twice counts once
        matched = list(unique.values())
        order = compiled.order
        matched.sort(
            key=lambda pair: (SEVERITY[pair[0].tier], order[pair[0].code], -pair[1].observed_on.toordinal())
        )
    reasons = tuple(TierReason(rule, fact) for rule, fact in matched)
    return TierDecision(reasons[0].tier, reasons)


def reason_text(rule: TierRule, fact: Fact) -> tuple[str, str]:
    """ "<rule>: <fact> (<source>, <day>)", in Chinese and in English."""
    what_zh, what_en = fact_words(fact)
    source_zh, source_en = source_words(fact)
    day = fact.observed_on.isoformat()
    return (
        f"{rule.label_zh}：{what_zh}（来源：{source_zh}，{day}）",
        f"{rule.label_en}: {what_en} (source: {source_en}, {day})",
    )


_CAPABILITY = {level.code: level for level in CAPABILITY_LEVELS}


def fact_words(fact: Fact) -> tuple[str, str]:
    if fact.kind is FactKind.capability_level:
        level = _CAPABILITY.get(fact.value)
        return (
            f"能力等级 {level.zh if level else fact.value}",
            f"capability level {level.en if level else fact.value}",
        )
    if fact.kind is FactKind.condition:
        name = f" {fact.display}" if fact.display else ""
        return f"诊断 {fact.value}{name}", f"diagnosis {fact.value}{name}"
    instrument = INSTRUMENTS.get(fact.instrument or "")
    name_zh = instrument.name_zh if instrument else (fact.instrument or "")
    name_en = instrument.name_en if instrument else (fact.instrument or "")
    if fact.kind is FactKind.assessment:
        return f"{name_zh} {fact.display or fact.value}", f"{name_en}: {fact.value.replace('_', ' ')}"
    if fact.kind is FactKind.assessment_flag:
        return (
            f"{name_zh} 标记 {fact.display or fact.value}",
            f"{name_en} flagged {fact.value.replace('_', ' ')}",
        )
    return f"告警 {fact.display or fact.value}", f"alert {fact.value}"


def source_words(fact: Fact) -> tuple[str, str]:
    if fact.assessment_id is not None:
        return f"评估记录 #{fact.assessment_id}", f"assessment #{fact.assessment_id}"
    if fact.feed:
        key = f" {fact.source_key}" if fact.source_key else ""
        return (
            f"{translate(f'feed.{fact.feed}', 'zh-CN')}{key}",
            f"{translate(f'feed.{fact.feed}', 'en')}{key}",
        )
    return "—", "—"


def reasons_from_json(
    stored: Sequence[Sequence[Any] | Mapping[str, Any]], rules: Sequence[TierRule] = DEFAULT_RULES
) -> list[TierReason]:
    """Stored reasons (``REASON_FIELDS`` arrays, or mappings of the same names) with their
    sentences rebuilt; a rule since removed or moved reads by its code, in the tier it gave."""
    by_code = compile_rules(tuple(rules)).by_code
    reasons = []
    for body in stored:
        values = dict(body) if isinstance(body, Mapping) else dict(zip(REASON_FIELDS, body, strict=False))
        code = str(values["rule"])
        fact = Fact.from_json(values)
        tier = Tier(values["tier"])
        rule = by_code.get(code)
        if rule is None or rule.tier is not tier:  # removed or re-tiered since: keep what was decided
            label = rule or TierRule(code, tier, fact.kind, code, code)
            rule = TierRule(label.code, tier, fact.kind, label.label_zh, label.label_en)
        reasons.append(TierReason(rule, fact))
    return reasons


# --------------------------------------------------------------------------------------------
# Loading a district's rules


_RULE_FIELDS = {f.name for f in fields(TierRule)} - {"specs"}
_TUPLE_FIELDS = ("values", "icd10")
_TEXT_FIELDS = ("label_zh", "label_en", "instrument", "standard")


def load_rules(path: Path | None, defaults: Sequence[TierRule] = DEFAULT_RULES) -> tuple[TierRule, ...]:
    """The defaults, changed by a TOML or JSON file when one is given (see docs/tiers.md)."""
    if path is None:
        return tuple(defaults)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
        data = json.loads(text) if Path(path).suffix.lower() == ".json" else tomllib.loads(text)
    except OSError as error:
        raise _rules_error(path, f"无法读取 (cannot read: {error.strerror or error})") from None
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise _rules_error(path, f"格式错误 (not valid TOML/JSON: {error})") from None
    return rules_from_data(data, defaults, source=str(path))


def rules_from_data(
    data: Any, defaults: Sequence[TierRule] = DEFAULT_RULES, *, source: str = "rules"
) -> tuple[TierRule, ...]:
    """Apply ``{"replace_defaults": bool, "rules": [...]}`` to the defaults.

    An entry whose ``code`` names a default changes only the fields it gives (``enabled = false``
    drops the rule); an entry with a new code adds a rule and must give every required field.
    """
    if not isinstance(data, Mapping):
        raise _rules_error(source, "应为对象 (the file must hold an object)")
    unknown = set(data) - {"replace_defaults", "rules"}
    if unknown:
        raise _rules_error(source, f"未知的键 (unknown keys): {', '.join(sorted(unknown))}")
    entries = data.get("rules", [])
    if not isinstance(entries, list):
        raise _rules_error(source, "rules 应为列表 (rules must be a list)")
    base = [] if data.get("replace_defaults") else list(defaults)
    by_code = {rule.code: index for index, rule in enumerate(base)}
    dropped: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("code"), str)
            or not entry["code"].strip()
        ):
            raise _rules_error(source, f"第 {number} 条规则缺少 code (rule {number} has no code)")
        code = entry["code"].strip()
        extra = set(entry) - _RULE_FIELDS - {"enabled"}
        if extra:
            raise _rules_error(
                source, f"规则 {code} 含未知字段 (rule {code} has unknown fields): {', '.join(sorted(extra))}"
            )
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):  # "false" as text would have left the rule in force
            raise _rules_error(
                source,
                f"规则 {code} 的 enabled 应为 true 或 false (rule {code}: enabled must be true or false)",
            )
        if not enabled:
            dropped.add(code)
            continue
        if code in by_code:
            base[by_code[code]] = _build_rule(source, code, entry, base[by_code[code]])
        else:
            by_code[code] = len(base)
            base.append(_build_rule(source, code, entry, None))
    return tuple(rule for rule in base if rule.code not in dropped)


def _build_rule(source: str, code: str, entry: Mapping[str, Any], current: TierRule | None) -> TierRule:
    values: dict[str, Any] = {name: entry[name] for name in _RULE_FIELDS if name in entry and name != "code"}
    try:
        if "tier" in values:
            values["tier"] = Tier(values["tier"])
        if "kind" in values:
            values["kind"] = FactKind(values["kind"])
        for name in _TEXT_FIELDS:  # a list or number here would fail later, far from the file
            if name in values and not (
                isinstance(values[name], str) or (name == "instrument" and values[name] is None)
            ):
                raise ValueError(f"{name} must be text")
        for name in _TUPLE_FIELDS:
            if name in values:
                if not isinstance(values[name], list) or not all(isinstance(v, str) for v in values[name]):
                    raise ValueError(f"{name} must be a list of strings")
                values[name] = tuple(v.strip() for v in values[name])
        within = values.get("within_days")
        if within is not None and (isinstance(within, bool) or not isinstance(within, int) or within < 0):
            raise ValueError("within_days must be a whole number of days >= 0")
        if current is not None:
            rule = replace(current, **values, specs=()) if "icd10" in values else replace(current, **values)
        else:
            missing = [name for name in ("tier", "kind", "label_zh", "label_en") if name not in values]
            if missing:
                raise ValueError(f"a new rule needs {', '.join(missing)}")
            rule = TierRule(code=code, **values)
    except (ValueError, TypeError) as error:
        raise _rules_error(source, f"规则 {code} 无效 (rule {code} is invalid: {error})") from None
    _check_rule(source, rule)
    return rule


def _check_rule(source: str, rule: TierRule) -> None:
    problem = None
    if rule.kind is FactKind.condition and not rule.specs:
        problem = "a condition rule needs icd10 codes"
    elif rule.kind is not FactKind.condition and rule.icd10:
        problem = "only condition rules take icd10"
    elif rule.kind in (FactKind.assessment, FactKind.assessment_flag) and rule.instrument not in INSTRUMENTS:
        problem = f"instrument must be one of {', '.join(INSTRUMENTS)}"
    elif rule.kind is FactKind.capability_level and not set(rule.values) <= set(CAPABILITY_LEVEL_CODES):
        problem = f"capability values must be among {', '.join(CAPABILITY_LEVEL_CODES)}"
    if problem:
        raise _rules_error(source, f"规则 {rule.code} 无效 (rule {rule.code} is invalid: {problem})")


def _rules_error(source: str | Path, message: str) -> Invalid:
    return Invalid("tier.rules.invalid", f"分级规则文件 {source}：{message}", source=str(source))
