"""The short-link redirect: ``GET /{code}`` (and ``HEAD``) answers 302 to the link's
target and records the click; anything else gets a plain 404 page.

It is a bare ASGI app, not a Starlette router: at thousands of redirects a second the
framework's middleware stack cost more than the redirect itself. Nothing on the
request path writes, and once a code is cached nothing reads: hits go to the
``ClickRecorder`` queue, and the codes seen for the first time in one turn of the event
loop are looked up together on a small thread pool, so the event loop never waits on
the database.

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
from echelon.tracking.models import LinkTarget
from echelon.tracking.rules import is_link_code

LOOKUP_BATCH: Final = 500

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
        # Codes not cached, waiting for the next batched lookup, and whoever waits on them.
        self._pending: dict[str, asyncio.Future[LinkTarget | None]] = {}
        self._flush_scheduled = False

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
        # Shielded: the lookup is shared by every request for the code, and one client
        # hanging up must not cancel it for the others.
        link = await asyncio.shield(self._lookup(code)) if isinstance(cached, Cache) else cached
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

    def _lookup(self, code: str) -> asyncio.Future[LinkTarget | None]:
        """The link of a code not cached: the codes first seen in one turn of the event
        loop are looked up together, in one query on a lookup thread — at a thousand
        new codes a second, one statement per code cost more than the redirects."""
        future = self._pending.get(code)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._pending[code] = loop.create_future()
            if len(self._pending) >= LOOKUP_BATCH:
                self._flush()
            elif not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        loop = asyncio.get_running_loop()
        lookup = loop.run_in_executor(self._lookups, self.resolver.load_many, list(batch))

        def answer(done: asyncio.Future[dict[str, LinkTarget | None]]) -> None:
            failure = done.exception()
            for code, waiting in batch.items():
                if waiting.done():
                    continue
                if failure is not None:
                    waiting.set_exception(failure)
                else:
                    waiting.set_result(done.result()[code])

        lookup.add_done_callback(answer)

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
    ip_key: bytes | None = None,
) -> RedirectApp:
    """The redirect app over ``engine``; ``ip_key`` keys the clicks' IP digests."""
    return RedirectApp(
        recorder or ClickRecorder(engine, ip_key=ip_key), resolver or LinkResolver(engine)
    )


def app_from_environment() -> RedirectApp:
    """For ``uvicorn --factory echelon.api.redirect:app_from_environment``: the
    database from ``ECHELON_DATABASE_URL``."""
    return build_redirect_app(create_db_engine(Settings().database_url))
