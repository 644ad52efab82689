"""Reading import runs (导入批次): which of a run's rejections a registry keeper may see.

A run's counts are every registry keeper's; its rejections quote rows of an agency file about
residents, so each is read only by keepers whose area holds the community its row names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.geo.models import Area, AreaLevel


@dataclass(frozen=True, slots=True)
class RejectionView:
    """What one registry keeper reads of a run's rejections."""

    everything: bool = False  # the whole deployment: an administrator without an area, a job
    unplaced: bool = False  # rejections naming no community (or one outside the geography)
    communities: frozenset[str] = frozenset()

    def shows(self, rejection: Any) -> bool:
        if self.everything:
            return True
        # Runs stored before rejections carried their community name none.
        code = rejection.get("community_code") if isinstance(rejection, dict) else None
        return code in self.communities if code else self.unplaced

    def split(self, rejections: Iterable[Any]) -> tuple[list[Any], int]:
        """The rejections shown, and how many were withheld."""
        shown, withheld = [], 0
        for rejection in rejections:
            if self.shows(rejection):
                shown.append(rejection)
            else:
                withheld += 1
        return shown, withheld


def rejection_view(session: Session, keeper: Actor) -> RejectionView:
    """The view of ``keeper``, the actor ``policy.require_registry`` returned (its registry roles
    only): the union over its grants. A grant over a district or without an area is district-wide
    and also reads rejections naming no community, which no smaller area can claim."""
    if policy.is_system(keeper) or not policy.current_settings().enforce:
        return RejectionView(everything=True)
    unplaced = False
    communities: set[str] = set()
    for grant in keeper.grants:
        if not policy.SCOPES[grant.role].registry:
            continue
        if grant.area_id is None:
            return RejectionView(everything=True)
        area = session.get(Area, grant.area_id)
        if area is None:
            continue
        unplaced = unplaced or area.level is AreaLevel.district
        communities.update(
            session.scalars(select(Area.code).where(Area.level == AreaLevel.community, area.subtree()))
        )
    return RejectionView(unplaced=unplaced, communities=frozenset(communities))
