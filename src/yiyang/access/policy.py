"""Who may see what of a resident: scope (relationship or jurisdiction) x consent, audited.

This is the one entry point every domain uses for resident data:

- ``authorize(session, actor, resident_id, category=..., what=...)`` before reading or writing one
  resident's data of a category. It audits the attempt (allowed or denied) and raises
  ``Forbidden`` (``access.role`` / ``access.scope`` / ``access.consent``) when refused. A refusal
  is written so that it outlives the refused request's rollback (see ``access/denials.py``).
- ``visible_residents(session, actor, category=...)`` for list queries: a boolean SQL clause over
  ``resident.id`` that the service adds to its ``WHERE``, so lists are filtered in the query.
- ``authorize_profile`` for a profile: which field groups this actor sees of this resident
  (field minimisation), audited as one read. The groups come from the grants whose scope covers
  the resident, each for the categories consent allows it: holding a resident's role and a
  volunteer's shows another resident only what the volunteer sees.
- ``listed_groups`` for a list: the identity groups shown of each listed resident, by the same rule.

What each role may do is data, in one place: ``SCOPES`` (role -> how its scope is drawn, which
categories it may touch for which purpose, which consent recipient class it is, which field
groups it sees). Consent is per resident, category, recipient class and purpose; where a resident
recorded no decision, ``IMPLIED_CONSENT`` (configurable, ``YIYANG_CONSENT_IMPLIED``) decides.
Clinical roles may break the glass: open one resident outside their scope for a limited time,
with a reason, every use audited as ``break_glass`` (``access/break_glass.py``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, or_, select, true
from sqlalchemy.orm import Session

from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.audit import record_access
from yiyang.access.consent_models import BreakGlassAccess, Consent, ConsentDecision
from yiyang.access.denials import queue_denial
from yiyang.access.models import AuditAction, RelationshipKind, ResidentRelationship
from yiyang.access.roles import Role
from yiyang.db import utcnow
from yiyang.errors import Forbidden, NotFound
from yiyang.geo.models import Area
from yiyang.residents.models import Resident


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


class RecipientClass(enum.StrEnum):
    """Who receives the data, as consent names them (授权对象)."""

    health = "health"  # 卫健: family-doctor teams, health centres, health officers
    civil_affairs = "civil_affairs"  # 民政: stations, street offices, grid workers, civil-affairs officers
    social = "social"  # 志愿者与社会组织: volunteers and social organisations
    own = "own"  # the resident, or a family member they authorised: no consent needed


class Draw(enum.StrEnum):
    """Where a role's set of residents comes from."""

    contract = "contract"  # resident_relationship kind contract with the grant's organisation (the team)
    service = "service"  # resident_relationship kind service with the grant's organisation (the station)
    pairing = "pairing"  # resident_relationship kind pairing with the user
    area = "area"  # residents living in the grant's area subtree (none: the whole deployment)
    own = "own"  # the resident's own record
    acts_for = "acts_for"  # residents who authorised this family member
    nothing = "nothing"


class FieldGroup(enum.StrEnum):
    """Field groups of a profile (字段分组), each under one consent category."""

    contact = "contact"  # name, sex, age, address, phone, community, grid
    registry = "registry"  # ID number (masked), birth date, insurance, sources, history
    living = "living"  # living arrangement, capability level: what a grid worker needs
    civil_affairs = "civil_affairs"  # dibao, tekun, disability certificate
    clinical = "clinical"  # conditions, observations, assessments, tiers, care plans
    sensor = "sensor"  # devices and readings
    care_services = "care_services"  # work items and service orders


GROUP_CATEGORY: dict[FieldGroup, DataCategory] = {
    FieldGroup.contact: DataCategory.identity,
    FieldGroup.registry: DataCategory.identity,
    FieldGroup.living: DataCategory.identity,
    FieldGroup.civil_affairs: DataCategory.civil_affairs,
    FieldGroup.clinical: DataCategory.clinical,
    FieldGroup.sensor: DataCategory.sensor,
    FieldGroup.care_services: DataCategory.care_services,
}

