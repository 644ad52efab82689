"""Simulated homes (模拟居家感知): realistic device streams for N homes, with injected ground truth.

Pure functions on plain values: no database, no broker, no clock. ``yiyang simulate`` (in
``commands``) provisions the devices through the registry and publishes what these functions
generate over MQTT or feeds it to the ingest pipeline in-process.

What a home looks like:
- a device mix drawn by care need (red / yellow / green) and living arrangement (``MixRates``);
- a daily routine per elder (``DayPlan``): waking, going to bed, night-time toilet trips, a nap,
  outings, blood pressure and glucose measured morning and evening, the wearable charged in the
  evening; every time jittered per day;
- streams from that routine: the mattress reports heart and breathing rate while someone is in
  bed and in/out-of-bed events; the radar presence, absence, motion and breathing rate; the
  wearable heart rate and SpO2 with a draining, nightly recharged battery; the meters their
  readings; terminals and alarms their heartbeats; door sensors the door opening on each outing.
- injected events (``Injection``), the ground truth alerts are scored against: falls, SOS
  calls, blood pressure spikes, hypoglycaemia, a living-alone elder inactive for 13 hours, and
  devices that fall silent. The normal streams never cross the alarm lines (values stay inside
  ``NORMAL``), so every alarm-worthy message in a stream is an injected one.

Times are epoch seconds (UTC) inside; the routine runs on local time (China Standard Time,
UTC+08:00), which is also the offset devices write in their payloads. Rates and routines are
simulation assumptions for a plausible demo, not clinical facts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import heapq
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from yiyang.devices.models import DeviceKind

LOCAL_OFFSET_S = 8 * 3600  # China Standard Time, UTC+08:00
LOCAL_TZ = dt.timezone(dt.timedelta(seconds=LOCAL_OFFSET_S))
DAY = 86400
TICK_S = 60
LOCAL_NOON = (
    12 * 60 - LOCAL_OFFSET_S // 60
) % 1440  # local noon as a UTC minute of the day  # the routine is evaluated once a simulated minute


class CareNeed(enum.StrEnum):
    """红黄绿: the coarse care need that decides a home's device mix."""

    red = "red"
    yellow = "yellow"
    green = "green"


CHRONIC_PREFIXES = ("I10", "I11", "I20", "I25", "I50", "I63", "I64", "E11", "J44")
DISABLED_LEVELS = frozenset({"moderate", "severe", "complete"})  # GB/T 42195-2022 中度/重度/完全失能


def care_need(
    capability_level: str | None, disability_grade: int | None, condition_codes: Iterable[str]
) -> CareNeed:
    """Red for moderate or worse disability (GB/T 42195-2022) or a grade 1-2 disability
    certificate; yellow for a chronic disease; green otherwise. A stand-in for the tier engine,
    enough to choose which devices a home has."""
    if capability_level in DISABLED_LEVELS or (disability_grade is not None and disability_grade <= 2):
        return CareNeed.red
    if any(code.startswith(CHRONIC_PREFIXES) for code in condition_codes):
        return CareNeed.yellow
    return CareNeed.green


@dataclass(frozen=True, slots=True)
class Home:
    """One simulated home: the elder the personal devices belong to and the household."""

    key: int  # stable across runs: the resident's id when provisioned from the registry
    need: CareNeed
    living_alone: bool
    hypertension: bool
    diabetes: bool
    resident_id: int | None = None
    household_id: int | None = None


@dataclass(frozen=True, slots=True)
class SimDevice:
    uid: str
    kind: DeviceKind
    home: int  # Home.key
    phase: int  # seconds into each minute it reports, so a fleet does not report in lockstep


KIND_CODE = {
    DeviceKind.wearable: "wb",
    DeviceKind.mattress: "mt",
    DeviceKind.radar: "rd",
    DeviceKind.bp_meter: "bp",
    DeviceKind.glucose_meter: "gl",
    DeviceKind.terminal: "tm",
    DeviceKind.gas_sensor: "gs",
    DeviceKind.smoke_sensor: "sm",
    DeviceKind.door_sensor: "dr",
}
# Placed with the household rather than worn or used by one elder.
HOUSEHOLD_KINDS = frozenset(
    {
        DeviceKind.radar,
        DeviceKind.terminal,
        DeviceKind.gas_sensor,
        DeviceKind.smoke_sensor,
        DeviceKind.door_sensor,
    }
)


