"""The HTTP app: the API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``, docs
at ``/api/v1/docs``), the console's pages and, last, the short-link redirect at the
root. With ``workers``, its
lifespan also runs the dispatcher, the webhook worker and housekeeping on the same
event loop — ``echelon serve``: one process for everything on SQLite."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from echelon import __version__
from echelon.access.settings import AccessSettings
from echelon.api import (
    accounts,
    callbacks,
    campaigns,
    channels,
    contacts,
    messages,
    reports,
    segments,
    templates,
    webhooks,
)
from echelon.api.errors import install_error_handlers
from echelon.api.guards import refuse_unstorable_text
from echelon.api.redirect import build_redirect_app
from echelon.api.state import ApiState
from echelon.config import Settings
from echelon.console import create_console
from echelon.dispatch.dispatcher import Dispatcher, DispatchOptions
from echelon.runtime.workers import companions, supervised

log = logging.getLogger(__name__)

PREFIX: Final = "/api/v1"
_ROUTERS: Final = (
    accounts,
    contacts,
    segments,
    templates,
    campaigns,
    messages,
    reports,
    webhooks,
    channels,
    callbacks,
)


def create_app(
    engine: Engine,
    settings: Settings,
    *,
    access: AccessSettings | None = None,
    workers: bool = False,
    dispatch: DispatchOptions | None = None,
) -> FastAPI:
    """The app over ``engine``. ``workers``: run the dispatcher and what runs beside it
    (``runtime.workers``: journeys, webhook deliveries, attribution and alerts, A/B
    winners, housekeeping) while the app runs (stopped, in-flight work finished, on
    shutdown)."""
    secret = settings.ip_hash_key
    ip_key = None if secret is None else hashlib.sha256(secret.get_secret_value().encode()).digest()
    redirect = build_redirect_app(engine, ip_key=ip_key)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[Any]] = []
        if workers:
            dispatcher = Dispatcher(engine, options=dispatch)
            work = {"dispatcher": dispatcher.run(stop), **companions(engine, stop)}
            tasks = [supervised(name, coroutine) for name, coroutine in work.items()]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await run_in_threadpool(redirect.close)

    app = FastAPI(
        title="echelon API",
        version=__version__,
        description="echelon 梯队短信营销平台的 HTTP API。用工作区的 API 密钥"
        "（`Authorization: Bearer ek_…`）或控制台登录会话访问；错误一律为 "
        '`{"error": {"code", "message", "field"?}}`。',
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.api = ApiState(engine=engine, settings=settings, access=access or AccessSettings())
    app.state.redirect = redirect
    install_error_handlers(app)
    api = APIRouter(prefix=PREFIX, dependencies=[Depends(refuse_unstorable_text)])
    for module in _ROUTERS:
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(create_console(engine, settings, access=app.state.api.access))
    # Last, and one path segment only: short links never shadow the API, and a wrong
    # API address still gets the API's JSON 404.
    app.router.routes.append(Route("/{code}", redirect))
    return app
