"""Every domain's router, in one list the app includes. Add a domain's router here."""

from __future__ import annotations

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