def device_uid(home_key: int, kind: DeviceKind) -> str:
    return f"sim-{home_key}-{KIND_CODE[kind]}"


@dataclass(frozen=True, slots=True)
class MixRates:
    """Chance that a home has each kind, by care need; living alone adds ``alone_extra``.
    BP meters go only to homes with hypertension and glucose meters only with diabetes."""

    by_need: dict[CareNeed, dict[DeviceKind, float]]
    alone_extra: dict[DeviceKind, float]


DEFAULT_MIX = MixRates(
    by_need={
        # Disabled or demented: bed-centred monitoring (home care bed), a terminal for the carer.
        CareNeed.red: {
            DeviceKind.mattress: 1.0,
            DeviceKind.radar: 0.8,
            DeviceKind.wearable: 0.3,
            DeviceKind.terminal: 0.9,
            DeviceKind.door_sensor: 0.6,
            DeviceKind.smoke_sensor: 0.7,
            DeviceKind.gas_sensor: 0.5,
            DeviceKind.bp_meter: 0.7,
            DeviceKind.glucose_meter: 0.7,
        },
        # Chronic disease: remote monitoring by wearables and meters (健康管家).
        CareNeed.yellow: {
            DeviceKind.mattress: 0.35,
            DeviceKind.radar: 0.35,
            DeviceKind.wearable: 0.85,
            DeviceKind.terminal: 0.6,
            DeviceKind.door_sensor: 0.3,
            DeviceKind.smoke_sensor: 0.5,
            DeviceKind.gas_sensor: 0.4,
            DeviceKind.bp_meter: 0.9,
            DeviceKind.glucose_meter: 0.9,
        },
        CareNeed.green: {
            DeviceKind.mattress: 0.1,
            DeviceKind.radar: 0.1,
            DeviceKind.wearable: 0.6,
            DeviceKind.terminal: 0.3,
            DeviceKind.door_sensor: 0.15,
            DeviceKind.smoke_sensor: 0.3,
            DeviceKind.gas_sensor: 0.25,
            DeviceKind.bp_meter: 0.5,
            DeviceKind.glucose_meter: 0.5,
        },
    },
    # Living alone (独居): someone must notice when nothing moves, and a call button is a must.
    alone_extra={
        DeviceKind.radar: 0.4,
        DeviceKind.door_sensor: 0.4,
        DeviceKind.terminal: 1.0,
        DeviceKind.smoke_sensor: 0.2,
        DeviceKind.gas_sensor: 0.2,
    },
)


def device_mix(home: Home, rng: random.Random, mix: MixRates = DEFAULT_MIX) -> list[DeviceKind]:
    kinds = []
    for kind in DeviceKind:
        chance = mix.by_need[home.need].get(kind, 0.0)
        if home.living_alone:
            chance += mix.alone_extra.get(kind, 0.0)
        if kind == DeviceKind.bp_meter and not home.hypertension:
            chance = 0.0
        if kind == DeviceKind.glucose_meter and not home.diabetes:
            chance = 0.0
        if rng.random() < chance:
            kinds.append(kind)
    if not kinds:  # every simulated home has at least something to simulate
        kinds.append(DeviceKind.wearable)
    return kinds


def plan_devices(homes: Sequence[Home], seed: int, mix: MixRates = DEFAULT_MIX) -> list[SimDevice]:
    devices = []
    for home in homes:
        rng = random.Random(f"{seed}:mix:{home.key}")
        for kind in device_mix(home, rng, mix):
            devices.append(SimDevice(device_uid(home.key, kind), kind, home.key, rng.randrange(60)))
    return devices


