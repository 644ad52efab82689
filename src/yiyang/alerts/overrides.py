"""Administrators' changes to the district rule set, for a tier or one resident."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yiyang.alerts.models import AlertRuleOverride, OverrideScope
from yiyang.alerts.rules import RulesInvalid, apply_overrides, compile_rules, default_document
from yiyang.errors import Invalid, NotFound


def add_override(
    session: Session,
    scope: OverrideScope,
    rule: str,
    params: dict[str, Any],
    *,
    tier: str | None,
    resident_id: int | None,
    by: int | None,
    now: dt.datetime,
) -> AlertRuleOverride:
    """Check the override compiles against the district rules, then keep it."""
    if scope is OverrideScope.tier and (tier is None or resident_id is not None):
        raise Invalid("alert_rule.scope", "按分级设置需给出分级 (a tier override names a tier only)")
    if scope is OverrideScope.resident and (resident_id is None or tier is not None):
        raise Invalid("alert_rule.scope", "按居民设置需给出居民 (a resident override names a resident only)")
    try:
        compile_rules(apply_overrides(default_document(), [{"rule": rule, "params": params}]))
    except (RulesInvalid, TypeError, ValueError) as error:
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
    _invalidate()
    return override


def remove_override(session: Session, override_id: int) -> None:
    override = session.get(AlertRuleOverride, override_id)
    if override is None:
        raise NotFound("alert_rule.not_found", "规则设置不存在 (no such override)")
    session.delete(override)
    _invalidate()


def list_overrides(session: Session) -> list[AlertRuleOverride]:
    return list(session.scalars(select(AlertRuleOverride).order_by(AlertRuleOverride.id)))


def _invalidate() -> None:
    from yiyang.alerts.engine import shared_book

    shared_book().invalidate()  # this process at once; other processes by their version check
