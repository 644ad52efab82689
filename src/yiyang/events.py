"""In-process domain events: one domain reacts to another without importing it.

A publisher (the import, a merge) states what happened; handlers registered by the
composition root (the app, the CLI) run inside the publisher's transaction, so a change and
its consequences commit together. Handlers are registered, not discovered: a benchmark or a
test that builds no app runs the bare pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

Handler = Callable[[Session, Any], None]
ManyHandler = Callable[[Session, Sequence[Any]], None]
_handlers: dict[type, list[tuple[Any, bool]]] = {}  # event type -> (handler, takes a list)


@dataclass(frozen=True, slots=True)
class ResidentsChanged:
    """Facts of these residents changed (an import, a merge or unmerge)."""

    resident_ids: frozenset[int]
    cause: str  # "import", "merge", "unmerge"


@dataclass(frozen=True, slots=True)
class ResidentsMerged:
    """``merged_id`` was folded into ``survivor_id``; domains holding rows of their own about
    residents move them and note what they moved in ``merge.moved`` (a ResidentMerge)."""

    merge: Any


@dataclass(frozen=True, slots=True)
class ResidentsUnmerged:
    """A merge was undone: move back what ``merge.moved`` says was moved."""

    merge: Any


@dataclass(frozen=True, slots=True)
class WorkItemCompleted:
    """A care work item was closed (done or failed) with its outcome; ``source_type``/``source_id``
    name what raised it (an alert, a care plan, a referral), so that domain can close its loop."""

    work_item_id: int
    resident_id: int
    kind: str
    status: str  # done | failed
    source_type: str | None
    source_id: int | None
    outcome: dict[str, Any]
    completed_at: Any  # datetime


# -- service orders and the time bank -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceOrderCompleted:
    """A service order was completed with proof; the time bank credits a volunteer provider."""

    order_id: int
    resident_id: int
    service_code: str
    volunteer_user_id: int | None  # the provider when it is a volunteer, else None
    minutes: int  # time on site as recorded in the proof
    completed_at: Any


@dataclass(frozen=True, slots=True)
class VolunteerProfileChanged:
    """A volunteer's profile was saved; the order domain keeps its provider row in step."""

    user_id: int
    area_id: int
    skills: tuple[str, ...]
    availability: tuple[str, ...]
    active: bool


# -- alerts -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """An alert was raised for a resident (not a repeat of an open one)."""

    alert_id: int
    resident_id: int
    kind: str  # the rule's code: fall, sos, bp_urgent, no_activity ...
    severity: str
    raised_at: Any  # datetime, UTC
    tier_fact: bool  # whether the tier engine counts it (a recent fall does)


@dataclass(frozen=True, slots=True)
class AlertResolved:
    """An alert was closed with an outcome (``alerts.service.resolve``)."""

    alert_id: int
    resident_id: int
    kind: str
    outcome: str
    resolved_at: Any


def subscribe(event_type: type, handler: Handler) -> None:
    _add(event_type, handler, many=False)


def subscribe_many(event_type: type, handler: ManyHandler) -> None:
    """A handler that takes the events of one ``publish_all`` in one call (a list), so a batch
    of a few hundred alerts costs it a few statements, not a few hundred times a few."""
    _add(event_type, handler, many=True)


def _add(event_type: type, handler: Any, *, many: bool) -> None:
    handlers = _handlers.setdefault(event_type, [])
    if (handler, many) not in handlers:
        handlers.append((handler, many))


def unsubscribe_all() -> None:
    _handlers.clear()


def publish(session: Session, event: Any) -> None:
    publish_all(session, [event])


def publish_all(session: Session, events: Sequence[Any]) -> None:
    """Publish events of one type, in order: each handler, in the order subscribed, gets them
    all (one call for a ``subscribe_many`` handler, one call per event for the others)."""
    if not events:
        return
    for handler, many in _handlers.get(type(events[0]), ()):
        if many:
            handler(session, events)
        else:
            for event in events:
                handler(session, event)


def install_handlers() -> None:
    """The reactions the whole system runs with; called by the app and the CLI at start."""
    from yiyang.assessments.service import on_residents_merged, on_residents_unmerged
    from yiyang.tiers.service import on_alert_raised, on_residents_changed

    subscribe(ResidentsMerged, on_residents_merged)
    subscribe(ResidentsUnmerged, on_residents_unmerged)
    subscribe(ResidentsChanged, on_residents_changed)
    from yiyang.access import consent

    subscribe(ResidentsMerged, consent.on_residents_merged)  # consent decisions follow the person
    subscribe(ResidentsUnmerged, consent.on_residents_unmerged)
    from yiyang.care import merges as care_merges

    subscribe(ResidentsMerged, care_merges.on_residents_merged)  # contracts, scope and work follow too
    subscribe(ResidentsUnmerged, care_merges.on_residents_unmerged)
    from yiyang.timebank import service as timebank

    subscribe(ResidentsMerged, timebank.on_residents_merged)  # pairings follow the elder
    subscribe(ResidentsUnmerged, timebank.on_residents_unmerged)
    from yiyang.devices import service as devices

    subscribe(ResidentsMerged, devices.on_residents_merged)  # her devices' readings reach her
    subscribe(ResidentsUnmerged, devices.on_residents_unmerged)
    from yiyang.care.orders.service import on_volunteer_profile_changed
    from yiyang.timebank.service import on_service_order_completed

    subscribe(VolunteerProfileChanged, on_volunteer_profile_changed)
    subscribe(ServiceOrderCompleted, on_service_order_completed)
    subscribe(AlertRaised, on_alert_raised)
    from yiyang.alerts.service import on_work_item_completed
    from yiyang.care.service import on_alerts_raised as visits_for_alerts

    subscribe_many(AlertRaised, visits_for_alerts)  # an alert becomes a home visit (care)
    subscribe(WorkItemCompleted, on_work_item_completed)  # the visit's outcome closes the alert
