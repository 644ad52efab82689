"""A route declares what resident data it exposes, and the inventory test reads the declaration.

``openapi_extra=resident_data(DataCategory.clinical)`` on a route that reads or writes resident
data (it must then take ``ActorDep`` and go through ``access.policy``);
``openapi_extra=no_resident_data("why")`` on one that does not. ``tests/access/test_route_inventory``
fails for any route under /api, /fhir or the staff web that declares neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.routing import APIRoute

from yiyang.access.policy import DataCategory

ACCESS_KEY = "x-yiyang-access"


def resident_data(*categories: DataCategory, many: bool = False, registry: bool = False) -> dict[str, Any]:
    """The categories the route touches; ``many``: a list filtered by ``visible_residents``;
    ``registry``: registry work (link reviews, merges, import runs) for the roles that keep it."""
    return {ACCESS_KEY: {"categories": [c.value for c in categories], "many": many, "registry": registry}}


def no_resident_data(why: str) -> dict[str, Any]:
    return {ACCESS_KEY: {"categories": [], "why": why}}


def declared(route: Any) -> dict[str, Any] | None:
    extra = getattr(route, "openapi_extra", None) or {}
    return extra.get(ACCESS_KEY)


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute of an app, including those of included routers.

    FastAPI keeps an included router as one node (``original_router``) rather than copying its
    routes into the app, so a flat look at ``app.routes`` would miss almost every route.
    """
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)
