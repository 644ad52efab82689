"""Alert lifecycle, escalation, deadlines and deliveries (告警处置). Services never commit.

Lifecycle: ``open`` -> ``acknowledged`` -> ``resolved`` (with an outcome); while nobody has
acknowledged it, the escalation job runs the chain's next steps (``open`` -> ``escalated``).
Acknowledging stops the chain. One open alert per resident and kind: a repeat is counted on it.
Every change is an ``alert_transition`` row naming who and when.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yiyang.access.actor import Actor, system_actor
from yiyang.access.audit import record_access
from yiyang.access.models import (
    AuthCredential,
    RelationshipKind,
    ResidentAuthorisation,
    ResidentRelationship,
    RoleMembership,
    User,
)
from yiyang.access.policy import DataCategory, authorize
from yiyang.access.roles import CLINICAL_TEAM_ROLES, Role
from yiyang.alerts.channels import DeliveryFailed, Notice, Notifier
from yiyang.alerts.models import (
    Alert,
    AlertDeadline,
    AlertDelivery,
    AlertOutcome,
    AlertState,
    AlertTransition,
    DeliveryStatus,
    InboxItem,
)
from yiyang.alerts.rules import ChannelName, DeadlineChange, Rule, RuleKind, RuleSet, Step, Target, steps_due
from yiyang.db import UTCDateTime, is_postgres
from yiyang.devices.models import Device, DeviceBinding, DeviceEvent
from yiyang.errors import Conflict, Invalid, NotFound
from yiyang.events import AlertRaised, AlertResolved, WorkItemCompleted, publish, publish_all
from yiyang.geo.models import LivingArrangement
from yiyang.residents.models import Resident

log = logging.getLogger("yiyang.alerts")
RULES_ACTOR = "system:alert-rules"
ESCALATION_ACTOR = "system:alert-escalation"
OPEN_STATES = (AlertState.open, AlertState.escalated, AlertState.acknowledged)
UNACKNOWLEDGED = (AlertState.open, AlertState.escalated)
STAFF_ROLES = tuple(sorted(CLINICAL_TEAM_ROLES))  # in_() wants a sequence
STATION_ROLES = (Role.station_staff,)
RETRY_BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=2),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=15),
)


def open_key(resident_id: int, kind: str) -> str:
    return f"{resident_id}:{kind}"


# ---- raising --------------------------------------------------------------------------------


def record_hit(
    session: Session,
    resident_id: int,
    rule: Rule,
    rules: RuleSet,
    at: dt.datetime,
    now: dt.datetime,
    *,
    device_id: int | None = None,
    detail: dict | None = None,
    count: int = 1,
) -> tuple[Alert, bool]:
    """Raise the rule's alert for the resident, or count a repeat on the open one.
    Returns the alert and whether it is new."""
    at = min(at, now)  # see ``record_hits``: a device clock ahead of ours must not hold the chain back
    key = open_key(resident_id, rule.code)
    alert = session.scalar(select(Alert).where(Alert.open_key == key))
    if alert is not None:
        _repeat(alert, at, count)
        return alert, False
    alert = _new_alert(resident_id, rule, at, now, device_id, detail, count)
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        # Another worker raised it a moment ago: count ours as a repeat of theirs.
        alert = session.scalar(select(Alert).where(Alert.open_key == key))
        if alert is None:
            raise
        _repeat(alert, at, count)
        return alert, False
    _transition(session, alert, None, AlertState.open, now, None, RULES_ACTOR)
    run_due_steps(session, alert, rules.chain(rule.chain), now, ESCALATION_ACTOR)
    publish(session, AlertRaised(alert.id, resident_id, rule.code, rule.severity.value, at, rule.tier_fact))
    return alert, True


@dataclass(frozen=True, slots=True)
class HitToRecord:
    resident_id: int
    rule: Rule
    rules: RuleSet
    at: dt.datetime
    device_id: int | None = None
    detail: dict | None = None
    count: int = 1
    last_at: dt.datetime | None = None  # the latest of ``count`` hits, when later than ``at``

    @property
    def latest(self) -> dt.datetime:
        return self.last_at if self.last_at is not None and self.last_at > self.at else self.at


@dataclass(frozen=True, slots=True)
class AlertRef:
    """An alert as ``record_hits`` leaves it: written with Core statements, not loaded."""

    id: int
    resident_id: int
    kind: str


@dataclass(slots=True)
class _Fresh:
    """A new alert of this batch, before it is written."""

    hit: HitToRecord
    key: str
    repeats: int
    last_seen_at: dt.datetime
    positions: list[int]


def record_hits(
    session: Session, hits: Sequence[HitToRecord], now: dt.datetime
) -> list[tuple[AlertRef, bool]]:
    """``record_hit`` for a whole batch, in a few Core statements and no ORM objects: one look-up
    of the open alerts, one update of their repeats, one insert of the new ones, then their
    transitions, inbox items and deliveries in one insert each (the ORM's unit of work cost
    more than the rules on a batch that raised a few hundred alerts). Same outcome as one
    ``record_hit`` per hit: one open alert per resident and kind, repeats counted on it, the
    chain's due steps run, ``AlertRaised`` published per new alert. Returns, per hit, the alert
    and whether this hit raised it."""
    if not hits:
        return []
    # A device clock a little ahead of ours (the ingest takes up to 10 minutes) would put the
    # alert, and so its chain, in the future: step 0 would wait for that moment instead of
    # running now. Nothing can have been observed after we recorded it.
    hits = [
        replace(hit, at=min(hit.at, now), last_at=min(hit.latest, now)) if hit.latest > now else hit
        for hit in hits
    ]
    table = Alert.__table__
    keys = [open_key(hit.resident_id, hit.rule.code) for hit in hits]
    existing = _open_alerts(session, set(keys))
    results: list[tuple[AlertRef, bool] | None] = [None] * len(hits)
    repeats: dict[int, list] = {}  # alert id -> [count, latest time]
    fresh: dict[str, _Fresh] = {}
    for position, (hit, key) in enumerate(zip(hits, keys, strict=True)):
        ref = existing.get(key)
        if ref is not None:
            _count_repeat(repeats, ref.id, hit.latest, hit.count)
            results[position] = (ref, False)
            continue
        pending = fresh.get(key)
        if pending is None:
            fresh[key] = _Fresh(hit, key, hit.count - 1, hit.latest, [position])
        else:  # the same key twice in one batch: the second is a repeat of the first
            pending.repeats += hit.count
            pending.last_seen_at = max(pending.last_seen_at, hit.latest)
            pending.positions.append(position)

    raised: list[tuple[_Fresh, AlertRef]] = []
    if fresh:
        plans = {key: _plan_steps(item.hit, now) for key, item in fresh.items()}
        dialect_insert = postgresql.insert if is_postgres(session) else sqlite.insert
        # A key another worker raised since the look-up is skipped here and counted below.
        statement = (
            dialect_insert(table)
            .on_conflict_do_nothing(index_elements=[table.c.open_key])
            .returning(table.c.id, table.c.open_key)
        )
        rows = [_alert_row(item, plans[key], now) for key, item in fresh.items()]
        inserted = {key: alert_id for alert_id, key in session.execute(statement, rows)}
        lost = [key for key in fresh if key not in inserted]
        theirs = _open_alerts(session, set(lost)) if lost else {}
        for key, item in fresh.items():
            alert_id = inserted.get(key)
            if alert_id is None:
                ref = theirs.get(key)
                if ref is None:
                    raise RuntimeError(f"alert {key} neither inserted nor open")  # resolved in between
                _count_repeat(repeats, ref.id, item.last_seen_at, item.repeats + 1)
                for position in item.positions:
                    results[position] = (ref, False)
                continue
            ref = AlertRef(alert_id, item.hit.resident_id, item.hit.rule.code)
            raised.append((item, ref))
            results[item.positions[0]] = (ref, True)
            for position in item.positions[1:]:
                results[position] = (ref, False)
        _write_raised(session, [(ref, plans[item.key]) for item, ref in raised], now)
    if repeats:
        session.execute(
            _REPEAT,
            [{"b_id": alert_id, "b_count": count, "b_at": at} for alert_id, (count, at) in repeats.items()],
        )
    publish_all(
        session,
        [
            AlertRaised(ref.id, item.hit.resident_id, item.hit.rule.code, item.hit.rule.severity.value,
                        item.hit.at, item.hit.rule.tier_fact)
            for item, ref in raised
        ],
    )  # fmt: skip
    return [result for result in results if result is not None]


_SEEN_AT = bindparam("b_at", type_=UTCDateTime())
_REPEAT = (
    update(Alert.__table__)
    .where(Alert.__table__.c.id == bindparam("b_id"))
    .values(
        repeats=Alert.__table__.c.repeats + bindparam("b_count"),
        last_seen_at=case(
            (Alert.__table__.c.last_seen_at < _SEEN_AT, _SEEN_AT), else_=Alert.__table__.c.last_seen_at
        ),
    )
)


def _open_alerts(session: Session, keys: set[str]) -> dict[str, AlertRef]:
    table = Alert.__table__
    query = select(table.c.id, table.c.open_key, table.c.resident_id, table.c.kind).where(
        table.c.open_key.in_(keys)
    )
    return {row.open_key: AlertRef(row.id, row.resident_id, row.kind) for row in session.execute(query)}


def _count_repeat(repeats: dict[int, list], alert_id: int, at: dt.datetime, count: int) -> None:
    seen = repeats.get(alert_id)
    if seen is None:
        repeats[alert_id] = [count, at]
    else:
        seen[0] += count
        seen[1] = max(seen[1], at)


@dataclass(frozen=True, slots=True)
class _StepPlan:
    """What raising an alert runs of its chain at once (``run_due_steps`` on a new alert)."""

    hit: HitToRecord
    steps: tuple[Step, ...]
    due: list[int]
    state: AlertState
    steps_done: int
    next_escalation_at: dt.datetime | None


def _plan_steps(hit: HitToRecord, now: dt.datetime) -> _StepPlan:
    steps = tuple(hit.rules.chain(hit.rule.chain))
    due = steps_due(steps, hit.at, 0, now)
    done = due[-1] + 1 if due else 0
    state = AlertState.escalated if any(index > 0 for index in due) else AlertState.open
    following = hit.at + dt.timedelta(minutes=steps[done].after_minutes) if done < len(steps) else None
    return _StepPlan(hit, steps, due, state, done, following)


def _alert_row(item: _Fresh, plan: _StepPlan, now: dt.datetime) -> dict:
    hit, rule = item.hit, item.hit.rule
    return {
        "resident_id": hit.resident_id, "kind": rule.code, "rule_kind": rule.kind.value,
        "severity": rule.severity.value, "state": plan.state, "open_key": item.key, "device_id": hit.device_id,
        "detail": hit.detail, "tier_fact": rule.tier_fact, "raised_at": hit.at, "recorded_at": now,
        "last_seen_at": item.last_seen_at, "repeats": item.repeats, "chain": rule.chain,
        "steps_done": plan.steps_done, "next_escalation_at": plan.next_escalation_at,
    }  # fmt: skip


def _write_raised(session: Session, raised: Sequence[tuple[AlertRef, _StepPlan]], now: dt.datetime) -> None:
    """The transitions, inbox items and deliveries of newly raised alerts, one insert each."""
    if not raised:
        return
    targets = {target for _ref, plan in raised for index in plan.due for target in plan.steps[index].notify}
    known = recipients_for(session, [ref.resident_id for ref, _plan in raised], targets, now)
    transitions: list[dict] = []
    inbox: list[dict] = []
    deliveries: list[dict] = []
    for ref, plan in raised:
        transitions.append(_transition_row(ref.id, None, AlertState.open, now, None, RULES_ACTOR))
        state = AlertState.open
        for index in plan.due:
            step_inbox, step_deliveries = _step_rows(
                ref, plan.hit.rule.severity.value, index, plan.steps[index], now,
                lambda resident, target: known.get((resident, target), []),
            )  # fmt: skip
            inbox.extend(step_inbox)
            deliveries.extend(step_deliveries)
            if index > 0:
                transitions.append(
                    _transition_row(
                        ref.id, state, AlertState.escalated, now, None, ESCALATION_ACTOR, step=index
                    )
                )
                state = AlertState.escalated
    session.execute(insert(AlertTransition), transitions)
    if inbox:
        session.execute(insert(InboxItem), inbox)
    if deliveries:
        session.execute(insert(AlertDelivery), deliveries)


def _new_alert(
    resident_id: int,
    rule: Rule,
    at: dt.datetime,
    now: dt.datetime,
    device_id: int | None,
    detail: dict | None,
    count: int,
) -> Alert:
    return Alert(
        resident_id=resident_id, kind=rule.code, rule_kind=rule.kind.value, severity=rule.severity.value,
        state=AlertState.open, open_key=open_key(resident_id, rule.code), device_id=device_id, detail=detail,
        tier_fact=rule.tier_fact, raised_at=at, recorded_at=now, last_seen_at=at, repeats=count - 1, chain=rule.chain,
        steps_done=0,
    )  # fmt: skip


def _repeat(alert: Alert, at: dt.datetime, count: int) -> None:
    alert.repeats += count
    if at > alert.last_seen_at:
        alert.last_seen_at = at


def _transition(
    session: Session,
    alert: Alert,
    old: AlertState | None,
    new: AlertState,
    now: dt.datetime,
    user_id: int | None,
    name: str,
    *,
    step: int | None = None,
    note: str | None = None,
) -> None:
    session.add(
        AlertTransition(**_transition_row(alert.id, old, new, now, user_id, name, step=step, note=note))
    )


def _transition_row(
    alert_id: int,
    old: AlertState | None,
    new: AlertState,
    now: dt.datetime,
    user_id: int | None,
    name: str,
    *,
    step: int | None = None,
    note: str | None = None,
) -> dict:
    return {
        "alert_id": alert_id, "from_state": old.value if old else None, "to_state": new.value, "step": step,
        "at": now, "by_user_id": user_id, "by_name": name[:64], "note": note[:200] if note else None,
    }  # fmt: skip


# ---- lifecycle ------------------------------------------------------------------------------


def get_alert(session: Session, alert_id: int, *, lock: bool = False) -> Alert:
    """One alert; ``lock`` holds its row until commit (PostgreSQL), so the escalation job, which
    skips locked rows, cannot escalate an alert while someone acknowledges or resolves it."""
    if lock:
        alert = session.scalar(
            select(Alert)
            .where(Alert.id == alert_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    else:
        alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("alert.not_found", "告警不存在 (no such alert)")
    return alert


def acknowledge(
    session: Session, alert_id: int, by: Actor, now: dt.datetime, note: str | None = None
) -> Alert:
    """Someone takes the alert on: the escalation stops."""
    alert = get_alert(session, alert_id, lock=True)
    if alert.state == AlertState.acknowledged:
        return alert
    if alert.state == AlertState.resolved:
        raise Conflict("alert.resolved", "告警已处置 (the alert is already resolved)")
    old = alert.state
    alert.state = AlertState.acknowledged
    alert.acknowledged_at = now
    alert.acknowledged_by = by.user_id
    alert.next_escalation_at = None
    _transition(session, alert, old, AlertState.acknowledged, now, by.user_id, by.username, note=note)
    return alert


def resolve(
    session: Session,
    alert_id: int,
    outcome: AlertOutcome | str,
    by: Actor,
    now: dt.datetime,
    note: str | None = None,
) -> Alert:
    """Close the alert with its outcome (the care domain calls this when a visit's outcome is in)."""
    try:
        outcome = AlertOutcome(outcome)
    except ValueError:
        raise Invalid("alert.outcome", "处置结果无效 (unknown outcome)") from None
    alert = get_alert(session, alert_id, lock=True)
    if alert.state == AlertState.resolved:
        raise Conflict("alert.resolved", "告警已处置 (the alert is already resolved)")
    old = alert.state
    alert.state = AlertState.resolved
    alert.resolved_at = now
    alert.resolved_by = by.user_id
    alert.outcome = outcome.value
    alert.open_key = None  # the next hit raises a new alert
    alert.next_escalation_at = None
    _transition(
        session, alert, old, AlertState.resolved, now, by.user_id, by.username, note=note or outcome.value
    )
    # Deliveries not yet sent are of no use any more.
    session.execute(
        update(AlertDelivery)
        .where(
            AlertDelivery.alert_id == alert.id,
            AlertDelivery.status.in_([DeliveryStatus.pending, DeliveryStatus.failed]),
        )
        .values(status=DeliveryStatus.gave_up, last_error="alert resolved", next_attempt_at=None)
    )
    publish(session, AlertResolved(alert.id, alert.resident_id, alert.kind, outcome.value, now))
    return alert


RESPONDER_WINDOW = dt.timedelta(hours=24)  # how long after resolution a responder may still open it
RESPONDER_REASON = "escalation recipient"
NO_LONGER_RECIPIENT = "recipient no longer qualifies"


def authorize_alert(
    session: Session, actor: Actor, alert: Alert, *, action: str = "read", now: dt.datetime
) -> None:
    """The policy's check for one alert, plus the responder's duty: a person an escalation step
    addressed (an inbox item of this alert) may open, acknowledge and resolve it while it is open
    and for a day after, whatever their role's usual scope (a grid worker, a station on duty), as
    long as the chain would still choose them for this resident today (``entitled_clause``): a
    revoked authorisation or role, an ended contract or service, a deactivated account end it.
    Audited either way; a responder's row says so."""
    resolved_long_ago = alert.resolved_at is not None and alert.resolved_at + RESPONDER_WINDOW < now
    addressed = (
        actor.user_id is not None
        and not resolved_long_ago
        and session.scalar(
            select(InboxItem.id)
            .join(Alert, Alert.id == InboxItem.alert_id)
            .where(InboxItem.alert_id == alert.id, InboxItem.user_id == actor.user_id, entitled_clause(now))
            .limit(1)
        )
        is not None
    )
    if addressed:
        record_access(
            session, actor, action=action, resource_type="alert", resident_id=alert.resident_id,
            field_group="sensor", purpose="care", reason=RESPONDER_REASON, at=now,
        )  # fmt: skip
        return
    authorize(
        session, actor, alert.resident_id, category=DataCategory.sensor, what="alert", action=action, now=now
    )


def on_work_item_completed(session: Session, event: WorkItemCompleted) -> Alert | None:
    """The care domain's home visit for an alert is done: the alert closes with the visit.

    A failed visit (nobody home, refused) leaves the alert open for the people on its chain.
    """
    if event.source_type != "alert" or event.source_id is None or event.status != "done":
        return None
    alert = session.get(Alert, event.source_id)
    if alert is None or alert.state == AlertState.resolved:
        return None
    note = f"work_item:{event.work_item_id}"
    return resolve(
        session, alert.id, AlertOutcome.visit_done, system_actor("care.home_visit"), event.completed_at, note
    )


def transitions_of(session: Session, alert_id: int) -> list[AlertTransition]:
    return list(
        session.scalars(
            select(AlertTransition).where(AlertTransition.alert_id == alert_id).order_by(AlertTransition.id)
        )
    )


def deliveries_of(session: Session, alert_id: int) -> list[AlertDelivery]:
    return list(
        session.scalars(
            select(AlertDelivery).where(AlertDelivery.alert_id == alert_id).order_by(AlertDelivery.id)
        )
    )


def list_alerts(
    session: Session,
    visible: ColumnElement[bool],
    *,
    states: Sequence[AlertState] | None = None,
    resident_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[Alert]]:
    """Alerts of the residents the caller may see (``visible`` from ``policy.visible_residents``)."""
    query = select(Alert).join(Resident, Resident.id == Alert.resident_id).where(visible)
    if states:
        query = query.where(Alert.state.in_(states))
    if resident_id is not None:
        query = query.where(Alert.resident_id == resident_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit).offset(offset)
    )
    return total, list(rows)


