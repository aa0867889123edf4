"""The console's router: every page, mounted at ``/`` by the HTTP app (before the
short-link route, so a page is never taken for a link code)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import Engine

from echelon.access.settings import AccessSettings
from echelon.config import Settings
from echelon.console.pages import (
    account,
    auth,
    campaigns,
    contact_edit,
    contacts,
    content,
    dashboard,
    imports,
    inbox,
    journeys,
    messages,
    segments,
)
from echelon.console.pages import settings as settings_page
from echelon.console.pages.static import static_router
from echelon.console.web import Console, route_class

_PAGES = (
    auth,
    dashboard,
    contacts,
    contact_edit,
    imports,
    segments,
    content,
    campaigns,
    journeys,
    messages,
    inbox,
    settings_page,
    account,
)


def create_console(
    engine: Engine, settings: Settings, *, access: AccessSettings | None = None
) -> APIRouter:
    """The console's pages over ``engine``; ``access`` (session lifetime, secure cookies,
    sign-in limits) should be the API's, so one sign-in serves both."""
    console = Console(engine, settings, access or AccessSettings())
    router = APIRouter(route_class=route_class(console), include_in_schema=False)
    for module in _PAGES:
        module.register(router, console)
    router.include_router(static_router())
    return router
