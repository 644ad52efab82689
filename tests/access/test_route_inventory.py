"""Every route says whether it exposes resident data; those that do take the signed-in actor.

A new route without ``openapi_extra=resident_data(...)`` or ``no_resident_data("why")``
(``yiyang/access/routes.py``) fails here, so resident data cannot be served unnoticed.
"""

from __future__ import annotations

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from yiyang.access.deps import current_actor
from yiyang.access.routes import api_routes, declared
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.web.actor import web_actor

UNDECLARED_OK = {"/healthz"}  # the app's own liveness probe


def _routes(database: Database) -> list[APIRoute]:
    return list(api_routes(create_app(database).routes))


def _takes_actor(dependant: Dependant) -> bool:
    return any(d.call in (current_actor, web_actor) or _takes_actor(d) for d in dependant.dependencies)


def test_every_route_declares_whether_it_exposes_resident_data(sqlite_db: Database) -> None:
    missing = [
        f"{sorted(route.methods)} {route.path}"
        for route in _routes(sqlite_db)
        if route.path not in UNDECLARED_OK and declared(route) is None
    ]
    assert not missing, "routes without an access declaration: " + ", ".join(missing)


def test_resident_data_routes_take_the_signed_in_actor(sqlite_db: Database) -> None:
    unguarded = [
        route.path
        for route in _routes(sqlite_db)
        if (declared(route) or {}).get("categories") and not _takes_actor(route.dependant)
    ]
    assert not unguarded, unguarded


def test_routes_naming_a_resident_declare_categories(sqlite_db: Database) -> None:
    vague = [
        route.path
        for route in _routes(sqlite_db)
        if "{resident_id}" in route.path and not (declared(route) or {}).get("categories")
    ]
    assert not vague, vague


def test_the_inventory_sees_the_routes_of_included_routers(sqlite_db: Database) -> None:
    paths = {route.path for route in _routes(sqlite_db)}
    assert {"/api/residents/{resident_id}", "/fhir/Patient/{resident_id}", "/residents"} <= paths


def test_a_route_without_declaration_is_caught(sqlite_db: Database) -> None:
    # given an app with one route added that forgot its declaration
    app = create_app(sqlite_db)

    @app.get("/api/residents/{resident_id}/secret-notes")
    def secret_notes(resident_id: int) -> dict[str, int]:
        return {"resident_id": resident_id}

    # then the inventory notices it
    undeclared = [r.path for r in api_routes(app.routes) if declared(r) is None]
    assert "/api/residents/{resident_id}/secret-notes" in undeclared
