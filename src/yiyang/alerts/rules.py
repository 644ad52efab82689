"""Alert rules as data, and their evaluation as pure functions (告警规则).

The district's rule set ships as ``default_rules.json``; administrators override a rule's
parameters for a tier or for one resident (rows of ``alert_rule_override``). A rule set holds:

- thresholds: a reading (LOINC) compared with a value; any condition of a rule raises its alert;
- events: a device event kind (fall, SOS, smoke, gas) that raises at once;
- durations: an event that starts a clock (out of bed at night) and events that stop it; the
  alert is raised when the clock runs out (a deadline, checked by the sweep);
- absence: no activity (or, for ``device_silent``, no message at all) for N hours; every
  activity pushes the deadline back, the sweep raises it once it has passed;
- escalation chains: who is told, how, and after how many minutes without acknowledgement.

Nothing here reads a database or a clock: callers pass readings, events and ``now``.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from yiyang.devices.telemetry import READING_BY_CODE, EventKind

DEFAULT_RULES_FILE = Path(__file__).with_name("default_rules.json")
# A clock longer than a year raises no useful alert, and bounding it keeps ``at + wait`` a date.
MAX_WAIT = dt.timedelta(days=366)
# No reading comes near a million (mmHg, mmol/L, %, /min, °C): a threshold past it can never fire,
# and bounding it keeps the override a number every JSON store holds (not a 100-digit integer).
MAX_THRESHOLD = 1_000_000


class Severity(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class RuleKind(enum.StrEnum):
    threshold = "threshold"
    event = "event"
    duration = "duration"
    absence = "absence"


class Target(enum.StrEnum):
    """Who an escalation step notifies (resolved to users by the service)."""

    grid_worker = "grid_worker"  # 网格员 of the resident's grid
    family = "family"  # family members the resident authorised
    family_doctor_team = "family_doctor_team"  # 家庭医生团队 holding the contract
    station = "station"  # 养老驿站 serving the resident


class ChannelName(enum.StrEnum):
    inbox = "inbox"  # in-app, pushed live to the browser
    sms = "sms"
    voice = "voice"
    webhook = "webhook"


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


class RulesInvalid(ValueError):
    """A rule set or an override that does not make sense; the message says where."""


@dataclass(frozen=True, slots=True)
class Condition:
    reading: str  # LOINC
    op: str
    value: float
    index: int  # position in the telemetry values tuple

    def holds(self, values: Sequence[float | None]) -> bool:
        measured = values[self.index]
        return measured is not None and _OPS[self.op](measured, self.value)


@dataclass(frozen=True, slots=True)
class Rule:
    code: str  # also the alert kind
    kind: RuleKind
    zh: str
    en: str
    severity: Severity
    chain: str
    standard: str
    tier_fact: bool = False
    enabled: bool = True
    when: tuple[Condition, ...] = ()  # thresholds
    event: str | None = None  # events: the device event kind
    start: str | None = None  # durations
    stop: tuple[str, ...] = ()
    minutes: float = 0.0
    night_from: dt.time | None = None
    night_to: dt.time | None = None
    hours: float = 0.0  # absence
    living_alone_only: bool = False
    activity: tuple[str, ...] = ()
    wait: dt.timedelta = dt.timedelta(0)  # durations and absence: how long the clock runs


@dataclass(frozen=True, slots=True)
class Step:
    after_minutes: float
    notify: tuple[Target, ...]
    channels: tuple[ChannelName, ...]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One resident's effective rules (the district's, changed by tier and resident overrides)."""

    rules: tuple[Rule, ...]
    chains: Mapping[str, tuple[Step, ...]]
    tz: dt.timezone
    thresholds: tuple[Rule, ...] = field(default=())
    by_event: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    by_code: Mapping[str, Rule] = field(default_factory=dict)
    # The hot path's screen: per reading slot, the open interval (low, high) inside which no
    # threshold can fire; a message whose every value lies inside skips the rules entirely.
    screen: tuple[tuple[int, float, float], ...] = ()
    silence: tuple[Rule, ...] = ()  # absence rules any message resets (device silence)

    def rule(self, code: str) -> Rule | None:
        return self.by_code.get(code)

    def chain(self, name: str) -> tuple[Step, ...]:
        return self.chains.get(name, ())


# ---- loading ------------------------------------------------------------------------------