# ---- escalation -----------------------------------------------------------------------------


def run_due_steps(
    session: Session, alert: Alert, steps: Sequence[Step], now: dt.datetime, by: str, who: Who | None = None
) -> int:
    """Run every step of the chain that is due and has not run; schedule the next one."""
    due = steps_due(steps, alert.raised_at, alert.steps_done, now) if alert.state in UNACKNOWLEDGED else []
    for index in due:
        _notify_step(session, alert, index, steps[index], now, who)
        if index > 0:
            old = alert.state
            alert.state = AlertState.escalated
            _transition(session, alert, old, AlertState.escalated, now, None, by, step=index)
        alert.steps_done = index + 1
    following = alert.steps_done
    alert.next_escalation_at = (
        alert.raised_at + dt.timedelta(minutes=steps[following].after_minutes)
        if following < len(steps) and alert.state in UNACKNOWLEDGED
        else None
    )
    return len(due)


def run_escalations(session: Session, now: dt.datetime, chains: RuleSet, limit: int = 500) -> tuple[int, int]:
    """The timed job: every unacknowledged alert whose next step is due (index on next_escalation_at)."""
    alerts = session.scalars(
        select(Alert)
        .where(Alert.next_escalation_at <= now, Alert.state.in_(UNACKNOWLEDGED))
        .order_by(Alert.next_escalation_at)
        .limit(limit)
        .with_for_update(skip_locked=True)  # one being acknowledged (or escalated elsewhere) waits
    ).all()
    steps = 0
    for alert in alerts:
        steps += run_due_steps(session, alert, chains.chain(alert.chain), now, ESCALATION_ACTOR)
    return steps, len(alerts)  # steps run, alerts looked at


