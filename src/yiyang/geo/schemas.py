"""What the geography routes return. No resident names or identities: those live behind access."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, computed_field

from yiyang.geo.models import AreaLevel, LivingArrangement, OrganisationKind


class AreaRead(BaseModel):
    """A district, street, community or grid (区/街道/社区/网格)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    level: AreaLevel
    code: str
    name: str
    parent_id: int | None
    path: str


class AreaDetail(AreaRead):
    children: list[AreaRead]
    # Active residents in the area and below it that the reader may count for statistics; left
    # out of the answer (not null) for a reader whose roles count no one (a statistic, 统计).
    resident_count: int | None = None


class AreaRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str


class OrganisationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    kind: OrganisationKind
    area_id: int
    address: str | None
    phone: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kind_label(self) -> str:
        from yiyang.geo.service import ORGANISATION_KIND_LABELS

        return ORGANISATION_KIND_LABELS[self.kind]


class HouseholdRead(BaseModel):
    """A household (家庭户): where it is and, for readers who see the living field group, how its
    people live and how many of them the reader may see; never who.

    ``living_arrangement`` and ``member_count`` are left out of the answer for other readers;
    a null ``living_arrangement`` means it is not known."""

    id: int
    address: str
    community: AreaRef
    grid: AreaRef | None
    living_arrangement: LivingArrangement | None = None
    member_count: int | None = None
