"""Telemetry schema v1 parsing: pure, no database, no broker."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yiyang.devices.telemetry import (
    MAX_PAYLOAD_BYTES,
    READING_COLUMNS,
    Channel,
    EventKind,
    EventMessage,
    Rejection,
    StatusMessage,
    TelemetryMessage,
    parse,
    parse_topic,
    topic_for,
)

NOW = dt.datetime(2026, 11, 24, 0, 15, tzinfo=dt.UTC)


def telemetry(**fields: object) -> bytes:
    body: dict[str, object] = {"seq": 7, "time": "2026-11-24T08:14:30+08:00", "readings": {"8867-4": 72}}
    body.update(fields)
    return orjson.dumps({key: value for key, value in body.items() if value is not ...})


def value(message: TelemetryMessage, column: str) -> float | None:
    return message.values[READING_COLUMNS.index(column)]


def rejected(result: object) -> str:
    assert isinstance(result, Rejection), result
    return result.code


def test_good_telemetry_is_placed_in_its_columns_and_time_is_utc() -> None:
    # given a wearable message with four readings and a Beijing-time timestamp
    payload = telemetry(readings={"8867-4": 72, "59408-5": 97.5, "9279-1": 16, "8310-5": 36.6}, battery=81)
    # when it is parsed
    message = parse(Channel.telemetry, payload, NOW)
    # then each reading sits in its column, the rest are empty, and the time is UTC
    assert isinstance(message, TelemetryMessage)
    assert message.seq == 7
    assert message.measured_at == dt.datetime(2026, 11, 24, 0, 14, 30, tzinfo=dt.UTC)
    assert (value(message, "heart_rate"), value(message, "spo2")) == (72.0, 97.5)
    assert (value(message, "respiratory_rate"), value(message, "body_temperature")) == (16.0, 36.6)
    assert value(message, "systolic") is None and value(message, "fasting_glucose") is None
    assert message.reading_count == 4
    assert message.battery == 81


def test_blood_pressure_panel_fills_both_components() -> None:
    message = parse(Channel.telemetry, telemetry(readings={"85354-9": [128, 82], "8867-4": 66}), NOW)
    assert isinstance(message, TelemetryMessage)
    assert (value(message, "systolic"), value(message, "diastolic")) == (128.0, 82.0)
    assert message.reading_count == 3


def test_epoch_milliseconds_are_accepted() -> None:
    millis = int(dt.datetime(2026, 11, 24, 0, 10, tzinfo=dt.UTC).timestamp() * 1000)
    message = parse(Channel.telemetry, telemetry(time=millis), NOW)
    assert isinstance(message, TelemetryMessage)
    assert message.measured_at == dt.datetime(2026, 11, 24, 0, 10, tzinfo=dt.UTC)


def test_unknown_top_level_fields_are_ignored() -> None:
    # given a newer firmware that adds fields v1 does not know
    message = parse(Channel.telemetry, telemetry(firmware="2.1.0", rssi=-71), NOW)
    # then the message is still accepted with its readings
    assert isinstance(message, TelemetryMessage)
    assert value(message, "heart_rate") == 72.0


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "payload.not_json"),
        (b"[1, 2]", "payload.not_object"),
        (b"\xff\xfe", "payload.not_json"),
        (b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", "payload.too_large"),
        (telemetry(seq=...), "field.missing"),
        (telemetry(time=...), "field.missing"),
        (telemetry(readings=...), "field.missing"),
        (telemetry(seq="7"), "field.type"),
        (telemetry(seq=True), "field.type"),
        (telemetry(seq=-1), "seq.range"),
        (telemetry(seq=2**31), "seq.range"),
        (telemetry(readings=[72]), "field.type"),
        (telemetry(readings={}), "readings.empty"),
        (telemetry(readings={"1234-5": 1}), "reading.unknown_code"),
        (telemetry(readings={"8867-4": "72"}), "reading.type"),
        (telemetry(readings={"8867-4": True}), "reading.type"),
        (telemetry(readings={"85354-9": [120]}), "reading.type"),
        (telemetry(readings={"85354-9": [120, 80], "8480-6": 121}), "reading.duplicate"),
        (telemetry(time="yesterday"), "time.format"),
        (telemetry(time="2026-11-24T08:14:30"), "time.no_offset"),
        (telemetry(time=1.5), "time.format"),
        (telemetry(time=10**18), "time.format"),
        (telemetry(time="9999-12-31T23:00:00-05:00"), "time.format"),  # past year 9999 in UTC
        (telemetry(time="0001-01-01T00:00:00+14:00"), "time.format"),  # before year 1 in UTC
        (telemetry(v=2), "schema.version"),
        (telemetry(battery=101), "battery.range"),
    ],
)
def test_malformed_telemetry_is_rejected_with_its_reason(payload: bytes, code: str) -> None:
    assert rejected(parse(Channel.telemetry, payload, NOW)) == code


@pytest.mark.parametrize(
    ("readings", "accepted"),
    [
        ({"59408-5": 100}, True),
        ({"59408-5": 100.1}, False),
        ({"59408-5": 49.9}, False),
        ({"8867-4": 20}, True),
        ({"8867-4": 301}, False),
        ({"8310-5": 45}, True),
        ({"8310-5": 46}, False),
        ({"14771-0": 0.4}, False),
        ({"85354-9": [300, 200]}, True),
        ({"85354-9": [301, 80]}, False),
    ],
)
def test_readings_outside_the_measurable_range_are_rejected(
    readings: dict[str, object], accepted: bool
) -> None:
    result = parse(Channel.telemetry, telemetry(readings=readings), NOW)
    if accepted:
        assert isinstance(result, TelemetryMessage)
    else:
        assert rejected(result) == "reading.out_of_range"
        assert "超出" in result.message and "outside" in result.message


def test_device_clock_too_far_ahead_or_too_old_is_refused() -> None:
    ahead = (NOW + dt.timedelta(minutes=11)).isoformat()
    slightly_ahead = (NOW + dt.timedelta(minutes=9)).isoformat()
    old = (NOW - dt.timedelta(days=8)).isoformat()
    assert rejected(parse(Channel.telemetry, telemetry(time=ahead), NOW)) == "time.future"
    assert isinstance(parse(Channel.telemetry, telemetry(time=slightly_ahead), NOW), TelemetryMessage)
    assert rejected(parse(Channel.telemetry, telemetry(time=old), NOW)) == "time.too_old"


def test_event_is_parsed_with_its_detail() -> None:
    payload = orjson.dumps(
        {"seq": 3, "time": "2026-11-24T00:14:00Z", "event": "fall", "detail": {"confidence": 0.93}}
    )
    message = parse(Channel.event, payload, NOW)
    assert isinstance(message, EventMessage)
    assert message.kind is EventKind.fall
    assert message.detail == {"confidence": 0.93}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"seq": 3, "time": "2026-11-24T00:14:00Z", "event": "dance"}, "event.unknown"),
        ({"seq": 3, "time": "2026-11-24T00:14:00Z"}, "field.missing"),
        ({"seq": 3, "time": "2026-11-24T00:14:00Z", "event": "sos", "detail": [1]}, "field.type"),
        (
            {"seq": 3, "time": "2026-11-24T00:14:00Z", "event": "sos", "detail": {"x": "y" * 2000}},
            "detail.too_large",
        ),
    ],
)
def test_malformed_event_is_rejected(body: dict[str, object], code: str) -> None:
    assert rejected(parse(Channel.event, orjson.dumps(body), NOW)) == code


NESTED = b'{"a":' * 300 + b"1" + b"}" * 300


@pytest.mark.parametrize(
    "payload",
    [
        # over MQTT: 2 KB of nesting decodes (1,024 levels) but cannot be written back (255)
        b'{"seq": 3, "time": "2026-11-24T00:14:00Z", "event": "fall", "detail": ' + NESTED + b"}",
        # from a gateway's JSON: what Python's decoder accepts and the store cannot write
        {"seq": 3, "time": "2026-11-24T00:14:00Z", "event": "fall", "detail": {"n": 10**30}},
        {"seq": 3, "time": "2026-11-24T00:14:00Z", "event": "fall", "detail": {"s": "\ud800"}},
    ],
)
def test_an_event_detail_the_store_cannot_write_is_rejected_not_raised(payload: object) -> None:
    # given an event whose detail is valid JSON but cannot be serialised again
    # when it is parsed, then it is refused with a reason instead of raising
    assert rejected(parse(Channel.event, payload, NOW)) == "detail.invalid"  # type: ignore[arg-type]


def test_a_payload_the_parser_trips_on_is_quarantined_with_the_rest_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from yiyang.devices import ingest

    # given a batch in which the parser fails on one payload, as an unforeseen bug would
    real = ingest.parse

    def tripping(channel: Channel, payload: object, now: dt.datetime, limits: object) -> object:
        if payload == b"trip":
            raise RecursionError("boom")
        return real(channel, payload, now, limits)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "parse", tripping)
    deliveries = [
        ingest.Delivery("WB-1", Channel.telemetry, payload, NOW) for payload in (b"trip", telemetry(), b"[1]")
    ]
    # when the batch is parsed
    parsed = ingest.parse_deliveries(deliveries, NOW, ingest.TimeLimits())
    # then that payload is refused with a reason and the others are parsed as usual
    assert rejected(parsed[0]) == "payload.invalid"
    assert isinstance(parsed[1], TelemetryMessage)
    assert rejected(parsed[2]) == "payload.not_object"


def test_status_from_a_last_will_needs_no_time() -> None:
    message = parse(Channel.status, b'{"online": false}', NOW)
    assert message == StatusMessage(measured_at=None, online=False, battery=None)
    assert rejected(parse(Channel.status, b'{"note": "hello"}', NOW)) == "field.missing"
    assert rejected(parse(Channel.status, b'{"online": "yes"}', NOW)) == "field.type"


def test_topics_name_the_device_and_channel() -> None:
    assert parse_topic("yiyang/v1/WB-000123/telemetry", "yiyang") == ("WB-000123", Channel.telemetry)
    assert parse_topic(topic_for("t1", "radar.7", Channel.event), "t1") == ("radar.7", Channel.event)
    assert parse_topic("yiyang/v2/WB-000123/telemetry", "yiyang") is None
    assert parse_topic("yiyang/v1/WB 1/telemetry", "yiyang") is None
    assert parse_topic("yiyang/v1/WB-1/video", "yiyang") is None
    assert parse_topic("yiyang/v1/WB-1/telemetry/extra", "yiyang") is None
    assert parse_topic("other/v1/WB-1/telemetry", "yiyang") is None


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
# Any offset a device may send: near year 1 or 9999 some of them fall outside the calendar in UTC.
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "seq": JSON | st.integers(-(2**40), 2**40),
        "time": JSON | st.datetimes(timezones=OFFSETS).map(lambda d: d.isoformat()),
        "readings": JSON
        | st.dictionaries(st.sampled_from(["8867-4", "59408-5", "85354-9", "x"]), JSON, max_size=3),
        "event": JSON | st.sampled_from([kind.value for kind in EventKind]),
        "online": JSON,
        "battery": JSON,
        "v": JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(channel=st.sampled_from(list(Channel)), raw=st.binary(max_size=200) | FIELDS.map(orjson.dumps))
def test_parsing_never_raises_whatever_arrives(channel: Channel, raw: bytes) -> None:
    result = parse(channel, raw, NOW)
    assert isinstance(result, TelemetryMessage | EventMessage | StatusMessage | Rejection)
