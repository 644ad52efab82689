"""Alert rules on the ingest hot path, and the timed jobs that run the clocks (规则引擎).

``AlertRules`` is the ``devices.ingest.Rules`` hook: called once per batch, inside the batch's
transaction, with only the new telemetry and events. Per message it does dictionary look-ups
(device -> its placement at the message's own time -> residents -> compiled rules, from
``RuleBook``) and a handful of comparisons; it
touches the database only for what fired (a hit raises or counts an alert), for duration
clocks (out of bed at night: rare events) and for absence clocks, which are written only when
they moved by more than ``slack`` (so a resident's radar reporting every 10 s costs one write per
slack period, not one per message) or changed hands. The deadline sweep job, not the hot path,
raises absences.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from yiyang.alerts import service
from yiyang.alerts.book import Holder, RuleBook, effective_rules, holders_at
from yiyang.alerts.channels import AlertSettings, Notifier, notifier_from_settings
from yiyang.alerts.rules import (
    DeadlineChange,
    Hit,
    absence_changes,
    default_document,
    duration_changes,
    event_hits,
    screened,
    thresholds_crossed,
)
from yiyang.db import Database, utcnow
from yiyang.devices.ingest import TelemetryBatch

log = logging.getLogger("yiyang.alerts")

_notifier: Notifier | None = None
_notifier_lock = threading.Lock()


def current_notifier() -> Notifier:
    """The process's channels (from ``YIYANG_ALERTS_*``); tests replace it with ``use_notifier``."""
    global _notifier
    with _notifier_lock:
        if _notifier is None:
            _notifier = notifier_from_settings()
        return _notifier


def use_notifier(notifier: Notifier | None) -> None:
    global _notifier
    with _notifier_lock:
        _notifier = notifier


def rule_names(code: str) -> tuple[str, str]:
    """A rule's names as people read them (from the district rule set)."""
    for section in ("thresholds", "events", "durations", "absence"):
        for rule in default_document().get(section, []):
            if rule["code"] == code:
                return rule.get("zh", code), rule.get("en", code)
    return code, code


@dataclass
class EvaluationStats:
    batches: int = 0
    messages: int = 0
    hits: int = 0
    raised: int = 0
    deadline_writes: int = 0
    raised_alerts: list[tuple[int, int]] = field(default_factory=list)  # (alert, resident) when kept