def synthetic_homes(count: int, seed: int) -> list[Home]:
    """Homes without a registry behind them (tests, benchmarks): shares from the demo district
    (about 15% living alone, 8% disabled, 55% hypertension, 22% diabetes among the elderly)."""
    rng = random.Random(f"{seed}:homes")
    homes = []
    for key in range(1, count + 1):
        hypertension = rng.random() < 0.55
        diabetes = rng.random() < 0.22
        disabled = rng.random() < 0.08
        need = CareNeed.red if disabled else CareNeed.yellow if hypertension or diabetes else CareNeed.green
        homes.append(Home(key, need, rng.random() < 0.15, hypertension, diabetes))
    return homes


# ---- injected ground truth ------------------------------------------------------------------


class InjectionKind(enum.StrEnum):
    fall = "fall"
    sos = "sos"
    bp_spike = "bp_spike"
    hypoglycaemia = "hypoglycaemia"
    inactivity = "inactivity"
    device_silent = "device_silent"


@dataclass(frozen=True, slots=True)
class InjectionRates:
    """Chance per home and day (per device and day for silence)."""

    fall: float = 0.01
    sos: float = 0.005
    bp_spike: float = 0.03  # per day of a home with a BP meter
    hypoglycaemia: float = 0.03  # per day of a home with a glucose meter
    inactivity: float = 0.02  # per day of a living-alone home with a radar
    device_silent: float = 0.003  # per device-day, meters excepted (they report rarely anyway)

    def scaled(self, factor: float) -> InjectionRates:
        return InjectionRates(*(min(1.0, getattr(self, f.name) * factor) for f in dataclasses.fields(self)))


INACTIVITY_S = 13 * 3600  # longer than the 12 hours the rule waits (连续12小时无活动)
# The lines the normal streams stay inside, so only injected messages cross an alarm line.
# 国家基本公共卫生服务规范（第三版）: urgent referral at SBP >= 180 and/or DBP >= 110, and at
# glucose >= 16.7 or <= 3.9 mmol/L.
NORMAL = {
    "systolic": (100.0, 172.0),
    "diastolic": (58.0, 104.0),
    "fasting_glucose": (4.3, 13.5),
    "heart_rate": (48.0, 115.0),
    "spo2": (92.0, 99.0),
}


@dataclass(frozen=True, slots=True)
class Injection:
    kind: InjectionKind
    home: int
    uid: str  # the device that shows it
    start: int  # epoch seconds
    end: int | None = None  # inactivity: when it ends; silence: None (for the rest of the run)
    resident_id: int | None = None
    household_id: int | None = None

    def truth(self) -> dict[str, Any]:
        """One line of the ground-truth file."""
        return {
            "kind": self.kind.value,
            "time": _iso(self.start),
            "end": _iso(self.end) if self.end is not None else None,
            "home": self.home,
            "resident_id": self.resident_id,
            "household_id": self.household_id,
            "device_uid": self.uid,
        }