def load_document(path: Path | None = None) -> dict[str, Any]:
    return json.loads((path or DEFAULT_RULES_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def default_document() -> dict[str, Any]:
    return load_document()


def apply_overrides(document: Mapping[str, Any], overrides: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A copy of the document with each override's parameters laid over its rule, in order.

    An override is ``{"rule": code, "params": {...}}``; ``params`` replaces the named fields of
    the rule (``{"when": [["8480-6", ">=", 170]]}``, ``{"minutes": 45}``, ``{"enabled": false}``).
    """
    result = copy.deepcopy(dict(document))
    index = {
        rule["code"]: rule
        for section in ("thresholds", "events", "durations", "absence")
        for rule in result.get(section, [])
    }
    for override in overrides:
        rule = index.get(override["rule"])
        if rule is None:
            raise RulesInvalid(f"unknown rule {override['rule']!r}")
        for key, value in dict(override.get("params") or {}).items():
            if key in ("code", "event", "start"):
                raise RulesInvalid(f"{override['rule']}: {key} cannot be overridden")
            rule[key] = value
    return result


def compile_rules(document: Mapping[str, Any]) -> RuleSet:
    """Check and compile a rule document; raises ``RulesInvalid`` naming the bad rule."""
    rules: list[Rule] = []
    for item in document.get("thresholds", []):
        conditions = []
        for condition in item.get("when", []):
            try:
                reading, op, value = condition
            except (TypeError, ValueError) as error:
                raise RulesInvalid(f"{item.get('code')}: a condition is [reading, op, value]") from error
            if reading not in READING_BY_CODE:
                raise RulesInvalid(f"{item.get('code')}: unknown reading {reading!r}")
            if op not in _OPS:
                raise RulesInvalid(f"{item.get('code')}: unknown comparison {op!r}")
            threshold = _number(f"{item.get('code')}: {reading}", value, limit=MAX_THRESHOLD)
            conditions.append(Condition(reading, op, threshold, READING_BY_CODE[reading]))
        if not conditions:
            raise RulesInvalid(f"{item.get('code')}: a threshold needs at least one condition")
        rules.append(_rule(item, RuleKind.threshold, when=tuple(conditions)))
    for item in document.get("events", []):
        _event_kind(item, item.get("event"))
        rules.append(_rule(item, RuleKind.event, event=item["event"]))
    for item in document.get("durations", []):
        _event_kind(item, item.get("start"))
        for stop in item.get("stop", []):
            _event_kind(item, stop)
        minutes, wait = _wait(item, "minutes")
        rules.append(
            _rule(
                item,
                RuleKind.duration,
                start=item["start"],
                stop=tuple(item.get("stop", [])),
                minutes=minutes,
                wait=wait,
                night_from=_time(item, item.get("night_from")),
                night_to=_time(item, item.get("night_to")),
            )
        )
    for item in document.get("absence", []):
        for kind in item.get("activity", []):
            _event_kind(item, kind)
        hours, wait = _wait(item, "hours")
        rules.append(
            _rule(
                item,
                RuleKind.absence,
                hours=hours,
                wait=wait,
                living_alone_only=_flag(item, "living_alone_only", False),
                activity=tuple(item.get("activity", [])),
            )
        )
    _check_storable(document)
    codes = [rule.code for rule in rules]
    if len(codes) != len(set(codes)):
        raise RulesInvalid("rule codes must be unique")
    chains: dict[str, tuple[Step, ...]] = {}
    for name, steps in dict(document.get("chains", {})).items():
        compiled = []
        for step in steps:
            try:
                compiled.append(
                    Step(
                        _number("after_minutes", step.get("after_minutes", 0)),
                        tuple(Target(t) for t in step.get("notify", [])),
                        tuple(ChannelName(c) for c in step.get("channels", ["inbox"])),
                    )
                )
            except ValueError as error:
                raise RulesInvalid(f"chain {name}: {error}") from error
        if [s.after_minutes for s in compiled] != sorted(s.after_minutes for s in compiled):
            raise RulesInvalid(f"chain {name}: steps must be in time order")
        chains[name] = tuple(compiled)
    for rule in rules:
        if rule.chain not in chains:
            raise RulesInvalid(f"{rule.code}: unknown escalation chain {rule.chain!r}")
    enabled = tuple(rule for rule in rules if rule.enabled)
    by_event: dict[str, list[Rule]] = {}
    for rule in enabled:
        if rule.kind is RuleKind.event and rule.event:
            by_event.setdefault(rule.event, []).append(rule)
    offset = float(document.get("timezone_offset_hours", 8))
    thresholds = tuple(rule for rule in enabled if rule.kind is RuleKind.threshold)
    return RuleSet(
        rules=tuple(rules),
        chains=chains,
        tz=dt.timezone(dt.timedelta(hours=offset)),
        thresholds=thresholds,
        by_event={kind: tuple(found) for kind, found in by_event.items()},
        by_code={rule.code: rule for rule in rules},
        screen=_screen(thresholds),
        silence=tuple(rule for rule in enabled if rule.kind is RuleKind.absence and not rule.activity),
    )


def _screen(thresholds: Sequence[Rule]) -> tuple[tuple[int, float, float], ...]:
    """Per reading slot, the widest open interval in which no condition holds (a value on the
    edge goes to the exact check, so the screen never hides a hit)."""
    bounds: dict[int, list[float]] = {}
    for rule in thresholds:
        for condition in rule.when:
            low, high = bounds.setdefault(condition.index, [float("-inf"), float("inf")])
            if condition.op in ("<=", "<"):
                bounds[condition.index][0] = max(low, condition.value)
            else:
                bounds[condition.index][1] = min(high, condition.value)
    return tuple((index, low, high) for index, (low, high) in sorted(bounds.items()))


def screened(rules: RuleSet, values: Sequence[float | None]) -> bool:
    """True when no threshold can fire for these values (the cheap test run on every message)."""
    for index, low, high in rules.screen:
        value = values[index]
        if value is not None and not (low < value < high):
            return False
    return True


def _rule(item: Mapping[str, Any], kind: RuleKind, **values: Any) -> Rule:
    code = item.get("code")
    if not isinstance(code, str) or not code or len(code) > 32:
        raise RulesInvalid(f"rule code {code!r} must be text of 1-32 characters")
    try:
        severity = Severity(item.get("severity", "medium"))
    except ValueError as error:
        raise RulesInvalid(f"{code}: {error}") from error
    return Rule(
        code=code,
        kind=kind,
        zh=str(item.get("zh", code)),
        en=str(item.get("en", code)),
        severity=severity,
        chain=str(item.get("chain", "care")),
        standard=str(item.get("standard", "")),
        tier_fact=_flag(item, "tier_fact", False),
        enabled=_flag(item, "enabled", True),
        **values,
    )


def _flag(item: Mapping[str, Any], key: str, default: bool) -> bool:
    """A yes/no field: JSON ``true`` or ``false`` only. ``bool()`` would read the text "false", or
    any non-empty text, as true: an override meant to switch a rule off would leave it on."""
    value = item.get(key, default)
    if not isinstance(value, bool):
        raise RulesInvalid(f"{item.get('code')}: {key} must be true or false")
    return value


def _number(where: str, value: Any, *, limit: int | None = None) -> float:
    """A finite number (NaN never compares, and infinity overflows every clock it sets), and
    within ``-limit..limit`` when a limit is given."""
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise RulesInvalid(f"{where} must be a number") from error
    except OverflowError:  # an integer past any float: 10**400
        number = math.inf
    if not math.isfinite(number):
        raise RulesInvalid(f"{where} must be a finite number")
    if limit is not None and abs(number) > limit:
        raise RulesInvalid(f"{where} must be a number from -{limit} to {limit}")
    return number


def _check_storable(document: Mapping[str, Any]) -> None:
    """Every rule's fields, those compiled and those a rule of its kind ignores (``minutes`` on a
    threshold, a note), hold only what an override row keeps: no whole number past 64 bits."""
    for section in ("thresholds", "events", "durations", "absence"):
        for item in document.get(section, []):
            for key, value in item.items():
                if not _fits_64_bits(value):
                    raise RulesInvalid(f"{item.get('code')}: {key} holds a whole number past 64 bits")


def _fits_64_bits(value: Any) -> bool:
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, Mapping):
        return all(_fits_64_bits(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(_fits_64_bits(item) for item in value)
    return True


def _wait(item: Mapping[str, Any], unit: str) -> tuple[float, dt.timedelta]:
    """A duration's or an absence's clock: positive, and at most ``MAX_WAIT``."""
    amount = _number(f"{item.get('code')}: {unit}", item.get(unit, 0))
    if amount <= 0:
        raise RulesInvalid(f"{item.get('code')}: {unit} must be positive")
    limit = MAX_WAIT / dt.timedelta(**{unit: 1})
    if amount > limit:
        raise RulesInvalid(f"{item.get('code')}: {unit} must be at most {limit:g}")
    return amount, dt.timedelta(**{unit: amount})


def _event_kind(item: Mapping[str, Any], kind: Any) -> None:
    if kind not in {k.value for k in EventKind}:
        raise RulesInvalid(f"{item.get('code')}: unknown event kind {kind!r}")


def _time(item: Mapping[str, Any], value: Any) -> dt.time | None:
    if value is None:
        return None
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError as error:
        raise RulesInvalid(f"{item.get('code')}: time {value!r} is not HH:MM") from error


# ---- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that fired for a resident: raise (or count a repeat of) its alert."""

    rule: str
    at: dt.datetime
    detail: dict[str, Any]


def thresholds_crossed(rules: RuleSet, values: Sequence[float | None], at: dt.datetime) -> list[Hit]:
    """Threshold rules whose condition holds for one telemetry message's values."""
    hits = []
    for rule in rules.thresholds:
        for condition in rule.when:
            if condition.holds(values):
                hits.append(
                    Hit(
                        rule.code,
                        at,
                        {
                            "reading": condition.reading,
                            "value": values[condition.index],
                            "limit": f"{condition.op} {condition.value:g}",
                        },
                    )
                )
                break
    return hits


def event_hits(rules: RuleSet, event: str, at: dt.datetime) -> list[Hit]:
    return [Hit(rule.code, at, {"event": event}) for rule in rules.by_event.get(event, ())]


def at_night(rule: Rule, at: dt.datetime, tz: dt.timezone) -> bool:
    """Whether ``at`` falls in the rule's night window (local time; the window may cross midnight)."""
    if rule.night_from is None or rule.night_to is None:
        return True
    local = at.astimezone(tz).time()
    if rule.night_from <= rule.night_to:
        return rule.night_from <= local < rule.night_to
    return local >= rule.night_from or local < rule.night_to


@dataclass(frozen=True, slots=True)
class DeadlineChange:
    """Set (``due`` given) or clear (``due`` None) a resident's or device's deadline for a rule."""

    rule: str
    due: dt.datetime | None
    started: dt.datetime


def duration_changes(rules: RuleSet, event: str, at: dt.datetime) -> list[DeadlineChange]:
    """Durations kept as deadlines: a start event (at night) sets one, a stop event clears it."""
    changes = []
    for rule in rules.rules:
        if rule.kind is not RuleKind.duration or not rule.enabled:
            continue
        if event == rule.start and at_night(rule, at, rules.tz):
            changes.append(DeadlineChange(rule.code, at + rule.wait, at))
        elif event in rule.stop:
            changes.append(DeadlineChange(rule.code, None, at))
    return changes


def absence_changes(
    rules: RuleSet, event: str | None, at: dt.datetime, living_alone: bool
) -> list[DeadlineChange]:
    """Activity (an event named by a rule) pushes that rule's deadline to ``at + hours``.
    ``event`` None means any message at all, which is what ``device_silent``-style rules
    (no activity list) count."""
    changes = []
    for rule in rules.rules:
        if rule.kind is not RuleKind.absence or not rule.enabled:
            continue
        if rule.living_alone_only and not living_alone:
            continue
        if (not rule.activity and event is None) or (event is not None and event in rule.activity):
            changes.append(DeadlineChange(rule.code, at + rule.wait, at))
    return changes


def deadline_passed(due: dt.datetime, now: dt.datetime) -> bool:
    return due <= now


def escalation_due(steps: Sequence[Step], raised_at: dt.datetime, done: int) -> dt.datetime | None:
    """When the next step (index ``done``) of a chain falls due, or None when none is left."""
    if done >= len(steps):
        return None
    return raised_at + dt.timedelta(minutes=steps[done].after_minutes)


def steps_due(steps: Sequence[Step], raised_at: dt.datetime, done: int, now: dt.datetime) -> list[int]:
    """Indexes of the steps that have fallen due by ``now`` and have not run yet."""
    due = []
    for index in range(done, len(steps)):
        if raised_at + dt.timedelta(minutes=steps[index].after_minutes) <= now:
            due.append(index)
        else:
            break
    return due