# Profile attributes (residents/precedence.py) by field group.
ATTRIBUTE_GROUPS: dict[str, FieldGroup] = {
    "name": FieldGroup.contact,
    "sex": FieldGroup.contact,
    "phone": FieldGroup.contact,
    "address": FieldGroup.contact,
    "community_code": FieldGroup.contact,
    "grid_code": FieldGroup.contact,
    "birth_date": FieldGroup.registry,
    "id_number": FieldGroup.registry,
    "insurance_type": FieldGroup.registry,
    "living_arrangement": FieldGroup.living,
    "capability_level": FieldGroup.living,
    "dibao": FieldGroup.civil_affairs,
    "tekun": FieldGroup.civil_affairs,
    "disability_cert_grade": FieldGroup.civil_affairs,
}


@dataclass(frozen=True, slots=True)
class RoleScope:
    draw: Draw
    recipient: RecipientClass
    care: frozenset[DataCategory]  # categories it may touch, one resident at a time or in lists
    statistics: frozenset[DataCategory]  # categories it may count in aggregates
    groups: frozenset[FieldGroup]  # profile field groups it sees (minimisation)
    break_glass: bool = False  # may open a resident outside scope in an emergency
    registry: bool = False  # may work the registry: link reviews, merges, import runs
    reviews_break_glass: bool = False  # reviews break-the-glass openings in its area

    def categories(self, purpose: Purpose) -> frozenset[DataCategory]:
        return self.care if purpose is Purpose.care else self.statistics


def _c(*categories: DataCategory) -> frozenset[DataCategory]:
    return frozenset(categories)


def _g(*groups: FieldGroup) -> frozenset[FieldGroup]:
    return frozenset(groups)


C, G = DataCategory, FieldGroup
ALL_CATEGORIES = frozenset(DataCategory)
_CLINICAL_TEAM = RoleScope(
    Draw.contract, RecipientClass.health, care=ALL_CATEGORIES, statistics=_c(),
    groups=_g(G.contact, G.registry, G.living, G.civil_affairs, G.clinical, G.sensor, G.care_services),
    break_glass=True,
)  # fmt: skip

# The scope table: one row per role. Categories outside a row are refused whatever the consent;
# categories inside it still need the resident's consent for the row's recipient class.
SCOPES: dict[Role, RoleScope] = {
    Role.family_doctor: _CLINICAL_TEAM,
    Role.nurse: _CLINICAL_TEAM,
    Role.health_manager: _CLINICAL_TEAM,
    Role.station_staff: RoleScope(
        Draw.service, RecipientClass.civil_affairs,
        care=_c(C.identity, C.care_services, C.civil_affairs, C.clinical, C.sensor), statistics=_c(),
        groups=_g(G.contact, G.living, G.civil_affairs, G.clinical, G.sensor, G.care_services),
    ),
    # A social organisation's people (社会组织) serve like a station's, but consent names them
    # with volunteers: the social class, which needs the resident's explicit permit.
    Role.social_worker: RoleScope(
        Draw.service, RecipientClass.social, care=_c(C.identity, C.care_services), statistics=_c(),
        groups=_g(G.contact, G.living, G.care_services),
    ),
    Role.volunteer: RoleScope(
        Draw.pairing, RecipientClass.social, care=_c(C.identity, C.care_services), statistics=_c(),
        groups=_g(G.contact, G.care_services),
    ),
    Role.grid_worker: RoleScope(
        Draw.area, RecipientClass.civil_affairs, care=_c(C.identity, C.care_services), statistics=_c(),
        groups=_g(G.contact, G.living, G.care_services),
    ),
    Role.civil_affairs_officer: RoleScope(
        Draw.area, RecipientClass.civil_affairs,
        care=_c(C.identity, C.civil_affairs, C.care_services),
        statistics=_c(C.identity, C.civil_affairs, C.care_services),
        groups=_g(G.contact, G.registry, G.living, G.civil_affairs, G.care_services),
        registry=True, reviews_break_glass=True,
    ),
    Role.health_officer: RoleScope(
        Draw.area, RecipientClass.health, care=_c(C.identity, C.clinical),
        statistics=_c(C.identity, C.clinical, C.sensor, C.care_services),
        groups=_g(G.contact, G.registry, G.living, G.clinical),
        registry=True, reviews_break_glass=True,
    ),
    # Configuration, not clinical detail: identity only, for keeping the registry (reviews, merges).
    Role.district_admin: RoleScope(
        Draw.area, RecipientClass.health, care=_c(C.identity), statistics=_c(C.identity),
        groups=_g(G.contact, G.registry), registry=True, reviews_break_glass=True,
    ),
    Role.resident: RoleScope(
        Draw.own, RecipientClass.own, care=ALL_CATEGORIES, statistics=_c(), groups=frozenset(FieldGroup)
    ),
    Role.family_member: RoleScope(
        Draw.acts_for, RecipientClass.own, care=ALL_CATEGORIES, statistics=_c(), groups=frozenset(FieldGroup)
    ),
}  # fmt: skip

