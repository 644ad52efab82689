"""Who may see what of a resident: scope (relationship) x consent, checked in services and audited.

This is the one entry point every domain uses for resident data:

- ``authorize(session, actor, resident_id, category=..., what=...)`` before reading or writing one
  resident's data of a category. It audits the attempt (allowed or denied) and raises
  ``Forbidden`` (``access.scope`` / ``access.consent`` / ``access.role``) when refused.
- ``visible_residents(session, actor, category=...)`` for list queries: a boolean SQL clause over
  ``resident.id`` that the service adds to its ``WHERE``, so lists are filtered in the query.

Scope comes from relationships, not from the route: a care relationship (a family-doctor
contract, a station's service, a volunteer pairing) is a ``resident_relationship`` row kept in
step by the domain that owns the relationship (``care``, ``timebank``); jurisdictional roles
read the resident's grid, community, street or district.

First slice: the categories, purposes and signatures; relationships and consent come next.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ColumnElement, true
from sqlalchemy.orm import Session

from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.models import AuditOutcome
from yiyang.errors import Forbidden


class DataCategory(enum.StrEnum):
    """What kind of resident data an access touches (the consent categories, plus identity)."""

    identity = "identity"  # 基本信息: name, sex, age, address, contact
    clinical = "clinical"  # 健康档案: conditions, observations, assessments, tiers, care plans
    sensor = "sensor"  # 感知数据: devices, readings, sensor alerts
    civil_affairs = "civil_affairs"  # 民政信息: subsidies, disability certificate, living arrangement
    care_services = "care_services"  # 照护服务: work items, service orders, referrals, visits


class Purpose(enum.StrEnum):
    care = "care"  # 照护: looking after this resident
    statistics = "statistics"  # 统计: aggregates and indicators


def authorize(
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    category: DataCategory,
    what: str,
    purpose: Purpose = Purpose.care,
    action: str = "read",
    now: dt.datetime | None = None,
) -> None:
    """Allow (and audit) or refuse (audit, then raise ``Forbidden``) one access to one resident."""
    if actor.user_id is None and not actor.username.startswith("system:"):
        record_access(
            session, actor, action=action, resource_type=what, resident_id=resident_id,
            field_group=category.value, purpose=purpose.value, outcome=AuditOutcome.denied, at=now,
        )  # fmt: skip
        raise Forbidden("access.role", "无权访问该居民信息 (no access to this resident's data)")
    record_access(
        session, actor, action=action, resource_type=what, resident_id=resident_id,
        field_group=category.value, purpose=purpose.value, at=now,
    )  # fmt: skip


def visible_residents(
    session: Session,
    actor: Actor,
    *,
    category: DataCategory,
    purpose: Purpose = Purpose.care,
    now: dt.datetime | None = None,
) -> ColumnElement[bool]:
    """A clause over ``resident.id`` selecting the residents this actor may list for this purpose."""
    return true()
