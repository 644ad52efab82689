"""Writing a relationship that gives its writer scope, in a sound order.

Signing a contract (签约) or accepting an order (接单) is what gives a team or a provider scope over
a resident, so ``authorize`` cannot be asked before the relationship exists: it would refuse
``access.scope`` to the very act that creates the scope. Nor may the row stay when the rest of the
decision refuses (the role never sees the category, or the resident's consent denies it).

``granting`` therefore runs the write in a savepoint, asks ``authorize`` under the new relationship
(role and consent are then what decides, and the allowed access is audited), and on a refusal
rolls the savepoint back, so nothing the write added remains, even for a caller that goes on after
catching the ``Forbidden``. The caller checks first what entitles the actor to write (a member of
the team, the provider the order was offered to).

A relationship lasts, so a break-the-glass opening counts for nothing here (``glass=False``): it
lets a clinician read in an emergency, not take on the care the resident's consent refuses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from yiyang.access.actor import Actor
from yiyang.access.models import RelationshipKind
from yiyang.access.policy import SCOPES, DataCategory, Draw, authorize

T = TypeVar("T")


def granting(
    session: Session,
    actor: Actor,
    resident_id: int,
    write: Callable[[], T],
    *,
    category: DataCategory,
    what: str,
    action: str,
    now: dt.datetime,
) -> T:
    """Run ``write`` (which adds the relationship row), then authorize under it; all or nothing."""
    with session.begin_nested():
        written = write()
        session.flush()
        authorize(
            session, actor, resident_id, category=category, what=what, action=action, now=now, glass=False
        )
    return written


# The relationship kind each way of drawing scope reads (``policy.SCOPES``).
RELATIONSHIP_OF_DRAW = {
    Draw.contract: RelationshipKind.contract,
    Draw.service: RelationshipKind.service,
    Draw.pairing: RelationshipKind.pairing,
}


def kind_drawn_by(actor: Actor, organisation_id: int | None) -> RelationshipKind:
    """The relationship kind that gives this actor's organisation scope, as ``policy.SCOPES`` draws it.

    Clinical roles (family doctor, nurse, health manager, wherever they work: a team, a hospital)
    draw their residents from rows of kind contract with their organisation, stations and social
    organisations from kind service; a person acting for themselves (a volunteer) from pairing.
    Someone holding a clinical role and another at the organisation (a nurse who is also station
    staff at a care home) takes the clinician's contract, whatever order the roles were granted in.
    """
    draws = {
        SCOPES[grant.role].draw
        for grant in actor.grants
        if organisation_id is not None and grant.organisation_id == organisation_id
    }
    if Draw.contract in draws:
        return RelationshipKind.contract
    return RelationshipKind.pairing if organisation_id is None else RelationshipKind.service
