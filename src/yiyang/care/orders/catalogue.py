"""The service catalogue as data, and the pure rules on it: who may order a service, what it costs
them after the subsidy.

Each service names its eligibility (minimum age, and any one of a set of statuses: 低保, 特困,
disability, tier, age 80+), the subsidy per order by status, the skills a provider must hold, the
kinds of provider that may take it and how long it takes. No database, clock or settings here: the
caller passes a resident's facts as ``ResidentFacts``.

Subsidy amounts are set by each city's civil-affairs bureau (民政局 居家养老服务补贴 rules differ
between Beijing, Shanghai, Guangzhou ...), so the defaults below are placeholders a district
replaces from a TOML or JSON file (``load_catalogue``, docs/orders.md). Where several statuses
apply, the largest subsidy wins (they are alternatives, not added up), capped at the price.
"""

from __future__ import annotations

import enum
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from yiyang.errors import Invalid, NotFound


class ProviderKind(enum.StrEnum):
    """Who takes an order (接单)."""

    station = "station"  # 养老驿站 / 养老机构
    family_doctor_team = "family_doctor_team"  # 家庭医生团队
    social_organisation = "social_organisation"  # 社会组织
    volunteer = "volunteer"  # 志愿者 (time bank)


class Status(enum.StrEnum):
    """Facts about a resident that eligibility and subsidies read."""

    dibao = "dibao"  # 低保 minimum living allowance
    tekun = "tekun"  # 特困 destitute support
    disabled = "disabled"  # 残疾证 of any grade, or any capability loss (GB/T 42195 mild or worse)
    severely_disabled = "severely_disabled"  # 残疾证 grade 1-2, or GB/T 42195 moderate or worse
    age_80 = "age_80"  # 高龄 80+
    tier_red = "tier_red"  # 红色 (失能失智)
    tier_yellow = "tier_yellow"  # 黄色 (慢病康复)


STATUS_NAMES: dict[Status, tuple[str, str]] = {
    Status.dibao: ("低保", "minimum living allowance"),
    Status.tekun: ("特困", "destitute support"),
    Status.disabled: ("失能或残疾", "disabled"),
    Status.severely_disabled: ("中度以上失能或一二级残疾", "moderately or severely disabled"),
    Status.age_80: ("80岁以上高龄", "aged 80 or over"),
    Status.tier_red: ("红色分级", "red tier"),
    Status.tier_yellow: ("黄色分级", "yellow tier"),
}

# GB/T 42195-2022 levels (assessments.scoring.CAPABILITY_LEVEL_CODES) that count as disabled.
DISABLED_LEVELS = frozenset({"mild", "moderate", "severe", "total"})
SEVERE_LEVELS = frozenset({"moderate", "severe", "total"})


@dataclass(frozen=True, slots=True)
class ResidentFacts:
    """What eligibility reads about one resident, as plain values."""

    age: int | None
    tier: str | None = None  # "red" / "yellow" / "green"
    dibao: bool = False
    tekun: bool = False
    disability_grade: int | None = None  # 残疾证 1 (most severe) - 4
    capability_level: str | None = None  # GB/T 42195 level code


def statuses_of(facts: ResidentFacts) -> frozenset[Status]:
    found: set[Status] = set()
    if facts.dibao:
        found.add(Status.dibao)
    if facts.tekun:
        found.add(Status.tekun)
    if facts.disability_grade is not None or facts.capability_level in DISABLED_LEVELS:
        found.add(Status.disabled)
    if (facts.disability_grade is not None and facts.disability_grade <= 2) or (
        facts.capability_level in SEVERE_LEVELS
    ):
        found.add(Status.severely_disabled)
    if facts.age is not None and facts.age >= 80:
        found.add(Status.age_80)
    if facts.tier == "red":
        found.add(Status.tier_red)
    if facts.tier == "yellow":
        found.add(Status.tier_yellow)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Eligibility:
    min_age: int | None = 60  # 老年人: 60+ (中华人民共和国老年人权益保障法 第二条)
    any_of: frozenset[Status] = frozenset()  # empty: no status needed


@dataclass(frozen=True, slots=True)
class Service:
    code: str
    zh: str
    en: str
    duration_minutes: int
    skills: frozenset[str]
    providers: tuple[ProviderKind, ...]  # in order of preference (earlier is preferred)
    price_cents: int  # list price of one order
    eligibility: Eligibility
    subsidies: Mapping[Status, int]  # subsidy per order in cents, by status; the largest applies
    offer_minutes: int = 30  # how long an offer waits for the provider before it is re-dispatched

    @property
    def label(self) -> str:
        return f"{self.zh} ({self.en})"


