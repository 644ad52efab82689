"""Care follows the person when two registry records are found to be one (合并档案).

A merge that left contracts, their scope and the open work on the merged-away record would drop
the person out of care: the team's contract would name a record nobody opens, its scope would
not reach the survivor, and the day job serves active residents only. So, on ``ResidentsMerged``:

- the merged record's contracts, referrals, service orders and work move to the survivor, with
  every relationship row that gives someone scope over the person (a contract's team, a referral's
  receiver, an order's provider, a paired volunteer);
- when both records had a contract in force (one resident, one contract: migration 0018), the
  survivor's stands and the merged record's ends (``terminated``, "合并档案"), with its team's open
  work, unless that team is the survivor's own;
- an open item the survivor already has for the same programme and owner is a duplicate of the
  person's own work and is cancelled.

``merge.moved`` notes what moved, so an unmerge takes it back. A contract the merge ended stays
ended (the team signs again if the two were two people after all), and work it cancelled stays
cancelled: both are in the care history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yiyang.access.models import ResidentRelationship
from yiyang.care.contracts import end_relationship, history
from yiyang.care.models import (
    OPEN_STATUSES,
    CareContract,
    ContractStatus,
    Referral,
    WorkItem,
    WorkStatus,
)
from yiyang.care.orders.models import ServiceOrder
from yiyang.residents.service import carry_back, carry_to_survivor

BY = "system:merge"
# What moves with the person, under its key in ``merge.moved``.
CARRIED = (
    ("care_contract_ids", CareContract),
    ("care_relationship_ids", ResidentRelationship),
    ("referral_ids", Referral),
    ("service_order_ids", ServiceOrder),
    ("work_item_ids", WorkItem),
)
MERGED_NOTE = "合并档案 (registry records merged)"
DUPLICATE_NOTE = "合并档案后重复 (a duplicate once the records were merged)"


def _in_force(session: Session, resident_id: int) -> CareContract | None:
    return session.scalar(
        select(CareContract).where(
            CareContract.resident_id == resident_id, CareContract.status == ContractStatus.in_force
        )
    )


def _cancel(session: Session, items: list[WorkItem], now: dt.datetime, note: str) -> None:
    for item in items:
        history(session, "work_item", item.id, "cancelled", at=now, by=BY, from_status=item.status.value,
                to_status=WorkStatus.cancelled.value, note=note)  # fmt: skip
        item.status = WorkStatus.cancelled
        item.status_changed_at = now


def on_residents_merged(session: Session, event: Any) -> None:
    merge = event.merge
    survivor_id, merged_id = merge.survivor_id, merge.merged_id
    now = merge.merged_at
    kept, ending = _in_force(session, survivor_id), _in_force(session, merged_id)
    ended: list[int] = []
    if kept is not None and ending is not None:
        ending.status = ContractStatus.terminated
        ending.ended_at = now
        ending.end_reason = MERGED_NOTE
        end_relationship(session, [ending.id], now)
        history(session, "contract", ending.id, "terminated", at=now, by=BY, from_status=ContractStatus.in_force.value,
                to_status=ContractStatus.terminated.value, note=MERGED_NOTE)  # fmt: skip
        ended.append(ending.id)
        if ending.team_id != kept.team_id:  # that team no longer reaches the person
            _cancel(session, _open_work(session, merged_id, owner=ending.team_id), now, MERGED_NOTE)
        session.flush()

    # The survivor's own open work wins over the same programme and owner brought along.
    theirs = {
        (w.programme, w.owner_organisation_id, w.owner_user_id) for w in _open_work(session, survivor_id)
    }
    duplicates = [
        w for w in _open_work(session, merged_id)
        if (w.programme, w.owner_organisation_id, w.owner_user_id) in theirs
    ]  # fmt: skip
    _cancel(session, duplicates, now, DUPLICATE_NOTE)
    session.flush()
    for key, model in CARRIED:
        carry_to_survivor(session, merge, key, model)
    merge.moved = {**merge.moved, "care_contracts_ended": ended}


def on_residents_unmerged(session: Session, event: Any) -> None:
    for key, model in CARRIED:
        carry_back(session, event.merge, key, model)


def _open_work(session: Session, resident_id: int, *, owner: int | None = None) -> list[WorkItem]:
    query = select(WorkItem).where(
        WorkItem.resident_id == resident_id, WorkItem.status.in_([s.value for s in OPEN_STATUSES])
    )
    if owner is not None:
        query = query.where(WorkItem.owner_organisation_id == owner)
    return list(session.scalars(query.order_by(WorkItem.id)))
