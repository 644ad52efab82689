"""The simulator's generator, on plain values: device mix, diurnal shape, exact injections,
determinism, and payloads the v1 parser accepts."""

from __future__ import annotations

import collections
import datetime as dt
import statistics
from functools import lru_cache

import orjson

from yiyang.devices import simulate
from yiyang.devices.models import DeviceKind
from yiyang.devices.simulate import CareNeed, Home, InjectionKind, SimMessage
from yiyang.devices.telemetry import Channel, Rejection, parse

# Local midnight 2026-11-21 (UTC+08:00) and two days on.
START = dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(days=2)


@lru_cache
def scenario() -> simulate.Scenario:
    # Injection rates raised so a small run holds every kind several times.
    homes = simulate.synthetic_homes(80, seed=11)
    return simulate.build_scenario(homes, START, END, 11, rates=simulate.InjectionRates().scaled(8))


@lru_cache
def messages() -> tuple[SimMessage, ...]:
    return tuple(simulate.stream(scenario()))


def local_hour(message: SimMessage) -> int:
    return int((message.at + simulate.LOCAL_OFFSET_S) // 3600 % 24)


def test_device_mix_follows_care_need_and_living_arrangement() -> None:
    homes = simulate.synthetic_homes(4000, seed=3)
    devices = simulate.plan_devices(homes, seed=3)
    kinds_of: dict[int, set[DeviceKind]] = collections.defaultdict(set)
    for device in devices:
        kinds_of[device.home].add(device.kind)

    def share(kind: DeviceKind, chosen: list[Home]) -> float:
        return sum(kind in kinds_of[home.key] for home in chosen) / len(chosen)

    red = [h for h in homes if h.need == CareNeed.red]
    green = [h for h in homes if h.need == CareNeed.green and not h.living_alone]
    alone = [h for h in homes if h.living_alone]
    together = [h for h in homes if not h.living_alone]
    assert share(DeviceKind.mattress, red) == 1.0  # bed-centred care for the disabled
    assert share(DeviceKind.mattress, green) < 0.2
    assert share(DeviceKind.terminal, alone) == 1.0  # everyone living alone has a call button
    assert share(DeviceKind.radar, alone) > share(DeviceKind.radar, together) + 0.3
    # meters only where the disease is
    assert all(DeviceKind.bp_meter not in kinds_of[h.key] for h in homes if not h.hypertension)
    assert all(DeviceKind.glucose_meter not in kinds_of[h.key] for h in homes if not h.diabetes)
    assert all(kinds_of[h.key] for h in homes)
    assert len({d.uid for d in devices}) == len(devices)


def test_care_need_from_registry_facts() -> None:
    assert simulate.care_need("severe", None, []) == CareNeed.red
    assert simulate.care_need(None, 1, ["I10"]) == CareNeed.red
    assert simulate.care_need("mild", None, ["E11.9"]) == CareNeed.yellow
    assert simulate.care_need(None, 4, ["K29"]) == CareNeed.green


def test_diurnal_shape_sleep_at_night_activity_by_day() -> None:
    found = messages()
    mattress = [m for m in found if m.uid.endswith("-mt") and m.channel == "telemetry"]
    night = sum(local_hour(m) in (0, 1, 2, 3, 4) for m in mattress)
    afternoon = sum(local_hour(m) in (15, 16, 17, 18) for m in mattress)
    assert night > 20 * max(afternoon, 1)  # in bed at night, up in the afternoon

    motion = collections.Counter(local_hour(m) for m in found if m.payload.get("event") == "motion")
    day_motion = sum(motion[h] for h in range(9, 19)) / 10
    night_motion = sum(motion[h] for h in range(1, 5)) / 4
    assert day_motion > 10 * max(night_motion, 0.1)

    heart = collections.defaultdict(list)
    for m in found:
        if m.uid.endswith("-wb") and m.channel == "telemetry":
            heart[local_hour(m)].append(m.payload["readings"]["8867-4"])
    sleeping = statistics.mean(heart[2] + heart[3])
    awake = statistics.mean(heart[10] + heart[11])
    assert awake - sleeping > 5  # heart rate drops in sleep

    bp_hours = {local_hour(m) for m in found if m.uid.endswith("-bp") and m.channel == "telemetry"}
    assert bp_hours <= {6, 7, 8, 18, 19, 20}  # measured morning and evening
    glucose = [m for m in found if m.uid.endswith("-gl") and m.channel == "telemetry"]
    assert glucose and all(local_hour(m) in (6, 7, 16, 17, 18) for m in glucose)


def test_wearable_battery_drains_and_is_recharged() -> None:
    levels = collections.defaultdict(list)
    for m in messages():
        if m.uid.endswith("-wb") and "battery" in m.payload:
            levels[m.uid].append(m.payload["battery"])
    drained = [
        uid for uid, values in levels.items() if any(b > a for a, b in zip(values, values[1:], strict=False))
    ]
    assert drained, "some wearable charges"
    falling = sum(values[0] > values[-1] for values in levels.values())
    assert falling > 0


def test_injections_appear_exactly_and_nothing_else_crosses_an_alarm_line() -> None:
    chosen = scenario()
    found = messages()
    kinds = collections.Counter(item.kind for item in chosen.injections)
    assert set(kinds) == set(InjectionKind), kinds

    alarms = [m for m in found if m.payload.get("event") in ("fall", "sos")]
    expected = {
        (i.uid, i.start, i.kind.value)
        for i in chosen.injections
        if i.kind in (InjectionKind.fall, InjectionKind.sos)
    }
    assert sorted((m.uid, m.at, m.payload["event"]) for m in alarms) == sorted(expected)

    spikes = []
    lows = []
    for m in found:
        readings = m.payload.get("readings", {})
        if "85354-9" in readings:
            systolic, diastolic = readings["85354-9"]
            if systolic >= 180 or diastolic >= 110:
                spikes.append((m.uid, m.at))
        if "14771-0" in readings and (readings["14771-0"] <= 3.9 or readings["14771-0"] >= 16.7):
            lows.append((m.uid, m.at))
        if "59408-5" in readings:
            assert readings["59408-5"] >= 92
    assert sorted(spikes) == sorted(
        (i.uid, i.start) for i in chosen.injections if i.kind == InjectionKind.bp_spike
    )
    assert sorted(lows) == sorted(
        (i.uid, i.start) for i in chosen.injections if i.kind == InjectionKind.hypoglycaemia
    )

    for item in chosen.injections:
        if item.kind == InjectionKind.device_silent:
            assert not [m for m in found if m.uid == item.uid and m.at >= item.start]
            assert [
                m for m in found if m.uid == item.uid and m.at < item.start
            ] or item.start - chosen.start < 600
        if item.kind == InjectionKind.inactivity:
            assert item.end is not None and item.end - item.start >= 12 * 3600
            prefix = f"sim-{item.home}-"
            window = [
                m
                for m in found
                if m.uid.startswith(prefix)
                and item.start <= m.at < min(item.end, chosen.end)
                and m.channel == "event"
            ]
            assert window == [], window[:3]  # no motion, no door, no bed change for 13 hours


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    homes = simulate.synthetic_homes(10, seed=5)
    window = (START, START + dt.timedelta(hours=6))
    first = simulate.build_scenario(homes, *window, 5, rates=simulate.InjectionRates().scaled(20))
    again = simulate.build_scenario(homes, *window, 5, rates=simulate.InjectionRates().scaled(20))
    other = simulate.build_scenario(homes, *window, 6, rates=simulate.InjectionRates().scaled(20))
    assert first == again
    assert list(simulate.stream(first)) == list(simulate.stream(again))
    assert list(simulate.stream(first)) != list(simulate.stream(other))


def test_every_message_is_a_valid_v1_payload_in_time_order() -> None:
    found = messages()[:20_000]
    assert [m.at for m in found] == sorted(m.at for m in found)
    now = dt.datetime.fromtimestamp(found[-1].at, dt.UTC) + dt.timedelta(minutes=1)
    for m in found:
        parsed = parse(Channel(m.channel), orjson.dumps(m.payload), now)
        assert not isinstance(parsed, Rejection), (m, parsed)
    seqs = collections.defaultdict(list)
    for m in found:
        if m.channel != "status":
            seqs[m.uid].append(m.payload["seq"])
    assert all(values == list(range(len(values))) for values in seqs.values())


def test_ground_truth_lines_name_the_device_and_time() -> None:
    item = scenario().injections[0]
    line = item.truth()
    assert line["kind"] == item.kind.value and line["device_uid"] == item.uid
    assert dt.datetime.fromisoformat(line["time"]).timestamp() == item.start


def test_detections_are_scored_against_the_ground_truth() -> None:
    truth = [item.truth() for item in scenario().injections]
    by_kind = collections.Counter(line["kind"] for line in truth)

    def at(line: dict, seconds: int) -> dt.datetime:
        return dt.datetime.fromisoformat(line["time"]) + dt.timedelta(seconds=seconds)

    # an alert system that finds every fall a minute later, every inactivity at 12 h, and
    # raises one false SOS
    detections = [
        simulate.Detection(InjectionKind.fall, at(line, 60), device_uid=line["device_uid"])
        for line in truth
        if line["kind"] == "fall"
    ]
    detections += [
        simulate.Detection(InjectionKind.inactivity, at(line, 12 * 3600 + 60), device_uid=line["device_uid"])
        for line in truth
        if line["kind"] == "inactivity"
    ]
    detections.append(simulate.Detection(InjectionKind.sos, START, device_uid="nobody"))
    scores = simulate.score_detections(truth, detections)
    assert scores["fall"] == {"injected": by_kind["fall"], "found": by_kind["fall"], "recall": 1.0}
    assert scores["inactivity"]["recall"] == 1.0
    assert scores["sos"]["found"] == 0 and scores["bp_spike"]["recall"] == 0.0
    assert scores["all"]["found"] == by_kind["fall"] + by_kind["inactivity"]
    assert scores["all"]["unmatched"] == 1
    # too late does not count
    late = [
        simulate.Detection(InjectionKind.fall, at(line, 3600), device_uid=line["device_uid"])
        for line in truth
    ]
    assert simulate.score_detections(truth, late)["fall"]["found"] == 0
