"""Secrets for bearer tokens and web sessions, and the CSRF token of a session. Pure.

A secret is 32 random bytes (256 bits) in URL-safe base64; only its SHA-256 is stored, so a copy
of the database does not hold working credentials. SHA-256 without a salt is enough here because
the secret is random, not chosen by a person.

CSRF (synchronizer token pattern, derived): a session's CSRF token is HMAC-SHA256 keyed by the
session secret. The server recomputes it from the cookie on every unsafe request instead of
storing it; a page on another site can make the browser send the cookie but can neither read the
cookie (HttpOnly) nor the token, so it cannot send the matching ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

BEARER_PREFIX = "yyt_"  # recognisable in a leaked config file or a secret scanner's rules
SESSION_COOKIE = "yiyang_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_BEARER = re.compile(r"Bearer\s+(\S+)\s*", re.IGNORECASE)
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,100}")


def new_bearer_token() -> str:
    return BEARER_PREFIX + secrets.token_urlsafe(32)


def new_session_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def well_formed(secret: str) -> bool:
    """Cheap shape check before any lookup: a secret is URL-safe base64 of bounded length."""
    return bool(_SECRET_SHAPE.fullmatch(secret))


def bearer_from_header(authorization: str | None) -> str | None:
    if not authorization:
        return None
    match = _BEARER.fullmatch(authorization)
    return match.group(1) if match else None


def csrf_token_for(session_secret: str) -> str:
    return hmac.new(session_secret.encode("utf-8"), b"yiyang csrf v1", hashlib.sha256).hexdigest()


def csrf_matches(session_secret: str, presented: str | None) -> bool:
    if not presented:
        return False
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header may carry any Latin-1.
    return hmac.compare_digest(csrf_token_for(session_secret).encode(), presented.strip().encode("utf-8"))