def recipients(session: Session, resident_id: int, target: Target, now: dt.datetime) -> list[int]:
    """The users a chain's target means for this resident, today."""
    return recipients_for(session, [resident_id], [target], now).get((resident_id, target), [])


def recipients_for(
    session: Session, resident_ids: Sequence[int], targets: Iterable[Target], now: dt.datetime
) -> dict[tuple[int, Target], list[int]]:
    """The users each target means for each of these residents: one query per target."""
    ids = sorted(set(resident_ids))
    found: dict[tuple[int, Target], set[int]] = {}
    for target in set(targets):
        query, resident, _user = _recipient_pairs(target, now)
        for resident_id, user_id in session.execute(query.where(resident.in_(ids))):
            found.setdefault((resident_id, target), set()).add(user_id)
    return {key: sorted(users) for key, users in found.items()}


def _recipient_pairs(
    target: Target, now: dt.datetime
) -> tuple[Select, ColumnElement[int], ColumnElement[int]]:
    """Who ``target`` means today, as (resident, user) pairs: the one rule that both chooses an
    escalation step's recipients and decides whether an inbox item still entitles its user
    (``entitled_clause``). A deactivated account is never chosen. Returns the statement and its
    resident and user columns, for the caller's filter."""
    if target is Target.family:
        # The policy's rule (``access.service.load_actor``): a family member acts for a resident
        # only while holding the family_member role and an authorisation in force, both unrevoked.
        resident, user = ResidentAuthorisation.resident_id, ResidentAuthorisation.grantee_id
        holds_role = (
            select(RoleMembership.id)
            .where(
                RoleMembership.user_id == ResidentAuthorisation.grantee_id,
                RoleMembership.role == Role.family_member,
                RoleMembership.revoked_at.is_(None),
            )
            .correlate(ResidentAuthorisation)
            .exists()
        )
        query = select(resident, user).where(
            ResidentAuthorisation.valid_from <= now,
            or_(ResidentAuthorisation.valid_until.is_(None), ResidentAuthorisation.valid_until > now),
            ResidentAuthorisation.revoked_at.is_(None),
            holds_role,
        )
    elif target is Target.grid_worker:
        resident, user = Resident.id, RoleMembership.user_id
        query = (
            select(resident, user)
            .join(RoleMembership, RoleMembership.area_id == Resident.grid_id)
            .where(RoleMembership.role == Role.grid_worker, RoleMembership.revoked_at.is_(None))
        )
    else:
        kind = RelationshipKind.contract if target is Target.family_doctor_team else RelationshipKind.service
        roles = STAFF_ROLES if target is Target.family_doctor_team else STATION_ROLES
        resident, user = ResidentRelationship.resident_id, RoleMembership.user_id
        query = (
            select(resident, user)
            .join(RoleMembership, RoleMembership.organisation_id == ResidentRelationship.organisation_id)
            .where(
                ResidentRelationship.kind == kind,
                ResidentRelationship.valid_from <= now,
                or_(ResidentRelationship.valid_until.is_(None), ResidentRelationship.valid_until > now),
                ResidentRelationship.ended_at.is_(None),
                RoleMembership.role.in_(roles),
                RoleMembership.revoked_at.is_(None),
            )
        )
    return query.join(User, User.id == user).where(User.active.is_(True)), resident, user


