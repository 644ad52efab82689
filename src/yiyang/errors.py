"""Errors a person can act on: a machine code plus a Chinese/English message.

Services raise ``DomainError`` subclasses; the app turns them into 4xx JSON
``{"code": ..., "message": ..., "detail"?: ...}`` (with the error's ``headers``) and never a
bare 500. On a staff page asked for by a browser the same error is a page in the site's layout
with its message and status (``web.pages.error_page``); /api and /fhir always answer JSON.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400

    def __init__(
        self, code: str, message: str, *, headers: dict[str, str] | None = None, **detail: Any
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}  # sent with the response: Retry-After for a 429, Location for a 303

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Invalid(DomainError):
    status_code = 422


class Forbidden(DomainError):
    status_code = 403
