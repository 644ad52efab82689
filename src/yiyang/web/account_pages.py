"""Account pages: administrators keep accounts and roles (账号管理, /admin/users); everyone signed
in changes their own password (/account/password). Thin: every decision, the administrator's area
and the audit rows are ``access.accounts``'s; a refusal renders the page with its message."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from yiyang.access import accounts, service
from yiyang.access.actor import Actor
from yiyang.access.deps import ClockDep
from yiyang.access.models import RoleMembership
from yiyang.access.roles import ROLES, Role
from yiyang.access.routes import no_resident_data
from yiyang.deps import IdPath, SessionDep
from yiyang.errors import DomainError
from yiyang.geo.models import Area, Organisation
from yiyang.web.actor import WebActorDep
from yiyang.web.pages import render

router = APIRouter(include_in_schema=False)
ADMINISTRATION = no_resident_data("account administration: accounts and roles, no resident record")
PAGE_SIZE = 50
Code = Annotated[str, Form(max_length=40)]


def _places(session: Session, memberships: list[RoleMembership]) -> dict[str, dict[int, str]]:
    """Names of the organisations and areas the memberships name, to show beside their codes."""
    organisation_ids = {m.organisation_id for m in memberships if m.organisation_id}
    area_ids = {m.area_id for m in memberships if m.area_id}
    organisations = session.execute(
        select(Organisation.id, Organisation.name, Organisation.code).where(
            Organisation.id.in_(organisation_ids)
        )
    )
    areas = session.execute(select(Area.id, Area.name, Area.code).where(Area.id.in_(area_ids)))
    return {
        "organisations": {row.id: f"{row.name} ({row.code})" for row in organisations},
        "areas": {row.id: f"{row.name} ({row.code})" for row in areas},
    }


def _list(
    request: Request, session: Session, actor: Actor, *, status_code: int = 200, problem: str | None = None,
    q: str | None = None, role: Role | None = None, page: int = 1, form: dict[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    try:
        found = accounts.list_accounts(
            session, actor, query=q, role=role, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    except DomainError as error:
        return render(request, "forbidden.html", status_code=error.status_code, message=error.message)
    every = [m for held in found.memberships.values() for m in held]
    return render(
        request, "accounts/list.html", status_code=status_code, problem=problem, users=found.users,
        memberships=found.memberships, places=_places(session, every), total=found.total, page=page,
        pages=max(1, -(-found.total // PAGE_SIZE)), q=q or "", role=role.value if role else "", roles=ROLES,
        form=form or {},  # what the administrator typed into the new-account form, shown again with its problem
    )  # fmt: skip


def _detail(
    request: Request, session: Session, actor: Actor, user_id: int, *, status_code: int = 200,
    problem: str | None = None, form: dict[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    try:
        user, memberships = accounts.read_account(session, actor, user_id)
    except DomainError as error:
        return render(request, "forbidden.html", status_code=error.status_code, message=error.message)
    return render(
        request, "accounts/detail.html", status_code=status_code, problem=problem, user=user,
        memberships=memberships, places=_places(session, memberships), roles=ROLES,
        done=request.query_params.get("done"), form=form or {},  # the grant form as typed, with its problem
    )  # fmt: skip


def _changed(user_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/users/{user_id}?done={done}", status_code=303)


@router.get("/admin/users", response_class=HTMLResponse, openapi_extra=ADMINISTRATION)
def accounts_page(
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    q: Annotated[str | None, Query(max_length=64)] = None,
    role: Annotated[str, Query(max_length=32)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    chosen = Role(role) if role in Role.__members__ else None
    return _list(request, session, actor, q=q, role=chosen, page=page)


@router.post("/admin/users", response_model=None, openapi_extra=ADMINISTRATION)
def create_account_page(
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    role: Annotated[Role, Form()],
    display_name: Annotated[str, Form(max_length=64)] = "",
    organisation_code: Code = "",
    area_code: Code = "",
) -> HTMLResponse | RedirectResponse:
    try:
        organisation_id, area_id = accounts.place_ids(session, organisation_code.strip(), area_code.strip())
        user = accounts.create_account(
            session, actor, username, role=role, password=password, display_name=display_name.strip() or None,
            organisation_id=organisation_id, area_id=area_id, now=clock(),
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        typed = {
            "username": username,
            "display_name": display_name,
            "role": role.value,
            "organisation_code": organisation_code,
            "area_code": area_code,
        }  # never the password
        return _list(
            request, session, actor, status_code=error.status_code, problem=error.message, form=typed
        )
    return _changed(user.id, "created")


@router.get("/admin/users/{user_id}", response_class=HTMLResponse, openapi_extra=ADMINISTRATION)
def account_page(request: Request, user_id: IdPath, session: SessionDep, actor: WebActorDep) -> HTMLResponse:
    return _detail(request, session, actor, user_id)


def _change(
    request: Request, session: Session, actor: Actor, user_id: int, done: str, work: Any,
    form: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    try:
        work()
    except DomainError as error:
        session.rollback()
        return _detail(
            request, session, actor, user_id, status_code=error.status_code, problem=error.message, form=form
        )
    return _changed(user_id, done)


@router.post("/admin/users/{user_id}/roles", response_model=None, openapi_extra=ADMINISTRATION)
def grant_page(
    request: Request,
    user_id: IdPath,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    role: Annotated[Role, Form()],
    organisation_code: Code = "",
    area_code: Code = "",
) -> HTMLResponse | RedirectResponse:
    def work() -> None:
        organisation_id, area_id = accounts.place_ids(session, organisation_code.strip(), area_code.strip())
        accounts.grant(
            session, actor, user_id, role, organisation_id=organisation_id, area_id=area_id, now=clock()
        )

    typed = {"role": role.value, "organisation_code": organisation_code, "area_code": area_code}
    return _change(request, session, actor, user_id, "granted", work, form=typed)


@router.post(
    "/admin/users/{user_id}/roles/{membership_id}/revoke", response_model=None, openapi_extra=ADMINISTRATION
)
def revoke_page(
    request: Request, user_id: IdPath, membership_id: IdPath, session: SessionDep, actor: WebActorDep,
    clock: ClockDep,
) -> HTMLResponse | RedirectResponse:  # fmt: skip
    return _change(
        request, session, actor, user_id, "revoked",
        lambda: accounts.revoke(session, actor, user_id, membership_id, now=clock()),
    )  # fmt: skip


@router.post("/admin/users/{user_id}/deactivate", response_model=None, openapi_extra=ADMINISTRATION)
def deactivate_page(
    request: Request, user_id: IdPath, session: SessionDep, actor: WebActorDep, clock: ClockDep
) -> HTMLResponse | RedirectResponse:
    return _change(
        request, session, actor, user_id, "deactivated",
        lambda: accounts.deactivate(session, actor, user_id, now=clock()),
    )  # fmt: skip


@router.post("/admin/users/{user_id}/reactivate", response_model=None, openapi_extra=ADMINISTRATION)
def reactivate_page(
    request: Request, user_id: IdPath, session: SessionDep, actor: WebActorDep, clock: ClockDep
) -> HTMLResponse | RedirectResponse:
    return _change(
        request, session, actor, user_id, "reactivated",
        lambda: accounts.reactivate(session, actor, user_id, now=clock()),
    )  # fmt: skip


@router.post("/admin/users/{user_id}/password", response_model=None, openapi_extra=ADMINISTRATION)
def reset_password_page(
    request: Request,
    user_id: IdPath,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    password: Annotated[str, Form(max_length=256)],
) -> HTMLResponse | RedirectResponse:
    return _change(
        request, session, actor, user_id, "password",
        lambda: accounts.reset_password(session, actor, user_id, password, now=clock()),
    )  # fmt: skip


# --- one's own password ----------------------------------------------------------------------


@router.get(
    "/account/password", response_class=HTMLResponse, openapi_extra=no_resident_data("one's own password")
)
def password_page(request: Request, actor: WebActorDep) -> HTMLResponse:
    return render(request, "accounts/password.html", done=request.query_params.get("done"), problem=None)


@router.post("/account/password", response_model=None, openapi_extra=no_resident_data("one's own password"))
def change_password_page(
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    current_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
    repeated: Annotated[str, Form(max_length=256)],
) -> HTMLResponse | RedirectResponse:
    if new_password != repeated:
        return render(
            request, "accounts/password.html", status_code=422, done=None,
            problem="两次输入的新密码不一致 (the two new passwords differ)",
        )  # fmt: skip
    try:
        accounts.change_own_password(
            session, actor, current_password, new_password,
            client_address=request.client.host if request.client else "unknown",
            throttle=service.throttle_policy(request.app.state.settings), now=clock(),
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        response = render(
            request, "accounts/password.html", status_code=error.status_code, done=None, problem=error.message
        )
        response.headers.update(error.headers)
        return response
    return RedirectResponse("/account/password?done=1", status_code=303)