def entitled_clause(now: dt.datetime) -> ColumnElement[bool]:
    """A clause over ``inbox_item`` joined to its ``alert``: the items whose user would still be
    chosen today, for the alert's resident, by a target that addressed them for this alert (the
    inbox delivery written with the item names it). An inbox item is no standing grant: it
    entitles its user only while the relationship that made them a recipient holds (a revoked
    authorisation or role, an ended contract or service, a deactivated account end it)."""
    per_target = []
    for target in Target:
        query, resident, user = _recipient_pairs(target, now)
        addressed_as = (
            select(AlertDelivery.id)
            .where(
                AlertDelivery.alert_id == InboxItem.alert_id,
                AlertDelivery.user_id == InboxItem.user_id,
                AlertDelivery.channel == ChannelName.inbox.value,
                AlertDelivery.target == target.value,
            )
            .correlate(InboxItem)
            .exists()
        )
        still_chosen = (
            query.where(resident == Alert.resident_id, user == InboxItem.user_id)
            .correlate(InboxItem, Alert)
            .exists()
        )
        per_target.append(and_(addressed_as, still_chosen))
    return or_(*per_target)


Who = Callable[[int, Target], list[int]]


def _notify_step(
    session: Session, alert: Alert, index: int, step: Step, now: dt.datetime, who: Who | None = None
) -> None:
    def users(resident_id: int, target: Target) -> list[int]:
        return who(resident_id, target) if who else recipients(session, resident_id, target, now)

    ref = AlertRef(alert.id, alert.resident_id, alert.kind)
    inbox, deliveries = _step_rows(ref, alert.severity, index, step, now, users)
    for row in inbox:
        session.add(InboxItem(**row))
    for row in deliveries:
        session.add(AlertDelivery(**row))