class AlertRules:
    """The ingest ``Rules`` hook. One instance per worker process (it holds the caches)."""

    def __init__(
        self,
        book: RuleBook | None = None,
        slack: dt.timedelta | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        keep_raised: bool = False,
    ) -> None:
        self.book = book or RuleBook()
        self.slack = slack if slack is not None else dt.timedelta(seconds=AlertSettings().deadline_slack_s)
        self.clock = clock
        self.stats = EvaluationStats()
        self.keep_raised = keep_raised  # the benchmark reads which alerts were raised
        # absence clocks as last written: (rule, subject) -> (due, resident)
        self._pushed: dict[tuple[str, int], tuple[dt.datetime, int]] = {}

    def __call__(self, session: Session, batch: TelemetryBatch) -> None:
        if not batch.telemetry and not batch.events:
            return
        now = self.clock()
        self.stats.batches += 1
        device_ids = {item.device.id for item in batch.telemetry}
        device_ids.update(item.device.id for item in batch.events)
        # Each message goes to whoever had the device when it was measured: a backlog sent after
        # the device moved to another elder holds readings of both.
        placements = self.book.placements(session, device_ids)
        if not placements:
            return
        # (resident, rule) -> earliest hit, count, device, rules, latest time: a batch holds a
        # device's backlog in any order, and the alert keeps when it was first and last seen.
        hits: dict[tuple[int, str], tuple[Hit, int, int, Any, dt.datetime]] = {}
        absence: dict[tuple[str, int], service.DeadlineWrite] = {}

        def hit(resident_id: int, found: Hit, device_id: int, rules: Any) -> None:
            key = (resident_id, found.rule)
            seen = hits.get(key)
            if seen is None:
                hits[key] = (found, 1, device_id, rules, found.at)
            elif found.at < seen[0].at:  # an earlier one: the alert was raised by it
                hits[key] = (found, seen[1] + 1, device_id, rules, seen[4])
            else:
                hits[key] = (seen[0], seen[1] + 1, seen[2], rules, max(seen[4], found.at))

        def activity(change: DeadlineChange, rules: Any, resident_id: int, device_id: int) -> None:
            rule = rules.rule(change.rule)
            subject = device_id if rule is not None and not rule.activity else resident_id
            key = (change.rule, subject)
            write = service.as_write(change, subject, resident_id, device_id)
            known = absence.get(key)
            if known is None or write.due_at > known.due_at:
                absence[key] = write

        # device -> its latest message in this batch that had holders, and theirs
        latest: dict[int, tuple[dt.datetime, tuple[Holder, ...]]] = {}
        self.stats.messages += len(batch.telemetry)
        for item in batch.telemetry:
            message = item.message
            device_id = item.device.id
            found = holders_at(placements.get(device_id, ()), message.measured_at)
            if not found:
                continue
            seen = latest.get(device_id)
            if seen is None or message.measured_at > seen[0]:
                latest[device_id] = (message.measured_at, found)
            values = message.values
            for holder in found:
                rules = holder.rules
                if screened(rules, values):
                    continue
                for crossed in thresholds_crossed(rules, values, message.measured_at):
                    hit(holder.resident_id, crossed, device_id, rules)

        durations: list[tuple[DeadlineChange, int, int]] = []
        for item in sorted(batch.events, key=lambda e: e.message.measured_at):
            self.stats.messages += 1
            kind = item.message.kind.value
            at = item.message.measured_at
            found = holders_at(placements.get(item.device.id, ()), at)
            if not found:
                continue
            for holder in found:
                rules = holder.rules
                for event_hit in event_hits(rules, kind, at):
                    hit(holder.resident_id, event_hit, item.device.id, rules)
                for change in duration_changes(rules, kind, at):
                    durations.append((change, holder.resident_id, item.device.id))
                for change in absence_changes(rules, kind, at, holder.living_alone):
                    activity(change, rules, holder.resident_id, item.device.id)
            seen = latest.get(item.device.id)
            if seen is None or at > seen[0]:
                latest[item.device.id] = (at, found)

        # Silence clocks: once per device per batch, from its latest message.
        for device_id, (at, found) in latest.items():
            holder = found[0]
            for rule in holder.rules.silence:
                key = (rule.code, device_id)
                due = at + rule.wait
                if self._moved(key, due, holder.resident_id):
                    absence[key] = service.DeadlineWrite(
                        rule.code, device_id, holder.resident_id, device_id, at, due
                    )

        for change, resident_id, device_id in durations:
            if change.due is None:
                service.stop_deadline(session, change.rule, resident_id)
            else:
                service.start_deadline(session, service.as_write(change, resident_id, resident_id, device_id))

        writes = []
        for key, write in absence.items():
            if self._moved(key, write.due_at, write.resident_id):
                writes.append(write)
        if writes:
            service.push_deadlines(session, writes)
            self.stats.deadline_writes += len(writes)

            # Remembered once the batch commits: a rolled-back batch is redelivered and must
            # write its clocks again.
            def remember(_session: Session) -> None:
                for write in writes:
                    self._pushed[(write.rule, write.subject_id)] = (write.due_at, write.resident_id)

            event.listen(session, "after_commit", remember, once=True)

        to_record = []
        for (resident_id, _code), (found_hit, count, device_id, rules, last_at) in hits.items():
            rule = rules.rule(found_hit.rule)
            if rule is not None:
                to_record.append(
                    service.HitToRecord(
                        resident_id, rule, rules, found_hit.at, device_id, found_hit.detail, count, last_at
                    )
                )
                self.stats.hits += count
        for alert, new in service.record_hits(session, to_record, now):
            if new:
                self.stats.raised += 1
                if self.keep_raised:
                    self.stats.raised_alerts.append((alert.id, alert.resident_id))

    def _moved(self, key: tuple[str, int], due: dt.datetime, resident_id: int) -> bool:
        """Whether a clock is worth writing: new, moved by the slack, or now someone else's (a
        device handed to another elder: left with the previous one, the sweep would drop it as
        no longer placed with her, and the new holder would never hear the device fall silent)."""
        last = self._pushed.get(key)
        return last is None or last[1] != resident_id or due - last[0] >= self.slack


# ---- timed jobs --------------------------------------------------------------------------


_book: RuleBook | None = None
JOB_PASSES = 20  # chunks per job run at most
SWEEP_CHUNK = 1000
ESCALATION_CHUNK = 500


def shared_book() -> RuleBook:
    global _book
    if _book is None:
        _book = RuleBook()
    return _book


def sweep_job(database: Database, now: dt.datetime) -> dict[str, int]:
    """Absence and duration clocks that ran out become alerts (every 30 s)."""
    book = shared_book()
    total = {"due": 0, "raised": 0, "repeats": 0, "rescheduled": 0}
    for _ in range(JOB_PASSES):  # a backlog (after an outage) is worked off in bounded transactions
        with database.unit_of_work() as session:
            report = service.sweep_deadlines(
                session, now, lambda s, rid: effective_rules(s, rid, book), SWEEP_CHUNK
            )
        for key in total:
            total[key] += getattr(report, key)
        if report.due < SWEEP_CHUNK:
            break
    return total


def escalation_job(database: Database, now: dt.datetime) -> dict[str, int]:
    """Unacknowledged alerts move up their chain when a step's time comes (every 15 s)."""
    steps = 0
    for _ in range(JOB_PASSES):
        with database.unit_of_work() as session:
            done, seen = service.run_escalations(session, now, shared_book().base, ESCALATION_CHUNK)
        steps += done
        if seen < ESCALATION_CHUNK:
            break
    return {"steps": steps}


def delivery_job(database: Database, now: dt.datetime) -> dict[str, int]:
    """SMS, voice and webhook notifications: send what is pending, retry what failed (every 10 s)."""
    with database.unit_of_work() as session:
        report = service.send_deliveries(session, now, current_notifier())
    return {"sent": report.sent, "failed": report.failed, "gave_up": report.gave_up}


def register_jobs() -> None:
    from yiyang.jobs import Job, register

    register(Job("alerts.sweep", dt.timedelta(seconds=30), sweep_job))
    register(Job("alerts.escalation", dt.timedelta(seconds=15), escalation_job))
    register(Job("alerts.delivery", dt.timedelta(seconds=10), delivery_job))


def make_rules() -> AlertRules:
    """The hook the ingest worker and the HTTP gateway path run with."""
    return AlertRules(book=shared_book())