def _iso(epoch: int | float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def _local_day(epoch: int) -> int:
    """Days since 1970-01-01 in local time."""
    return (epoch + LOCAL_OFFSET_S) // DAY


def _day_start(local_day: int) -> int:
    """Epoch seconds of local midnight."""
    return local_day * DAY - LOCAL_OFFSET_S


def _injections_of_day(
    home: Home, kinds: dict[DeviceKind, SimDevice], day: int, seed: int, rates: InjectionRates
) -> list[Injection]:
    rng = random.Random(f"{seed}:inject:{home.key}:{day}")
    plan = day_plan(home, day, seed)
    found: list[Injection] = []

    def add(kind: InjectionKind, device: SimDevice, at: int, until: int | None = None) -> None:
        found.append(Injection(kind, home.key, device.uid, at, until, home.resident_id, home.household_id))

    if rng.random() < rates.fall and (DeviceKind.radar in kinds or DeviceKind.wearable in kinds):
        device = kinds.get(DeviceKind.radar) or kinds[DeviceKind.wearable]
        add(InjectionKind.fall, device, plan.wake + rng.randrange(1800, 12 * 3600))
    if rng.random() < rates.sos and (DeviceKind.terminal in kinds or DeviceKind.wearable in kinds):
        device = kinds.get(DeviceKind.terminal) or kinds[DeviceKind.wearable]
        add(InjectionKind.sos, device, plan.wake + rng.randrange(600, 13 * 3600))
    if rng.random() < rates.bp_spike and DeviceKind.bp_meter in kinds:
        add(InjectionKind.bp_spike, kinds[DeviceKind.bp_meter], rng.choice(plan.bp_times))
    if rng.random() < rates.hypoglycaemia and DeviceKind.glucose_meter in kinds:
        add(InjectionKind.hypoglycaemia, kinds[DeviceKind.glucose_meter], rng.choice(plan.glucose_times))
    if home.living_alone and DeviceKind.radar in kinds and rng.random() < rates.inactivity:
        at = plan.wake + rng.randrange(0, 2 * 3600)
        add(InjectionKind.inactivity, kinds[DeviceKind.radar], at, at + INACTIVITY_S)
    for device in sorted(kinds.values(), key=lambda d: d.uid):
        if device.kind in (DeviceKind.bp_meter, DeviceKind.glucose_meter):
            continue
        if rng.random() < rates.device_silent:
            add(InjectionKind.device_silent, device, _day_start(day) + rng.randrange(DAY))
    return found


def plan_injections(
    homes: Sequence[Home],
    devices: Sequence[SimDevice],
    start: int,
    end: int,
    seed: int,
    rates: InjectionRates = InjectionRates(),
) -> list[Injection]:
    """Which injected events happen when, decided before a message is generated."""
    by_home: dict[int, dict[DeviceKind, SimDevice]] = {}
    for device in devices:
        by_home.setdefault(device.home, {})[device.kind] = device
    injections: list[Injection] = []
    for home in homes:
        kinds = by_home.get(home.key, {})
        for day in range(_local_day(start), _local_day(end - 1) + 1):
            found = _injections_of_day(home, kinds, day, seed, rates)
            injections.extend(item for item in found if start <= item.start < end)
    # A device goes silent once and shows nothing after; an inactivity window does not start
    # inside another.
    kept: list[Injection] = []
    silent: set[str] = set()
    inactive_until: dict[int, int] = {}
    for item in sorted(injections, key=lambda i: (i.start, i.uid, i.kind.value)):
        if item.uid in silent:
            continue
        if item.kind == InjectionKind.device_silent:
            silent.add(item.uid)
        if item.kind == InjectionKind.inactivity:
            if item.start < inactive_until.get(item.home, 0):
                continue
            inactive_until[item.home] = item.end or item.start
        kept.append(item)
    return kept


# ---- a day in a home -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayPlan:
    """One elder's routine for one local day, in epoch seconds."""

    wake: int
    bed: int
    night_trips: tuple[tuple[int, int], ...]  # out of bed after midnight, before waking
    nap: tuple[int, int] | None
    outings: tuple[tuple[int, int], ...]
    bp_times: tuple[int, ...]  # morning and evening
    glucose_times: tuple[int, ...]  # fasting before breakfast, before dinner
    charging: tuple[int, int]  # the wearable is off the wrist and on its charger


OUTING_CHANCE = {CareNeed.red: (0.05, 0.0), CareNeed.yellow: (0.55, 0.35), CareNeed.green: (0.8, 0.5)}


def _at(midnight: int, hours: float, rng: random.Random, jitter_min: float, low: float, high: float) -> int:
    value = hours + rng.gauss(0, jitter_min / 60)
    return midnight + int(min(max(value, low), high) * 3600)


def day_plan(home: Home, local_day: int, seed: int) -> DayPlan:
    rng = random.Random(f"{seed}:day:{home.key}:{local_day}")
    midnight = _day_start(local_day)
    red = home.need == CareNeed.red
    wake = _at(midnight, 7.0 if red else 6.4, rng, 30, 5.0, 8.5)
    bed = _at(midnight, 21.5 if red else 21.8, rng, 35, 20.25, 23.25)
    trips = []
    for _ in range(rng.choices((0, 1, 2, 3), (0.25, 0.4, 0.25, 0.1))[0]):
        at = midnight + rng.randrange(1800, max(1801, wake - midnight - 1800))
        trips.append((at, at + rng.randrange(180, 600)))
    trips.sort()
    nap = None
    if rng.random() < (0.8 if red else 0.45):
        nap_start = _at(midnight, 13.1, rng, 20, 12.5, 14.0)
        nap = (nap_start, nap_start + rng.randrange(40 * 60, 90 * 60))
    outings = []
    morning, afternoon = OUTING_CHANCE[home.need]
    if rng.random() < morning:
        leave = _at(midnight, 8.6, rng, 30, 7.75, 9.5)
        outings.append((leave, leave + rng.randrange(60 * 60, 150 * 60)))
    if rng.random() < afternoon:
        leave = _at(midnight, 15.2, rng, 30, 14.5, 16.0)
        outings.append((leave, leave + rng.randrange(60 * 60, 120 * 60)))
    bp_times = (_at(midnight, 7.35, rng, 15, 7.0, 7.7), _at(midnight, 19.5, rng, 20, 19.0, 20.0))
    glucose_times = (_at(midnight, 6.85, rng, 8, 6.6, 6.95), _at(midnight, 17.5, rng, 20, 17.0, 18.0))
    charging_start = _at(midnight, 20.5, rng, 10, 20.0, 20.9)
    return DayPlan(
        wake,
        bed,
        tuple(trips),
        nap,
        tuple(outings),
        bp_times,
        glucose_times,
        (charging_start, charging_start + 3600),
    )


def _inside(moment: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(begin <= moment < finish for begin, finish in spans)


# ---- the streams ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message as a device sends it: ``at`` epoch seconds, the topic's uid and channel."""

    at: float
    uid: str
    channel: str  # telemetry | event | status
    payload: dict[str, Any]


def device_time(epoch: float) -> str:
    """RFC 3339 with the device's local offset, as the devices write it."""
    return dt.datetime.fromtimestamp(epoch, LOCAL_TZ).isoformat(timespec="seconds")


@dataclass
class _DeviceState:
    device: SimDevice
    seq: int = 0
    battery: float = 100.0
    silent_from: int | None = None


@dataclass
class _HomeState:
    in_bed: bool | None = None
    at_home: bool | None = None
    wearing: bool | None = None
    plans: dict[int, DayPlan] = field(default_factory=dict)


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def home_stream(
    home: Home, devices: Sequence[SimDevice], injections: Sequence[Injection], start: int, end: int, seed: int
) -> Iterator[SimMessage]:
    """Every message one home's devices send in [start, end), in time order."""
    rng = random.Random(f"{seed}:stream:{home.key}:{start}")
    base_hr = random.Random(f"{seed}:hr:{home.key}").uniform(62, 80)
    base_sbp = 138.0 if home.hypertension else 121.0
    base_dbp = 84.0 if home.hypertension else 75.0
    states = {device.kind: _DeviceState(device, battery=rng.uniform(55, 100)) for device in devices}
    for item in injections:
        if item.kind == InjectionKind.device_silent:
            for state in states.values():
                if state.device.uid == item.uid:
                    state.silent_from = item.start
    inactive = [(i.start, i.end or i.start) for i in injections if i.kind == InjectionKind.inactivity]
    events_at: dict[tuple[str, int], Injection] = {}
    for item in injections:
        if item.kind in (
            InjectionKind.fall,
            InjectionKind.sos,
            InjectionKind.bp_spike,
            InjectionKind.hypoglycaemia,
        ):
            events_at[(item.uid, item.start - item.start % TICK_S)] = item
    # Around a fall or a call the elder is at home (an outing is cut short).
    held_home = [
        (i.start - 600, i.start + 3600)
        for i in injections
        if i.kind in (InjectionKind.fall, InjectionKind.sos)
    ]
    home_state = _HomeState()

    def plan(day: int) -> DayPlan:
        found = home_state.plans.get(day)
        if found is None:
            found = home_state.plans[day] = day_plan(home, day, seed)
        return found

    def message(state: _DeviceState, at: float, channel: str, body: dict[str, Any]) -> SimMessage:
        if channel != "status":
            body = {"seq": state.seq, "time": device_time(at), **body}
            state.seq += 1
        else:
            body = {"time": device_time(at), **body}
        return SimMessage(at, state.device.uid, channel, body)

    first_tick = start - start % TICK_S
    for tick in range(first_tick, end, TICK_S):
        day = _local_day(tick)
        today = plan(day)
        still_inactive = _inside(tick, inactive)
        in_bed = (tick < today.wake or tick >= today.bed) and not _inside(tick, today.night_trips)
        if today.nap is not None and today.nap[0] <= tick < today.nap[1]:
            in_bed = True
        at_home = not _inside(tick, today.outings) or _inside(tick, held_home)
        if still_inactive:
            in_bed, at_home = False, True  # sitting in a chair, nothing moves, nobody comes or goes
        asleep_hours = in_bed and (tick < today.wake or tick >= today.bed)
        minute = (tick // 60) % 1440
        out: list[SimMessage] = []
        for kind, state in states.items():
            device = state.device
            at = tick + device.phase
            if at < start or at >= end:
                continue
            if state.silent_from is not None and at >= state.silent_from:
                continue
            injected = events_at.get((device.uid, tick))
            if kind == DeviceKind.mattress:
                if home_state.in_bed is not None and in_bed != home_state.in_bed and not still_inactive:
                    out.append(message(state, at, "event", {"event": "in_bed" if in_bed else "out_of_bed"}))
                if in_bed:
                    hr = _clip(base_hr - 8 + rng.gauss(0, 2.5), NORMAL["heart_rate"])
                    rr = _clip(14 + rng.gauss(0, 1.5), (10, 22))
                    out.append(
                        message(
                            state, at, "telemetry", {"readings": {"8867-4": round(hr), "9279-1": round(rr)}}
                        )
                    )
                elif minute % 5 == 0:
                    out.append(message(state, at, "status", {"online": True}))
            elif kind == DeviceKind.radar:
                if home_state.at_home is not None and at_home != home_state.at_home and not still_inactive:
                    out.append(message(state, at, "event", {"event": "presence" if at_home else "absence"}))
                if injected is not None and injected.kind == InjectionKind.fall:
                    out.append(
                        message(
                            state, injected.start, "event", {"event": "fall", "detail": {"confidence": 0.93}}
                        )
                    )
                if at_home and minute % 5 == 0:
                    rr = _clip((13 if asleep_hours else 17) + rng.gauss(0, 1.5), (10, 24))
                    out.append(message(state, at, "telemetry", {"readings": {"9279-1": round(rr)}}))
                if at_home and not in_bed and not still_inactive and minute % 10 == 3 and rng.random() < 0.75:
                    out.append(message(state, at, "event", {"event": "motion"}))
                if not at_home and minute % 5 == 0:
                    out.append(message(state, at, "status", {"online": True}))
            elif kind == DeviceKind.wearable:
                charging = today.charging[0] <= tick < today.charging[1] and state.battery < 80
                if charging:
                    state.battery = min(100.0, state.battery + 100 / 60)
                else:
                    state.battery = max(1.0, state.battery - 100 / (4.5 * 1440))  # a charge lasts ~4.5 days
                if injected is not None and injected.kind in (InjectionKind.fall, InjectionKind.sos):
                    out.append(message(state, injected.start, "event", {"event": injected.kind.value}))
                if minute % 5 == 0:
                    if charging:
                        out.append(
                            message(state, at, "status", {"online": True, "battery": round(state.battery)})
                        )
                    else:
                        activity = -8 if asleep_hours else 12 if not at_home else 0
                        hr = _clip(base_hr + activity + rng.gauss(0, 3), NORMAL["heart_rate"])
                        spo2 = _clip((95.5 if asleep_hours else 97.2) + rng.gauss(0, 0.8), NORMAL["spo2"])
                        out.append(
                            message(
                                state,
                                at,
                                "telemetry",
                                {
                                    "readings": {"8867-4": round(hr), "59408-5": round(spo2)},
                                    "battery": round(state.battery),
                                },
                            )
                        )
            elif kind == DeviceKind.bp_meter:
                state.battery = max(5.0, state.battery - 1 / (3 * 1440))
                for index, moment in enumerate(today.bp_times):
                    if moment - moment % TICK_S != tick:
                        continue
                    spike = injected is not None and injected.kind == InjectionKind.bp_spike
                    if spike:
                        sbp, dbp = rng.uniform(181, 210), rng.uniform(100, 122)
                    elif random.Random(f"{seed}:bp-skip:{home.key}:{moment}").random() < 0.15:
                        continue  # not measured this time
                    else:
                        surge = 4 if index == 0 else 0  # morning surge
                        sbp = _clip(base_sbp + surge + rng.gauss(0, 8), NORMAL["systolic"])
                        dbp = _clip(base_dbp + surge / 2 + rng.gauss(0, 6), NORMAL["diastolic"])
                    hr = _clip(base_hr + rng.gauss(0, 4), NORMAL["heart_rate"])
                    readings = {"85354-9": [round(sbp), round(dbp)], "8867-4": round(hr)}
                    out.append(
                        message(
                            state,
                            moment,
                            "telemetry",
                            {"readings": readings, "battery": round(state.battery)},
                        )
                    )
                if minute == LOCAL_NOON:  # a daily heartbeat
                    out.append(
                        message(state, at, "status", {"online": True, "battery": round(state.battery)})
                    )
            elif kind == DeviceKind.glucose_meter:
                state.battery = max(5.0, state.battery - 1 / (3 * 1440))
                for index, moment in enumerate(today.glucose_times):
                    if moment - moment % TICK_S != tick:
                        continue
                    if injected is not None and injected.kind == InjectionKind.hypoglycaemia:
                        value = rng.uniform(2.6, 3.7)
                    elif random.Random(f"{seed}:gl-skip:{home.key}:{moment}").random() < 0.2:
                        continue
                    else:
                        mean = (7.0 if index == 0 else 8.2) if home.diabetes else (5.3 if index == 0 else 6.0)
                        value = _clip(mean + rng.gauss(0, 1.0), NORMAL["fasting_glucose"])
                    out.append(
                        message(
                            state,
                            moment,
                            "telemetry",
                            {"readings": {"14771-0": round(value, 1)}, "battery": round(state.battery)},
                        )
                    )
                if minute == LOCAL_NOON + 1:
                    out.append(
                        message(state, at, "status", {"online": True, "battery": round(state.battery)})
                    )
            elif kind == DeviceKind.terminal:
                if injected is not None and injected.kind == InjectionKind.sos:
                    out.append(message(state, injected.start, "event", {"event": "sos"}))
                if minute % 15 == 0:
                    out.append(message(state, at, "status", {"online": True}))
            elif kind == DeviceKind.door_sensor:
                state.battery = max(5.0, state.battery - 1 / (200 * 1440))
                if home_state.at_home is not None and at_home != home_state.at_home and not still_inactive:
                    out.append(message(state, at, "event", {"event": "door_open"}))
                    out.append(message(state, at + 20, "event", {"event": "door_closed"}))
                if minute % 60 == 7:
                    out.append(
                        message(state, at, "status", {"online": True, "battery": round(state.battery)})
                    )
            else:  # smoke and gas alarms: hourly heartbeats; a fire is not simulated
                state.battery = max(5.0, state.battery - 1 / (300 * 1440))
                if minute % 60 == 11:
                    out.append(
                        message(state, at, "status", {"online": True, "battery": round(state.battery)})
                    )
        home_state.in_bed, home_state.at_home = in_bed, at_home
        out.sort(key=lambda m: m.at)
        for item in out:
            if start <= item.at < end and not _silenced(states, item):
                yield item


def _silenced(states: dict[DeviceKind, _DeviceState], item: SimMessage) -> bool:
    for state in states.values():
        if state.device.uid == item.uid:
            return state.silent_from is not None and item.at >= state.silent_from
    return False


@dataclass(frozen=True)
class Scenario:
    """Everything a run generates from: homes, their devices, the window, the injections."""

    homes: tuple[Home, ...]
    devices: tuple[SimDevice, ...]
    start: int
    end: int
    seed: int
    injections: tuple[Injection, ...]


def build_scenario(
    homes: Sequence[Home],
    start: dt.datetime,
    end: dt.datetime,
    seed: int,
    *,
    mix: MixRates = DEFAULT_MIX,
    rates: InjectionRates = InjectionRates(),
    devices: Sequence[SimDevice] | None = None,
) -> Scenario:
    begin, finish = math.floor(start.timestamp()), math.floor(end.timestamp())
    if finish <= begin:
        raise ValueError("the window must end after it starts")
    chosen = list(devices) if devices is not None else plan_devices(homes, seed, mix)
    injections = plan_injections(homes, chosen, begin, finish, seed, rates)
    return Scenario(tuple(homes), tuple(chosen), begin, finish, seed, tuple(injections))


def stream(scenario: Scenario) -> Iterator[SimMessage]:
    """All homes' messages merged in time order."""
    by_home: dict[int, list[SimDevice]] = {}
    for device in scenario.devices:
        by_home.setdefault(device.home, []).append(device)
    injected: dict[int, list[Injection]] = {}
    for item in scenario.injections:
        injected.setdefault(item.home, []).append(item)
    streams = [
        home_stream(
            home,
            by_home.get(home.key, []),
            injected.get(home.key, []),
            scenario.start,
            scenario.end,
            scenario.seed,
        )
        for home in scenario.homes
    ]
    return heapq.merge(*streams, key=lambda message: message.at)


# ---- scoring what the alerts found against the ground truth ----------------------------------------

# When an alert counts as finding an injected event: from/to seconds after the injected time.
# Inactivity is due once 12 hours have passed; a silent device once its kind's silence allowance
# (at most 2 hours for the kinds that are silenced) and a missed heartbeat have passed.
DETECTION_WINDOWS: dict[InjectionKind, tuple[int, int]] = {
    InjectionKind.fall: (0, 300),
    InjectionKind.sos: (0, 300),
    InjectionKind.bp_spike: (0, 600),
    InjectionKind.hypoglycaemia: (0, 600),
    InjectionKind.inactivity: (12 * 3600, INACTIVITY_S + 1800),
    InjectionKind.device_silent: (0, 4 * 3600),
}


@dataclass(frozen=True, slots=True)
class Detection:
    """Something an alert rule raised, in the ground truth's terms."""

    kind: InjectionKind
    at: dt.datetime
    device_uid: str | None = None
    resident_id: int | None = None
    household_id: int | None = None


def score_detections(
    truth: Iterable[dict[str, Any]],
    detections: Iterable[Detection],
    windows: dict[InjectionKind, tuple[int, int]] = DETECTION_WINDOWS,
) -> dict[str, dict[str, float]]:
    """Recall per kind (and ``all``): an injected event is found when a detection of its kind,
    about its device, resident or household, falls in its window. Each detection finds at most
    one injected event; detections that find none are counted as ``unmatched``."""
    pool = sorted(detections, key=lambda d: d.at)
    used = [False] * len(pool)
    scores: dict[str, dict[str, float]] = {}
    for line in sorted(truth, key=lambda item: item["time"]):
        kind = InjectionKind(line["kind"])
        at = dt.datetime.fromisoformat(line["time"])
        low, high = windows[kind]
        row = scores.setdefault(kind.value, {"injected": 0, "found": 0})
        row["injected"] += 1
        for index, detection in enumerate(pool):
            if used[index] or detection.kind != kind:
                continue
            offset = (detection.at - at).total_seconds()
            same = (
                (detection.device_uid is not None and detection.device_uid == line.get("device_uid"))
                or (detection.resident_id is not None and detection.resident_id == line.get("resident_id"))
                or (detection.household_id is not None and detection.household_id == line.get("household_id"))
            )
            if same and low <= offset <= high:
                used[index] = True
                row["found"] += 1
                break
    total = {"injected": 0.0, "found": 0.0}
    for row in scores.values():
        row["recall"] = row["found"] / row["injected"]
        total["injected"] += row["injected"]
        total["found"] += row["found"]
    total["recall"] = total["found"] / total["injected"] if total["injected"] else 1.0
    total["unmatched"] = float(used.count(False))
    scores["all"] = total
    return scores
