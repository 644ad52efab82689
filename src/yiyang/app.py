"""The web app: JSON API, FHIR R4 facade under /fhir, and the staff web. Wiring only."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from yiyang import __version__
from yiyang.access import policy
from yiyang.access.keys import get_keys
from yiyang.access.redaction import install_pii_redaction
from yiyang.config import Settings, get_settings
from yiyang.db import Database
from yiyang.errors import DomainError
from yiyang.events import install_handlers

log = logging.getLogger("yiyang")


def create_app(database: Database | None = None, settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    install_pii_redaction()  # no ID numbers or phones in any log line
    get_keys()  # missing field or blind-index keys fail here, at start, not at the first resident read
    install_handlers()  # cross-domain reactions: an import re-tiers the residents it touched
    app = FastAPI(
        title="yiyang 医养",
        version=__version__,
        description="社区医养结合 community medical-and-elderly care",
    )
    app.state.settings = settings
    policy.configure(settings)  # consent defaults and break-the-glass duration
    app.state.database = database or Database(settings=settings)
    from yiyang.alerts.engine import make_rules

    app.state.telemetry_rules = make_rules()  # gateway uploads run the alert rules like MQTT ingest

    from yiyang.web.pages import error_page, wants_missing_page, wants_page

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> Response:
        # Staff in a browser read a page, not JSON; a redirect (sign-in) stays a redirect.
        if error.status_code >= 400 and wants_page(request):
            return error_page(
                request, error.status_code, _plain_json(error.message), headers=error.headers or None
            )
        return JSONResponse(
            _plain_json(error.as_json()), status_code=error.status_code, headers=error.headers or None
        )

    @app.exception_handler(StarletteHTTPException)
    async def route_error(request: Request, error: StarletteHTTPException) -> Response:
        # The router's own refusals: an address no route serves (404), a page asked with a method
        # it does not take (405). A browser reads a page; anyone else the framework's JSON as ever.
        missing = error.status_code == 404 and wants_missing_page(request)
        if error.status_code >= 400 and (missing or wants_page(request)):
            message = _ROUTE_ERRORS.get(error.status_code, _plain_json(str(error.detail)))
            return error_page(request, error.status_code, message, headers=error.headers)
        return await http_exception_handler(request, error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        # Report where the input is wrong, never echo the input itself (it may hold PII).
        problems = [
            {"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")}
            for e in error.errors()
        ]
        body = _plain_json(
            {"code": "request.invalid", "message": "请求参数无效 (invalid request)", "detail": problems}
        )
        if wants_page(request):
            where = [
                f"{'.'.join(str(part) for part in p['loc'][1:] or p['loc'])}: {p['msg']}"
                for p in body["detail"]
            ]  # the parameter's name (``page``), not where it came from (``query``)
            return error_page(request, 422, body["message"], problems=where)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error: %s", type(error).__name__)
        message = "服务器内部错误 (internal error)"
        if wants_page(request):
            try:
                return error_page(request, 500, message)
            except Exception:  # noqa: BLE001 - the page itself failed: the plain answer below
                log.exception("error page failed")
        return JSONResponse({"code": "server.error", "message": message}, status_code=500)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    _include_routers(app)
    return app


_ROUTE_ERRORS = {
    404: "未找到该页面，请检查地址 (no page at this address)",
    405: "该页面不接受此种请求 (this page does not take that request method)",
}

_SURROGATE = re.compile("[\ud800-\udfff]")


def _plain_json(value: Any) -> Any:
    """An error body any JSON response can carry, so rendering an error never fails in turn.

    A message or detail may repeat what a client sent: a lone surrogate (a ``\\ud800`` escape is
    valid JSON, but no character) becomes U+FFFD; NaN and infinity become null; tuples and sets
    become lists; anything else JSON has no type for (a date, a Decimal) becomes its text.
    """
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_plain_json(str(key)): _plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain_json(item) for item in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return _plain_json(str(value))


def _include_routers(app: FastAPI) -> None:
    from pathlib import Path

    from fastapi.staticfiles import StaticFiles

    from yiyang.routers import ROUTERS
    from yiyang.web.pages import router as pages

    for router in ROUTERS:
        app.include_router(router)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