def _step_rows(
    alert: AlertRef, severity: str, index: int, step: Step, now: dt.datetime, who: Who
) -> tuple[list[dict], list[dict]]:
    """One escalation step's inbox items and deliveries: per recipient and channel, an inbox
    item (sent at once) or a pending delivery for a configured channel; and the webhook's."""
    from yiyang.alerts.engine import current_notifier

    notifier = current_notifier()
    zh, en = _titles(alert, index)
    inbox: list[dict] = []
    deliveries: list[dict] = []
    for target in step.notify:
        for user_id in who(alert.resident_id, target):
            for channel in step.channels:
                if channel is ChannelName.inbox:
                    inbox.append(
                        {
                            "user_id": user_id, "alert_id": alert.id, "severity": severity, "title_zh": zh,
                            "title_en": en, "created_at": now, "read_at": None,
                        }
                    )  # fmt: skip
                    deliveries.append(
                        _delivery(
                            alert.id, index, channel.value, user_id, target.value, now, DeliveryStatus.sent
                        )
                    )
                elif notifier.channel(channel.value) is not None:
                    deliveries.append(
                        _delivery(
                            alert.id, index, channel.value, user_id, target.value, now, DeliveryStatus.pending
                        )
                    )
    if notifier.webhook:
        deliveries.append(
            _delivery(alert.id, index, ChannelName.webhook.value, None, None, now, DeliveryStatus.pending)
        )
    return inbox, deliveries