ConsentKey = tuple[RecipientClass, DataCategory, Purpose]


def _implied(
    *rows: tuple[RecipientClass, Iterable[DataCategory], Iterable[Purpose]],
) -> frozenset[ConsentKey]:
    return frozenset((r, c, p) for r, categories, purposes in rows for c in categories for p in purposes)


# Where a resident has recorded no decision. 国家基本公共卫生服务规范 (第三版): the contracted team's
# basic public health care, and health statistics, come with the family-doctor contract; the civil-
# affairs side's own statutory data (identity, subsidies, services) is theirs to use; anything
# crossing sides (health data to civil affairs, anything to volunteers and social organisations)
# needs the resident's explicit consent. Configurable: YIYANG_CONSENT_IMPLIED.
DEFAULT_IMPLIED_CONSENT: frozenset[ConsentKey] = _implied(
    (RecipientClass.health, (C.identity, C.clinical, C.sensor, C.care_services), (Purpose.care, Purpose.statistics)),
    (RecipientClass.civil_affairs, (C.identity, C.civil_affairs, C.care_services), (Purpose.care, Purpose.statistics)),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PolicySettings:
    implied_consent: frozenset[ConsentKey] = DEFAULT_IMPLIED_CONSENT
    break_glass_duration: dt.timedelta = dt.timedelta(hours=4)
    enforce: bool = True  # False only in benchmarks measuring the cost of the checks


_settings = PolicySettings()


def parse_implied_consent(text: str) -> frozenset[ConsentKey]:
    """``recipient:category:purpose`` triples, comma-separated (``*`` for any category or purpose)."""
    keys: set[ConsentKey] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        pieces = part.split(":")
        if len(pieces) != 3:
            raise ValueError(f"consent_implied entry {part!r} is not recipient:category:purpose")
        recipient = RecipientClass(pieces[0])
        categories = list(DataCategory) if pieces[1] == "*" else [DataCategory(pieces[1])]
        purposes = list(Purpose) if pieces[2] == "*" else [Purpose(pieces[2])]
        keys.update((recipient, c, p) for c in categories for p in purposes)
    return frozenset(keys)


def configure(settings: Any = None, **overrides: Any) -> PolicySettings:
    """Set the policy from the app's settings (consent defaults, break-glass duration); returns the old."""
    global _settings
    previous = _settings
    values: dict[str, Any] = {}
    if settings is not None:
        if getattr(settings, "consent_implied", None):
            values["implied_consent"] = parse_implied_consent(settings.consent_implied)
        values["break_glass_duration"] = dt.timedelta(hours=settings.break_glass_hours)
    values.update(overrides)
    _settings = PolicySettings(**{**_as_dict(PolicySettings()), **values})
    return previous


def restore(previous: PolicySettings) -> None:
    global _settings
    _settings = previous


def current_settings() -> PolicySettings:
    return _settings


def _as_dict(value: PolicySettings) -> dict[str, Any]:
    return {name: getattr(value, name) for name in PolicySettings.__slots__}


# --- clauses ---------------------------------------------------------------------------------


def is_system(actor: Actor) -> bool:
    """Timed jobs and commands: no user, named ``system:<job>``; audited, not scoped."""
    return actor.user_id is None and actor.username.startswith("system:")


def _in_force(model: Any, now: dt.datetime, end: Any) -> ColumnElement[bool]:
    return and_(
        model.valid_from <= now,
        or_(model.valid_until.is_(None), model.valid_until > now),
        or_(end.is_(None), end > now),
    )


def _relationship(kind: RelationshipKind, now: dt.datetime, **who: int) -> ColumnElement[bool]:
    rel = ResidentRelationship
    conditions = [rel.kind == kind, _in_force(rel, now, rel.ended_at)]
    conditions += [getattr(rel, column) == value for column, value in who.items()]
    return Resident.id.in_(select(rel.resident_id).where(*conditions))


def _area_clause(session: Session, area_id: int | None) -> ColumnElement[bool]:
    if area_id is None:
        return true()  # an administrator without an area: the whole deployment
    area = session.get(Area, area_id)
    if area is None:
        return false()
    subtree = select(Area.id).where(area.subtree())
    return or_(Resident.grid_id.in_(subtree), Resident.community_id.in_(subtree))


def scope_clause(session: Session, actor: Actor, grant: RoleGrant, now: dt.datetime) -> ColumnElement[bool]:
    """The residents one grant reaches, as a clause over ``resident``."""
    draw = SCOPES[grant.role].draw
    if draw is Draw.contract or draw is Draw.service:
        if grant.organisation_id is None:
            return false()
        kind = RelationshipKind.contract if draw is Draw.contract else RelationshipKind.service
        return _relationship(kind, now, organisation_id=grant.organisation_id)
    if draw is Draw.pairing:
        return _relationship(RelationshipKind.pairing, now, user_id=actor.user_id or 0)
    if draw is Draw.area:
        return _area_clause(session, grant.area_id)
    if draw is Draw.own:
        return Resident.id == actor.resident_id if actor.resident_id else false()
    if draw is Draw.acts_for:
        return Resident.id.in_(actor.acts_for) if actor.acts_for else false()
    return false()


def consent_clause(
    recipient: RecipientClass, category: DataCategory, purpose: Purpose, now: dt.datetime
) -> ColumnElement[bool]:
    """Whether the resident's consent (or, without a decision, the default) lets this sharing happen.

    A new decision ends the one in force, so at most one row is in force per key.
    """
    if recipient is RecipientClass.own:
        return true()
    implied = (recipient, category, purpose) in _settings.implied_consent
    decision = ConsentDecision.deny if implied else ConsentDecision.permit
    found = exists().where(
        Consent.resident_id == Resident.id,
        Consent.category == category.value,
        Consent.recipient_class == recipient.value,
        Consent.purpose == purpose.value,
        Consent.decision == decision,
        _in_force(Consent, now, Consent.revoked_at),
    )
    return ~found if implied else found


def visible_residents(
    session: Session,
    actor: Actor,
    *,
    category: DataCategory,
    purpose: Purpose = Purpose.care,
    now: dt.datetime | None = None,
) -> ColumnElement[bool]:
    """A clause over ``resident.id`` selecting the residents this actor may list for this purpose."""
    if is_system(actor) or not _settings.enforce:
        return true()
    now = now or utcnow()
    clauses = []
    for grant in actor.grants:
        scope = SCOPES[grant.role]
        if category in scope.categories(purpose):
            clauses.append(
                and_(
                    scope_clause(session, actor, grant, now),
                    consent_clause(scope.recipient, category, purpose, now),
                )
            )
    return or_(*clauses) if clauses else false()


def named_residents(
    session: Session, actor: Actor, *, category: DataCategory, now: dt.datetime | None = None
) -> ColumnElement[bool]:
    """Residents a list of ``category`` data may name: that category and their identity both
    visible, as a profile read needs identity (docs/care.md: lists that name their residents)."""
    return and_(
        visible_residents(session, actor, category=category, now=now),
        visible_residents(session, actor, category=DataCategory.identity, now=now),
    )


# --- one resident ----------------------------------------------------------------------------

DENIALS = {
    "access.role": "您的角色无权访问此类信息 (your role may not access this kind of data)",
    "access.scope": "该居民不在您的服务范围内 (this resident is outside your scope)",
    "access.consent": "居民未同意向您所在机构提供此类信息 (the resident has not consented to share this data with you)",
}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: frozenset[DataCategory]
    grant: RoleGrant | None  # the grant relied on (the first one that allowed the first category)
    code: str  # why the first category asked for was refused (or "" when it was allowed)
    break_glass_id: int | None = None
    # Per grant, the categories it allows for this resident (in scope, consented; or the glass's).
    by_grant: tuple[tuple[RoleGrant, frozenset[DataCategory]], ...] = ()

    def shown_groups(self) -> frozenset[FieldGroup]:
        """The field groups of the grants that reach this resident, each for the categories it allows:
        never one grant's groups for a resident only another grant reaches."""
        return frozenset(
            group
            for grant, categories in self.by_grant
            for group in SCOPES[grant.role].groups
            if GROUP_CATEGORY[group] in categories
        )


# One resident at a time: statements built once with bound parameters (building SQLAlchemy
# expressions per request costs more than running them), the decision taken in Python on the
# few rows they return. It must agree with the clauses above; the access matrix test checks both.
_RELATIONSHIP_IN_FORCE = and_(
    ResidentRelationship.resident_id == bindparam("resident_id"),
    ResidentRelationship.kind == bindparam("kind"),
    ResidentRelationship.valid_from <= bindparam("now"),
    or_(ResidentRelationship.valid_until.is_(None), ResidentRelationship.valid_until > bindparam("now")),
    or_(ResidentRelationship.ended_at.is_(None), ResidentRelationship.ended_at > bindparam("now")),
)
_BY_ORGANISATION = (
    select(ResidentRelationship.id)
    .where(_RELATIONSHIP_IN_FORCE, ResidentRelationship.organisation_id == bindparam("who"))
    .limit(1)
)
_BY_USER = (
    select(ResidentRelationship.id)
    .where(_RELATIONSHIP_IN_FORCE, ResidentRelationship.user_id == bindparam("who"))
    .limit(1)
)
_CONSENTS_IN_FORCE = select(
    Consent.recipient_class, Consent.category, Consent.purpose, Consent.decision
).where(
    Consent.resident_id == bindparam("resident_id"),
    Consent.valid_from <= bindparam("now"),
    or_(Consent.valid_until.is_(None), Consent.valid_until > bindparam("now")),
    or_(Consent.revoked_at.is_(None), Consent.revoked_at > bindparam("now")),
)


def _in_scope(session: Session, actor: Actor, grant: RoleGrant, resident: Resident, now: dt.datetime) -> bool:
    draw = SCOPES[grant.role].draw
    if draw is Draw.contract or draw is Draw.service:
        if grant.organisation_id is None:
            return False
        kind = RelationshipKind.contract if draw is Draw.contract else RelationshipKind.service
        found = session.connection().execute(
            _BY_ORGANISATION,
            {"resident_id": resident.id, "kind": kind, "now": now, "who": grant.organisation_id},
        )
        return found.first() is not None
    if draw is Draw.pairing:
        found = session.connection().execute(
            _BY_USER,
            {"resident_id": resident.id, "kind": RelationshipKind.pairing, "now": now, "who": actor.user_id},
        )
        return actor.user_id is not None and found.first() is not None
    if draw is Draw.area:
        if grant.area_id is None:
            return True
        area = session.get(Area, grant.area_id)
        if area is None:
            return False
        for place_id in (resident.grid_id, resident.community_id):
            place = session.get(Area, place_id) if place_id else None
            if place is not None and (place.id == area.id or place.path.startswith(area.path + "/")):
                return True
        return False
    if draw is Draw.own:
        return actor.resident_id == resident.id
    if draw is Draw.acts_for:
        return resident.id in actor.acts_for
    return False


def _decisions_in_force(session: Session, resident_id: int, now: dt.datetime) -> dict[ConsentKey, set[str]]:
    """The resident's decisions in force, by key (a merge may leave a permit and a deny on one key)."""
    decisions: dict[ConsentKey, set[str]] = {}
    for recipient, category, purpose, decision in session.connection().execute(
        _CONSENTS_IN_FORCE, {"resident_id": resident_id, "now": now}
    ):
        key = (RecipientClass(recipient), DataCategory(category), Purpose(purpose))
        decisions.setdefault(key, set()).add(str(getattr(decision, "value", decision)))
    return decisions


def _consented(
    decisions: dict[ConsentKey, set[str]], recipient: RecipientClass, category: DataCategory, purpose: Purpose
) -> bool:
    if recipient is RecipientClass.own:
        return True
    recorded = decisions.get((recipient, category, purpose))
    if recorded:  # a decision in force: a deny wins over a permit
        return ConsentDecision.deny.value not in recorded
    return (recipient, category, purpose) in _settings.implied_consent


def refused_recipients(
    session: Session,
    resident_id: int,
    *,
    category: DataCategory,
    purpose: Purpose = Purpose.care,
    now: dt.datetime,
) -> frozenset[RecipientClass]:
    """The recipient classes this resident's consent (or, without a decision, the default) refuses
    for one category and purpose now, decided as ``authorize`` decides; one query, no audit (it
    reads no one's data for anyone). For a caller that must not offer work a refusal would stop."""
    if not _settings.enforce:
        return frozenset()
    session.flush()  # the query runs on the connection, past the ORM's autoflush
    decisions = _decisions_in_force(session, resident_id, now)
    return frozenset(r for r in RecipientClass if not _consented(decisions, r, category, purpose))


def _decide(
    session: Session,
    actor: Actor,
    resident_id: int,
    categories: Sequence[DataCategory],
    purpose: Purpose,
    now: dt.datetime,
) -> Decision:
    """Which of ``categories`` this actor may touch for this resident (scope x consent)."""
    session.flush()  # the queries below run on the connection, past the ORM's autoflush
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise NotFound("resident.not_found", "未找到该居民 (resident not found)", resident_id=resident_id)
    primary = categories[0]
    allowed: set[DataCategory] = set()
    relied: RoleGrant | None = None
    refusals: set[str] = set()
    by_grant: list[tuple[RoleGrant, frozenset[DataCategory]]] = []
    decisions: dict[ConsentKey, set[str]] | None = None
    for grant in actor.grants:
        scope = SCOPES[grant.role]
        reach = [c for c in categories if c in scope.categories(purpose)]
        if not reach:
            continue
        in_scope = _in_scope(session, actor, grant, resident, now)
        if in_scope and decisions is None and scope.recipient is not RecipientClass.own:
            decisions = _decisions_in_force(session, resident_id, now)
        granted = frozenset(
            c for c in reach if in_scope and _consented(decisions or {}, scope.recipient, c, purpose)
        )
        if granted:
            by_grant.append((grant, granted))
            allowed |= granted
            if primary in granted and relied is None:
                relied = grant
        if primary in reach:
            refusals.add("access.consent" if in_scope else "access.scope")
    if primary in allowed:
        code = ""
    elif refusals:
        code = "access.consent" if "access.consent" in refusals else "access.scope"
    else:
        code = "access.role"
    return Decision(frozenset(allowed), relied, code, by_grant=tuple(by_grant))


def _break_glass(
    session: Session, actor: Actor, resident_id: int, now: dt.datetime
) -> BreakGlassAccess | None:
    if actor.user_id is None or not any(SCOPES[g.role].break_glass for g in actor.grants):
        return None
    return session.execute(
        select(BreakGlassAccess)
        .where(
            BreakGlassAccess.user_id == actor.user_id,
            BreakGlassAccess.resident_id == resident_id,
            BreakGlassAccess.opened_at <= now,
            BreakGlassAccess.expires_at > now,
        )
        .order_by(BreakGlassAccess.expires_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def _break_glass_grant(actor: Actor) -> RoleGrant | None:
    return next((g for g in actor.grants if SCOPES[g.role].break_glass), None)


def _evaluate(
    session: Session,
    actor: Actor,
    resident_id: int,
    categories: Sequence[DataCategory],
    purpose: Purpose,
    now: dt.datetime,
    *,
    glass: bool = True,
) -> Decision:
    decision = _decide(session, actor, resident_id, categories, purpose, now)
    # The glass opens what was refused: the category asked for, or in a profile the clinical part.
    clinical_refused = DataCategory.clinical in categories and DataCategory.clinical not in decision.allowed
    if glass and (decision.code or clinical_refused) and purpose is Purpose.care:
        opened = _break_glass(session, actor, resident_id, now)
        if opened is not None:
            grant = _break_glass_grant(actor)
            assert grant is not None
            opens = frozenset(c for c in categories if c in SCOPES[grant.role].care)
            return Decision(
                opens | decision.allowed, grant, "", opened.id, by_grant=(*decision.by_grant, (grant, opens))
            )
    return decision


def _refuse(
    session: Session,
    actor: Actor,
    resident_id: int | None,
    *,
    code: str,
    action: str,
    what: str,
    field_group: str,
    purpose: Purpose,
    now: dt.datetime,
) -> Forbidden:
    queue_denial(
        session, actor, action=action, resource_type=what, resident_id=resident_id, field_group=field_group,
        purpose=purpose.value, reason=code, at=now,
    )  # fmt: skip
    return Forbidden(code, DENIALS[code])


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
    glass: bool = True,
) -> None:
    """Allow (and audit) or refuse (audit, then raise ``Forbidden``) one access to one resident.

    ``glass=False`` for a lasting change (a threshold, a care plan put in force): an emergency
    opening lets a clinician read and act for the moment, not reset what the resident's own team
    decides, so only the actor's own scope and consent count.

    Raises ``NotFound`` (``resident.not_found``) for a resident id that names no one.
    """
    if not _settings.enforce:
        return
    now = now or utcnow()
    if is_system(actor):
        record_access(
            session, actor, action=action, resource_type=what, resident_id=resident_id,
            field_group=category.value, purpose=purpose.value, at=now,
        )  # fmt: skip
        return
    decision = _evaluate(session, actor, resident_id, [category], purpose, now, glass=glass)
    if decision.code:
        raise _refuse(
            session, actor, resident_id, code=decision.code, action=action, what=what,
            field_group=category.value, purpose=purpose, now=now,
        )  # fmt: skip
    _record_allowed(session, actor, resident_id, decision, action=action, what=what,
                    field_group=category.value, purpose=purpose, now=now)  # fmt: skip


def permitted(
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    category: DataCategory,
    what: str,
    purpose: Purpose = Purpose.care,
    now: dt.datetime | None = None,
) -> bool:
    """``authorize`` for a part of an answer that is left out rather than refused: True, audited
    (as ``break_glass`` through an open glass), or False with nothing recorded."""
    if not _settings.enforce:
        return True
    now = now or utcnow()
    if is_system(actor):
        authorize(session, actor, resident_id, category=category, what=what, purpose=purpose, now=now)
        return True
    decision = _evaluate(session, actor, resident_id, [category], purpose, now)
    if decision.code:
        return False
    _record_allowed(session, actor, resident_id, decision, action="read", what=what,
                    field_group=category.value, purpose=purpose, now=now)  # fmt: skip
    return True


def _record_allowed(
    session: Session,
    actor: Actor,
    resident_id: int,
    decision: Decision,
    *,
    action: str,
    what: str,
    field_group: str,
    purpose: Purpose,
    now: dt.datetime,
    reason: str | None = None,
) -> None:
    if decision.break_glass_id is not None:
        reason = f"break-glass #{decision.break_glass_id}: {action}" + (f"; {reason}" if reason else "")
        action = AuditAction.break_glass
    record_access(
        session, actor, action=action, resource_type=what, resident_id=resident_id, field_group=field_group,
        purpose=purpose.value, reason=reason, grant=decision.grant, at=now,
    )  # fmt: skip


def authorize_profile(
    session: Session,
    actor: Actor,
    resident_id: int,
    *,
    what: str = "resident_profile",
    now: dt.datetime | None = None,
) -> frozenset[FieldGroup]:
    """The field groups this actor sees of this resident's profile; identity is required.

    One audit row names the groups shown. Raises like ``authorize`` when identity is refused.
    """
    now = now or utcnow()
    if is_system(actor) or not _settings.enforce:
        return frozenset(FieldGroup)
    categories = [DataCategory.identity, *(c for c in DataCategory if c is not DataCategory.identity)]
    decision = _evaluate(session, actor, resident_id, categories, Purpose.care, now)
    if decision.code:
        raise _refuse(
            session, actor, resident_id, code=decision.code, action="read", what=what,
            field_group=DataCategory.identity.value, purpose=Purpose.care, now=now,
        )  # fmt: skip
    shown = decision.shown_groups()
    _record_allowed(
        session, actor, resident_id, decision, action="read", what=what, field_group="profile",
        purpose=Purpose.care, now=now, reason="shown: " + ",".join(sorted(shown)),
    )  # fmt: skip
    return shown


IDENTITY_GROUPS = frozenset(g for g in FieldGroup if GROUP_CATEGORY[g] is DataCategory.identity)


def listing_grants(actor: Actor) -> tuple[RoleGrant, ...]:
    """The grants through which ``visible_residents(category=identity)`` lists residents."""
    return tuple(g for g in actor.grants if DataCategory.identity in SCOPES[g.role].care)


def listed_groups(
    session: Session, actor: Actor, resident_ids: Iterable[int], *, now: dt.datetime | None = None
) -> dict[int, frozenset[FieldGroup]]:
    """The identity field groups (contact, registry, living) shown of each resident of a list that
    ``visible_residents(category=identity)`` filtered: as ``authorize_profile`` decides, the groups of
    the grants whose scope covers the resident and whose consent allows identity, and no others.

    An actor whose listing grants all show the same identity groups (every single-role actor) needs
    no query: each listed resident is reached by one of them. Otherwise one query per distinct set
    of groups, with the list's own clauses (``scope_clause``, ``consent_clause``), over these ids.
    """
    ids = list(dict.fromkeys(resident_ids))
    if is_system(actor) or not _settings.enforce:
        return dict.fromkeys(ids, IDENTITY_GROUPS)
    by_groups: dict[frozenset[FieldGroup], list[RoleGrant]] = {}
    for grant in listing_grants(actor):
        by_groups.setdefault(SCOPES[grant.role].groups & IDENTITY_GROUPS, []).append(grant)
    if len(by_groups) == 1:
        return dict.fromkeys(ids, next(iter(by_groups)))
    now = now or utcnow()
    shown: dict[int, frozenset[FieldGroup]] = dict.fromkeys(ids, frozenset())
    for groups, grants in by_groups.items():
        if not ids or not groups:
            continue
        reached = or_(*(
            and_(scope_clause(session, actor, grant, now),
                 consent_clause(SCOPES[grant.role].recipient, DataCategory.identity, Purpose.care, now))
            for grant in grants
        ))  # fmt: skip
        for resident_id in session.scalars(select(Resident.id).where(Resident.id.in_(ids), reached)):
            shown[resident_id] |= groups
    return shown


def may_work_registry(actor: Actor) -> bool:
    """Registry work (link reviews, merges, import runs) belongs to the roles marked ``registry``."""
    return is_system(actor) or any(SCOPES[g.role].registry for g in actor.grants)


def require_registry(
    session: Session,
    actor: Actor,
    *,
    what: str,
    action: str = "read",
    resident_id: int | None = None,
    now: dt.datetime | None = None,
) -> Actor:
    """Refuse (audited) an actor whose roles do not keep the registry; else the actor holding only
    those roles, for the per-resident checks that follow: registry work on a resident is decided by
    a registry role's scope, not by another role the person holds (a grid worker there, an officer
    elsewhere)."""
    if not _settings.enforce or is_system(actor):
        return actor
    if may_work_registry(actor):
        return actor.acting_as(role for role, scope in SCOPES.items() if scope.registry)
    raise _refuse(
        session, actor, resident_id, code="access.role", action=action, what=what,
        field_group=DataCategory.identity.value, purpose=Purpose.care, now=now or utcnow(),
    )  # fmt: skip
