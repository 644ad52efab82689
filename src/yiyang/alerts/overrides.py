"""Changes to the district rule set: for a tier (administrators) or for one resident (their
family-doctor team).

District and tier overrides are configuration, the administrators'. One resident's thresholds are
a clinical decision about that resident's sensor data: a family doctor, nurse or health manager
whose team the access policy puts the resident in scope of (``policy.authorize``, category
``sensor``, audited) sets or removes them; a break-the-glass opening does not count for a change.
A list shows district and tier overrides, and resident overrides only for residents the caller may
see (``visible_residents``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from yiyang import cache_version
from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.access.roles import CLINICAL_TEAM_ROLES
from yiyang.alerts.models import AlertRuleOverride, OverrideScope
from yiyang.alerts.rules import RulesInvalid, apply_overrides, compile_rules, default_document
from yiyang.errors import Forbidden, Invalid, NotFound
from yiyang.residents.models import Resident


def check_may_change(
    session: Session, actor: Actor, scope: OverrideScope, resident_id: int | None, now: dt.datetime
) -> None:
    """Refuse (``Forbidden``) an actor who may not change rules at this scope; a resident's own
    rules also pass the access policy for that resident (audited)."""
    if scope is not OverrideScope.resident or resident_id is None:
        if not actor.is_admin:
            raise Forbidden(
                "alert_rule.forbidden", "仅管理员可修改告警规则 (only administrators change alert rules)"
            )
        return
    # The clinician's grant decides scope and consent, not another role the person holds (station
    # staff at a home that serves the resident, a family member of someone else).
    clinician = actor.acting_as(CLINICAL_TEAM_ROLES)
    if not clinician.grants:
        raise Forbidden(
            "alert_rule.forbidden",
            "居民的告警规则由其家庭医生团队修改 (a resident's alert rules are changed by their family-doctor team)",
        )
    # A threshold outlives an emergency: a break-the-glass opening lets a clinician read and act
    # for the moment, not change what the resident's own team decided (``glass=False``).
    policy.authorize(
        session, clinician, resident_id, category=policy.DataCategory.sensor, what="alert_rule_override",
        action="update", now=now, glass=False,
    )  # fmt: skip


def add_override(
    session: Session,
    actor: Actor,
    scope: OverrideScope,
    rule: str,
    params: dict[str, Any],
    *,
    tier: str | None,
    resident_id: int | None,
    by: int | None,
    now: dt.datetime,
) -> AlertRuleOverride:
    """Check the actor may, and that the override compiles against the district rules, then keep it."""
    if scope is OverrideScope.tier and (tier is None or resident_id is not None):
        raise Invalid("alert_rule.scope", "按分级设置需给出分级 (a tier override names a tier only)")
    if scope is OverrideScope.resident and (resident_id is None or tier is not None):
        raise Invalid("alert_rule.scope", "按居民设置需给出居民 (a resident override names a resident only)")
    check_may_change(session, actor, scope, resident_id, now)
    try:
        compile_rules(apply_overrides(default_document(), [{"rule": rule, "params": params}]))
    except (RulesInvalid, TypeError, ValueError, OverflowError) as error:  # 1e308 hours overflow a timedelta
        raise Invalid("alert_rule.invalid", f"规则设置无效 ({error})") from None
    override = AlertRuleOverride(
        scope=scope,
        tier=tier,
        resident_id=resident_id,
        rule=rule,
        params=params,
        changed_by=by,
        changed_at=now,
    )
    session.add(override)
    session.flush()
    cache_version.bump(session, cache_version.OVERRIDES)  # every rule book drops its rules
    return override


def remove_override(session: Session, actor: Actor, override_id: int, now: dt.datetime) -> None:
    override = session.get(AlertRuleOverride, override_id)
    if override is None:
        raise NotFound("alert_rule.not_found", "规则设置不存在 (no such override)")
    check_may_change(session, actor, override.scope, override.resident_id, now)
    session.delete(override)
    cache_version.bump(session, cache_version.OVERRIDES)  # every rule book drops its rules


def list_overrides(session: Session, visible: ColumnElement[bool]) -> list[AlertRuleOverride]:
    """District and tier overrides, and those of the residents ``visible`` selects."""
    return list(
        session.scalars(
            select(AlertRuleOverride)
            .where(
                or_(
                    AlertRuleOverride.resident_id.is_(None),
                    AlertRuleOverride.resident_id.in_(select(Resident.id).where(visible)),
                )
            )
            .order_by(AlertRuleOverride.id)
        )
    )