def _delivery(
    alert_id: int,
    step: int,
    channel: str,
    user_id: int | None,
    target: str | None,
    now: dt.datetime,
    status: DeliveryStatus,
) -> dict:
    sent = status is DeliveryStatus.sent
    return {
        "alert_id": alert_id, "step": step, "channel": channel, "user_id": user_id, "target": target,
        "status": status, "attempts": 1 if sent else 0, "next_attempt_at": None if sent else now,
        "last_error": None, "created_at": now, "sent_at": now if sent else None,
    }  # fmt: skip


def _titles(alert: Alert | AlertRef, step: int) -> tuple[str, str]:
    from yiyang.alerts.engine import rule_names

    zh, en = rule_names(alert.kind)
    prefix_zh = "【升级】" if step > 0 else ""
    prefix_en = "[escalated] " if step > 0 else ""
    return (
        f"{prefix_zh}{zh}：居民 #{alert.resident_id}，告警 #{alert.id}",
        f"{prefix_en}{en}: resident #{alert.resident_id}, alert #{alert.id}",
    )


# ---- deliveries -----------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    gave_up: int = 0
    errors: list[str] = field(default_factory=list)


def send_deliveries(
    session: Session, now: dt.datetime, notifier: Notifier, limit: int = 200
) -> DeliveryReport:
    """Send what is pending or due for a retry; failures back off, and give up after max_attempts.

    Every attempt, the first and each retry, first checks that its recipient would still be chosen
    for the resident by the target that chose them (``recipients_for``): one who no longer is (a
    revoked authorisation or role, an ended contract, a deactivated account) is not sent to, and
    the delivery is given up with the reason (counted in ``gave_up``)."""
    report = DeliveryReport()
    rows = session.scalars(
        select(AlertDelivery)
        .where(
            AlertDelivery.status.in_([DeliveryStatus.pending, DeliveryStatus.failed]),
            AlertDelivery.next_attempt_at <= now,
        )
        .order_by(AlertDelivery.next_attempt_at)
        .limit(limit)
        # A second delivery job (another worker process) takes other rows: without the lock both
        # would send the same SMS.
        .with_for_update(skip_locked=True)
    ).all()
    alerts = {a.id: a for a in session.scalars(select(Alert).where(Alert.id.in_({d.alert_id for d in rows})))}
    addressed = [(alerts[d.alert_id].resident_id, _target_of(d.target)) for d in rows if d.alert_id in alerts]
    chosen = recipients_for(
        session, [resident for resident, _ in addressed], {target for _, target in addressed if target}, now
    )
    for delivery in rows:
        channel = notifier.channel(delivery.channel)
        alert = alerts.get(delivery.alert_id)
        if alert is not None and delivery.user_id is not None:  # the webhook's has no recipient
            target = _target_of(delivery.target)
            if target is None or delivery.user_id not in chosen.get((alert.resident_id, target), ()):
                delivery.status = DeliveryStatus.gave_up
                delivery.next_attempt_at = None
                delivery.last_error = NO_LONGER_RECIPIENT
                report.gave_up += 1
                continue
        delivery.attempts += 1
        if channel is None or alert is None:
            delivery.status = DeliveryStatus.gave_up
            delivery.next_attempt_at = None
            delivery.last_error = "channel not configured" if channel is None else "alert missing"
            report.gave_up += 1
            continue
        zh, en = _titles(alert, delivery.step)
        notice = Notice(
            alert.id, alert.kind, alert.severity, alert.resident_id, delivery.step, delivery.channel, delivery.user_id,
            zh, en, f"/alerts/{alert.id}", alert.raised_at.isoformat(),
        )  # fmt: skip
        try:
            channel.send(notice)
        except DeliveryFailed as error:
            delivery.last_error = str(error)[:200]
            if delivery.attempts >= notifier.max_attempts:
                delivery.status = DeliveryStatus.gave_up
                delivery.next_attempt_at = None
                report.gave_up += 1
            else:
                delivery.status = DeliveryStatus.failed
                delivery.next_attempt_at = (
                    now + RETRY_BACKOFF[min(delivery.attempts - 1, len(RETRY_BACKOFF) - 1)]
                )
                report.failed += 1
            report.errors.append(delivery.last_error)
            continue
        delivery.status = DeliveryStatus.sent
        delivery.sent_at = now
        delivery.next_attempt_at = None
        delivery.last_error = None
        report.sent += 1
    return report


def _target_of(value: str | None) -> Target | None:
    try:
        return Target(value) if value is not None else None
    except ValueError:
        return None


# ---- deadlines (durations and absence) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadlineWrite:
    rule: str
    subject_id: int
    resident_id: int
    device_id: int | None
    started_at: dt.datetime
    due_at: dt.datetime


