"""The short-link redirect: ``GET /{code}`` (and ``HEAD``) answers 302 to the link's
target and records the click; anything else gets a plain 404 page.

It is a bare ASGI app, not a Starlette router: at thousands of redirects a second the
framework's middleware stack cost more than the redirect itself. Nothing on the
request path writes, and once a code is cached nothing reads: hits go to the
``ClickRecorder`` queue, and a code seen for the first time is looked up on a small
thread pool so the event loop never waits on the database.

Standalone (``uvicorn --factory echelon.api.redirect:app_from_environment``), its
lifespan flushes the click queue on shutdown. Mounted in the main app — e.g.
``Host(short_domain, app=build_redirect_app(engine))`` — that app's lifespan must
call ``close()`` (Starlette does not pass lifespan events to mounted apps).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from sqlalchemy import Engine

from echelon.config import Settings
from echelon.db.engine import create_db_engine
from echelon.tracking.clicks import Cache, ClickRecorder, LinkResolver
from echelon.tracking.rules import is_link_code

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NOT_FOUND_PAGE: Final = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1">'
    '<title>链接不存在</title></head><body style="font-family:sans-serif;'
    'text-align:center;padding:3em 1em;color:#333"><h1>链接不存在或已失效</h1>'
    "<p>请检查短信中的链接是否完整。</p></body></html>"
).encode()
_NOT_FOUND_HEADERS: Final = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-length", str(len(NOT_FOUND_PAGE)).encode()),
    (b"cache-control", b"no-store"),
]
# Every tap must reach us to be counted, and the target learns nothing of where from.
_REDIRECT_HEADERS: Final = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-length", b"0"),
]
_URL_SAFE: Final = ":/?#[]@!$&'()*+,;=%~"


def location(url: str) -> bytes:
    """A target as a ``Location`` header: ASCII, non-ASCII characters percent-encoded."""
    try:
        return url.encode("ascii")
    except UnicodeEncodeError:
        return quote(url, safe=_URL_SAFE).encode("ascii")


class RedirectApp:
    """The ASGI app; ``recorder`` and ``resolver`` are exposed for wiring and tests."""

    def __init__(
        self, recorder: ClickRecorder, resolver: LinkResolver, *, lookup_threads: int = 8
    ) -> None:
        self.recorder = recorder
        self.resolver = resolver
        self._lookups = ThreadPoolExecutor(lookup_threads, thread_name_prefix="link-lookup")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, send: Send) -> None:
        method = scope["method"]
        code = scope["path"][1:]
        if method not in ("GET", "HEAD") or not is_link_code(code):
            await self._not_found(send)
            return
        cached = self.resolver.cached(code)
        if isinstance(cached, Cache):
            loop = asyncio.get_running_loop()
            link = await loop.run_in_executor(self._lookups, self.resolver.load, code)
        else:
            link = cached
        if link is None:
            await self._not_found(send)
            return
        agent = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                agent = value.decode("latin-1")
                break
        client = scope.get("client")
        self.recorder.observe(
            link,
            method=method,
            user_agent=agent,
            ip=client[0] if client else None,
            now=datetime.now(UTC),
        )
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [(b"location", location(link.target_url)), *_REDIRECT_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _not_found(send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": _NOT_FOUND_HEADERS})
        await send({"type": "http.response.body", "body": NOT_FOUND_PAGE})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        """Write every queued click and stop the writer and the lookup threads."""
        self._lookups.shutdown(wait=True)
        self.resolver.close()
        self.recorder.close()


def build_redirect_app(
    engine: Engine,
    *,
    recorder: ClickRecorder | None = None,
    resolver: LinkResolver | None = None,
) -> RedirectApp:
    """The redirect app over ``engine``."""
    return RedirectApp(recorder or ClickRecorder(engine), resolver or LinkResolver(engine))


def app_from_environment() -> RedirectApp:
    """For ``uvicorn --factory echelon.api.redirect:app_from_environment``: the
    database from ``ECHELON_DATABASE_URL``."""
    return build_redirect_app(create_db_engine(Settings().database_url))