SKILLS: dict[str, tuple[str, str]] = {
    "meal_delivery": ("助餐送餐", "meal delivery"),
    "personal_care": ("生活照料/助浴", "personal care and bathing"),
    "nursing": ("护理", "nursing"),
    "rehabilitation": ("康复", "rehabilitation"),
    "escort": ("陪诊陪护", "escort"),
    "errand": ("代办跑腿", "errands"),
    "respite_care": ("喘息照护", "respite care"),
    "home_bed_care": ("家庭养老床位服务", "home care bed service"),
    "counselling": ("心理慰藉", "counselling"),
    "training": ("照护培训", "carer training"),
}

_S, _F, _O, _V = (
    ProviderKind.station,
    ProviderKind.family_doctor_team,
    ProviderKind.social_organisation,
    ProviderKind.volunteer,
)
_NEEDS_CARE = frozenset({Status.severely_disabled, Status.tier_red})

DEFAULT_SERVICES: tuple[Service, ...] = (
    Service(
        "meal", "助餐", "meal assistance", 30, frozenset({"meal_delivery"}), (_S, _O, _V), 1500,
        Eligibility(60), {Status.tekun: 1500, Status.dibao: 1000, Status.age_80: 500, Status.disabled: 500},
    ),
    Service(
        "bathing", "助浴", "bathing", 60, frozenset({"personal_care"}), (_S, _O), 8000,
        Eligibility(60, frozenset({Status.disabled, Status.age_80})),
        {Status.tekun: 8000, Status.dibao: 6000, Status.severely_disabled: 4000},
    ),
    Service(
        "home_nursing", "上门护理", "home nursing", 45, frozenset({"nursing"}), (_F, _S), 10000,
        Eligibility(60, frozenset({Status.disabled, Status.tier_red, Status.tier_yellow})),
        {Status.tekun: 10000, Status.dibao: 6000, Status.tier_red: 3000},
    ),
    Service(
        "rehab", "康复护理", "rehabilitation", 60, frozenset({"rehabilitation"}), (_F, _S), 12000,
        Eligibility(60, frozenset({Status.disabled, Status.tier_red, Status.tier_yellow})),
        {Status.tekun: 12000, Status.dibao: 8000, Status.severely_disabled: 4000},
    ),
    Service(
        "escort", "陪诊", "escort to hospital", 180, frozenset({"escort"}), (_V, _O, _S), 6000,
        Eligibility(60), {Status.tekun: 6000, Status.dibao: 6000, Status.age_80: 3000},
    ),
    Service(
        "medicine_pickup", "代取药", "medicine pickup", 60, frozenset({"errand"}), (_V, _S), 2000,
        Eligibility(60), {Status.tekun: 2000, Status.dibao: 2000, Status.age_80: 1000},
    ),
    Service(
        "respite", "喘息服务", "respite care", 480, frozenset({"respite_care"}), (_S,), 20000,
        Eligibility(60, _NEEDS_CARE), {Status.tekun: 20000, Status.dibao: 15000, Status.severely_disabled: 10000},
        offer_minutes=120,
    ),
    Service(
        "home_bed_visit", "家庭养老床位上门服务", "home care bed visit", 60, frozenset({"home_bed_care"}), (_S,),
        8000, Eligibility(60, _NEEDS_CARE), {Status.tekun: 8000, Status.dibao: 8000, Status.severely_disabled: 6000},
    ),
    Service(
        "counselling", "心理慰藉", "counselling", 60, frozenset({"counselling"}), (_O, _V, _F), 0,
        Eligibility(60), {},
    ),
    Service(
        "carer_training", "照护者培训", "carer training", 90, frozenset({"training"}), (_S, _F), 0,
        Eligibility(None, _NEEDS_CARE), {},  # ordered for the elder; the family carer attends
    ),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Catalogue:
    services: Mapping[str, Service]

    def get(self, code: str) -> Service:
        service = self.services.get(code)
        if service is None:
            raise NotFound("order.service.unknown", "目录中没有该服务 (no such service in the catalogue)")
        return service

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.services.values())