def push_deadlines(session: Session, writes: Sequence[DeadlineWrite]) -> None:
    """Absence clocks: set, or move later (never earlier: a late-arriving old message must not
    bring a deadline forward)."""
    if not writes:
        return
    if is_postgres(session):
        _push_deadlines_pg(session, writes)
        return
    table = AlertDeadline.__table__
    statement = sqlite.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.rule, table.c.subject_id],
        set_={
            "due_at": statement.excluded.due_at,
            "started_at": statement.excluded.started_at,
            "resident_id": statement.excluded.resident_id,
            "device_id": statement.excluded.device_id,
        },
        where=statement.excluded.due_at > table.c.due_at,
    )
    session.execute(statement, [_deadline_params(w) for w in writes])


# One statement for the whole batch (one per clock cost a round of parse, plan and execute each,
# and a worker's first batch starts a silence clock for every device it hears from).
_PUSH_DEADLINES_PG = text(
    "INSERT INTO alert_deadline (rule, subject_id, resident_id, device_id, started_at, due_at) "
    "SELECT * FROM unnest(CAST(:rule AS varchar[]), CAST(:subject_id AS integer[]), "
    "CAST(:resident_id AS integer[]), CAST(:device_id AS integer[]), CAST(:started_at AS timestamp[]), "
    "CAST(:due_at AS timestamp[])) "
    "ON CONFLICT (rule, subject_id) DO UPDATE SET due_at = excluded.due_at, "
    "started_at = excluded.started_at, resident_id = excluded.resident_id, device_id = excluded.device_id "
    "WHERE excluded.due_at > alert_deadline.due_at"
)


def _push_deadlines_pg(session: Session, writes: Sequence[DeadlineWrite]) -> None:
    # One row per clock (a statement may not change a row twice): the latest due time wins, the
    # first of equals, as when the writes are applied one after another.
    latest: dict[tuple[str, int], DeadlineWrite] = {}
    for write in writes:
        key = (write.rule, write.subject_id)
        known = latest.get(key)
        if known is None or write.due_at > known.due_at:
            latest[key] = write
    rows = list(latest.values())
    session.execute(
        _PUSH_DEADLINES_PG,
        {
            "rule": [w.rule for w in rows],
            "subject_id": [w.subject_id for w in rows],
            "resident_id": [w.resident_id for w in rows],
            "device_id": [w.device_id for w in rows],
            "started_at": [_naive_utc(w.started_at) for w in rows],
            "due_at": [_naive_utc(w.due_at) for w in rows],
        },
    )


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def start_deadline(session: Session, write: DeadlineWrite) -> None:
    """A duration's clock starts; one already running keeps its (earlier) start."""
    table = AlertDeadline.__table__
    dialect_insert = postgresql.insert if is_postgres(session) else sqlite.insert
    session.execute(dialect_insert(table).on_conflict_do_nothing(), [_deadline_params(write)])


def stop_deadline(session: Session, rule: str, subject_id: int) -> None:
    session.execute(
        delete(AlertDeadline).where(AlertDeadline.rule == rule, AlertDeadline.subject_id == subject_id)
    )


def _deadline_params(write: DeadlineWrite) -> dict:
    return {
        "rule": write.rule, "subject_id": write.subject_id, "resident_id": write.resident_id,
        "device_id": write.device_id, "started_at": write.started_at, "due_at": write.due_at,
    }  # fmt: skip


def as_write(
    change: DeadlineChange, subject_id: int, resident_id: int, device_id: int | None
) -> DeadlineWrite:
    assert change.due is not None
    return DeadlineWrite(change.rule, subject_id, resident_id, device_id, change.started, change.due)


@dataclass
class SweepReport:
    due: int = 0
    raised: int = 0
    repeats: int = 0
    rescheduled: int = 0


def sweep_deadlines(session: Session, now: dt.datetime, rules_of: object, limit: int = 1000) -> SweepReport:
    """Raise the alerts of clocks that ran out. Reads only rows with ``due_at <= now`` (index).

    An absence clock is written lazily by the hot path (only when it moved by more than the
    slack), so before raising, the latest activity is checked and a clock that should have been
    later is moved instead of raised. ``rules_of(session, resident_id)`` gives the resident's rules.
    """
    report = SweepReport()
    rows = session.scalars(
        select(AlertDeadline)
        .where(AlertDeadline.due_at <= now)
        .order_by(AlertDeadline.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)  # a second sweeper takes other clocks
    ).all()
    for deadline in rows:
        report.due += 1
        rules: RuleSet = rules_of(session, deadline.resident_id)  # type: ignore[operator]
        rule = rules.rule(deadline.rule)
        if rule is None or not rule.enabled or not _still_watched(session, rule, deadline):
            session.delete(deadline)
            continue
        if rule.kind is RuleKind.absence:
            latest = _latest_activity(session, rule, deadline)
            if latest is not None and latest + rule.wait > now:
                deadline.started_at = latest
                deadline.due_at = latest + rule.wait
                report.rescheduled += 1
                continue
        detail = {"since": deadline.started_at.isoformat(), "due": deadline.due_at.isoformat()}
        _, new = record_hit(
            session,
            deadline.resident_id,
            rule,
            rules,
            deadline.due_at,
            now,
            device_id=deadline.device_id,
            detail=detail,
        )
        report.raised += int(new)
        report.repeats += int(not new)
        session.delete(deadline)
    return report