DEFAULT_CATALOGUE = Catalogue({service.code: service for service in DEFAULT_SERVICES})


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a resident may not order a service, for people and programs."""

    code: str
    zh: str
    en: str

    @property
    def message(self) -> str:
        return f"{self.zh} ({self.en})"


def refusals(service: Service, facts: ResidentFacts) -> list[Refusal]:
    """Every reason the resident may not order the service; empty when eligible."""
    found: list[Refusal] = []
    rule = service.eligibility
    if rule.min_age is not None:
        if facts.age is None:
            found.append(
                Refusal("order.eligibility.age_unknown", "档案缺少出生日期，无法核对年龄", "age unknown")
            )
        elif facts.age < rule.min_age:
            found.append(
                Refusal(
                    "order.eligibility.age",
                    f"该服务面向{rule.min_age}岁及以上老人",
                    f"for residents aged {rule.min_age} or over",
                )
            )
    if rule.any_of and not (rule.any_of & statuses_of(facts)):
        names = sorted(rule.any_of, key=list(Status).index)
        found.append(
            Refusal(
                "order.eligibility.status",
                "须符合以下条件之一：" + "、".join(STATUS_NAMES[s][0] for s in names),
                "needs one of: " + ", ".join(STATUS_NAMES[s][1] for s in names),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Subsidy:
    amount_cents: int
    basis: Status | None  # the status that earned it

    def payable_cents(self, price_cents: int) -> int:
        return max(0, price_cents - self.amount_cents)


def subsidy_for(service: Service, facts: ResidentFacts) -> Subsidy:
    """The largest subsidy any of the resident's statuses earns, capped at the price."""
    statuses = statuses_of(facts)
    best = Subsidy(0, None)
    for status in Status:  # fixed order, so ties resolve the same way every time
        amount = service.subsidies.get(status)
        if status in statuses and amount is not None and amount > best.amount_cents:
            best = Subsidy(min(amount, service.price_cents), status)
    return best


# -- a district's changes --------------------------------------------------------------------------


def load_catalogue(path: Path | None) -> Catalogue:
    """The defaults as changed by a TOML or JSON file of the form::

    [services.meal]
    price_yuan = 12
    duration_minutes = 40
    [services.meal.subsidies_yuan]
    tekun = 12
    dibao = 8
    """
    if path is None:
        return DEFAULT_CATALOGUE
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8")) if path.suffix == ".toml" else json.loads(raw)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) else str(error)  # never the server's paths
        raise Invalid(
            "catalogue.file", f"服务目录文件无法读取 (the service catalogue file cannot be read: {why})"
        ) from None
    services = data.get("services", {}) if isinstance(data, dict) else None
    if not isinstance(services, dict):
        raise Invalid(
            "catalogue.file",
            "服务目录文件须含 [services.<code>] 表 (the file needs [services.<code>] tables)",
        )
    return apply_changes(DEFAULT_CATALOGUE, services)


# What a district may change of a service; any other key is refused, so a misspelt one ("price")
# is not silently ignored while the district believes its prices changed.
CHANGEABLE = frozenset({"price_yuan", "duration_minutes", "offer_minutes", "subsidies_yuan"})


def apply_changes(catalogue: Catalogue, changes: Mapping[str, Mapping[str, Any]]) -> Catalogue:
    services = dict(catalogue.services)
    for code, change in changes.items():
        if code not in services:
            raise Invalid("catalogue.service.unknown", f"目录中没有服务 {code} (no service {code})")
        if not isinstance(change, Mapping):
            raise Invalid("catalogue.file", f"{code}: 须为一个表 (must be a table of changes)")
        unknown = sorted(set(change) - CHANGEABLE)
        if unknown:
            raise Invalid(
                "catalogue.key",
                f"{code}: 无法识别的设置 {', '.join(unknown)} (unknown keys; one may change "
                f"{', '.join(sorted(CHANGEABLE))})",
            )
        if "subsidies_yuan" in change and not isinstance(change["subsidies_yuan"], Mapping):
            raise Invalid("catalogue.file", f"{code}: subsidies_yuan 须为一个表 (must be a table of amounts)")
        service = services[code]
        if "price_yuan" in change:
            service = replace(service, price_cents=_cents(change["price_yuan"], code))
        if "duration_minutes" in change:
            service = replace(service, duration_minutes=_positive(change["duration_minutes"], code))
        if "offer_minutes" in change:
            service = replace(service, offer_minutes=_positive(change["offer_minutes"], code))
        if "subsidies_yuan" in change:
            service = replace(service, subsidies=_subsidies(change["subsidies_yuan"].items(), code))
        services[code] = service
    return Catalogue(services)


def _subsidies(items: Iterable[tuple[str, Any]], code: str) -> dict[Status, int]:
    result: dict[Status, int] = {}
    for name, amount in items:
        try:
            status = Status(name)
        except ValueError:
            raise Invalid(
                "catalogue.subsidy.status", f"{code}: 未知的补贴身份 {name} (unknown subsidy status)"
            ) from None
        result[status] = _cents(amount, code)
    return result


def _cents(value: Any, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value > 100_000:
        raise Invalid("catalogue.amount", f"{code}: 金额须为 0-100000 元 (amount must be 0-100,000 yuan)")
    return round(value * 100)


def _positive(value: Any, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24 * 60:
        raise Invalid("catalogue.minutes", f"{code}: 分钟数须为 1-1440 (minutes must be 1-1440)")
    return value