def _placed_with(resident_id: int) -> ColumnElement[bool]:
    """The placements (``device_binding`` rows) of a resident's devices: hers, or her household's."""
    household = select(Resident.household_id).where(Resident.id == resident_id).scalar_subquery()
    return or_(
        DeviceBinding.resident_id == resident_id,
        and_(DeviceBinding.household_id.is_not(None), DeviceBinding.household_id == household),
    )


def _still_watched(session: Session, rule: Rule, deadline: AlertDeadline) -> bool:
    """Whether the clock still watches the resident when it runs out: for a device's silence, that
    device placed with them; otherwise any device placed with them, and for a rule about elders
    living alone, the resident still living alone. A device retired or taken away, an elder whose
    devices all went (moved into a home) or who no longer lives alone, is no news for anybody:
    the clock is dropped instead of raised."""
    at = deadline.due_at
    placed = select(DeviceBinding.id).where(
        _placed_with(deadline.resident_id),
        DeviceBinding.valid_from <= at,
        or_(DeviceBinding.valid_to.is_(None), DeviceBinding.valid_to > at),
    )
    if rule.kind is RuleKind.absence and not rule.activity:
        placed = placed.where(DeviceBinding.device_id == deadline.device_id)
    if session.scalar(placed.limit(1)) is None:
        return False
    if rule.kind is RuleKind.absence and rule.living_alone_only:
        living = session.scalar(
            select(Resident.living_arrangement).where(Resident.id == deadline.resident_id)
        )
        return living == LivingArrangement.alone
    return True


def _latest_activity(session: Session, rule: Rule, deadline: AlertDeadline) -> dt.datetime | None:
    if not rule.activity:  # a device's silence: the device's own last-seen time
        if deadline.device_id is None:
            return None
        return session.scalar(select(Device.last_seen_at).where(Device.id == deadline.device_id))
    # Only events a device sent while it was placed with her: a radar moved to another home
    # reports someone else's activity, which must not keep her clock from running out.
    placements = (
        select(DeviceBinding.device_id, DeviceBinding.valid_from, DeviceBinding.valid_to)
        .where(_placed_with(deadline.resident_id))
        .subquery()
    )
    return session.scalar(
        select(func.max(DeviceEvent.measured_at))
        .join(
            placements,
            and_(
                placements.c.device_id == DeviceEvent.device_id,
                placements.c.valid_from <= DeviceEvent.measured_at,
                or_(placements.c.valid_to.is_(None), placements.c.valid_to > DeviceEvent.measured_at),
            ),
        )
        .where(
            DeviceEvent.kind.in_(rule.activity),
            DeviceEvent.measured_at > deadline.started_at,
        )
    )


# ---- inbox ----------------------------------------------------------------------------------


def inbox_of(
    session: Session, user_id: int, *, now: dt.datetime, after_id: int = 0, limit: int = 50
) -> list[InboxItem]:
    """The user's inbox items they are still entitled to (``entitled_clause``), newest first, or
    those after ``after_id`` oldest first (the live stream). Not audited: see ``read_inbox``."""
    return [item for item, _resident in _inbox_rows(session, user_id, now, after_id, limit)]


def read_inbox(
    session: Session, actor: Actor, now: dt.datetime, *, after_id: int = 0, limit: int = 50
) -> list[InboxItem]:
    """``inbox_of`` for the signed-in actor, audited: each item names a resident and an alert's
    kind (sensor data), so the read writes one row per resident it shows, as a responder."""
    if actor.user_id is None:
        return []
    rows = _inbox_rows(session, actor.user_id, now, after_id, limit)
    for resident_id in sorted({resident_id for _item, resident_id in rows}):
        record_access(
            session, actor, action="read", resource_type="inbox", resident_id=resident_id,
            field_group="sensor", purpose="care", reason=RESPONDER_REASON, at=now,
        )  # fmt: skip
    return [item for item, _resident in rows]


def _inbox_rows(
    session: Session, user_id: int, now: dt.datetime, after_id: int, limit: int
) -> list[tuple[InboxItem, int]]:
    query = (
        select(InboxItem, Alert.resident_id)
        .join(Alert, Alert.id == InboxItem.alert_id)
        .where(InboxItem.user_id == user_id, entitled_clause(now))
    )
    if after_id:
        query = query.where(InboxItem.id > after_id).order_by(InboxItem.id)
    else:
        query = query.order_by(InboxItem.id.desc())
    return [(item, resident_id) for item, resident_id in session.execute(query.limit(limit))]


def mark_read(session: Session, user_id: int, item_id: int, now: dt.datetime) -> InboxItem:
    item = session.scalar(
        select(InboxItem)
        .join(Alert, Alert.id == InboxItem.alert_id)
        .where(InboxItem.id == item_id, InboxItem.user_id == user_id, entitled_clause(now))
    )
    if item is None:
        raise NotFound("inbox.not_found", "消息不存在 (no such message)")
    if item.read_at is None:
        item.read_at = now
    return item


def session_in_force(session: Session, credential_id: int | None, now: dt.datetime) -> bool:
    """Whether the credential a long-lived request (the inbox stream) signed in with still holds:
    not revoked (signed out), not expired, its account active."""
    if credential_id is None:
        return False
    return (
        session.scalar(
            select(AuthCredential.id)
            .join(User, User.id == AuthCredential.user_id)
            .where(
                AuthCredential.id == credential_id,
                AuthCredential.revoked_at.is_(None),
                AuthCredential.expires_at > now,
                User.active.is_(True),
            )
        )
        is not None
    )
