"""The click path: resolving a code to its link, and recording hits without waiting.

A redirect must answer in well under 10 ms, so nothing on its path writes: a hit is
classified (``rules.classify_hit``) and appended to an in-process queue, and a writer
thread flushes the queue every few milliseconds in one multi-row insert (COPY on
PostgreSQL). Codes never change once issued, so resolved links are cached; an unknown
code is remembered briefly so a scanner cannot make every miss a query.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

from sqlalchemy import Engine

from echelon.tracking import queries
from echelon.tracking.models import BotReason, LinkTarget
from echelon.tracking.rules import classify_hit, hash_ip

log = logging.getLogger(__name__)

_MAX_USER_AGENT: Final = 300
_UNKNOWN_TTL: Final = 30.0


class Cache(Enum):
    MISS = "miss"
    """``LinkResolver.cached`` knows nothing of the code either way: ``load`` it."""


class LinkResolver:
    """Code → ``LinkTarget``, with a bounded least-recently-used cache.

    ``load`` runs on the redirect's lookup threads, each with a database connection of
    its own taken out of the pool and kept in autocommit: a first hit is one indexed
    read and no transaction, without SQLAlchemy's statement machinery in the way.
    """

    def __init__(self, engine: Engine, *, size: int = 200_000) -> None:
        self._engine = engine
        self._size = size
        self._known: OrderedDict[str, LinkTarget] = OrderedDict()
        self._unknown: dict[str, float] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[Any] = []
        self._sql = queries.link_targets_sql(engine.dialect.name)
        self._as_parameter: Callable[[list[str]], Any] = (
            list if engine.dialect.name == "postgresql" else json.dumps
        )

    def cached(self, code: str) -> LinkTarget | Literal[Cache.MISS] | None:
        """The cached link; None if the code is known not to exist; else ``Cache.MISS``."""
        with self._lock:
            found = self._known.get(code)
            if found is not None:
                self._known.move_to_end(code)
                return found
            expires = self._unknown.get(code)
            if expires is not None and expires > time.monotonic():
                return None
        return Cache.MISS

    def load(self, code: str) -> LinkTarget | None:
        """Look the code up in the database (it blocks: a thread's work) and cache it."""
        return self.load_many([code])[code]

    def load_many(self, codes: list[str]) -> dict[str, LinkTarget | None]:
        """Look the codes up in one query (it blocks: a thread's work) and cache them;
        a code not found maps to None."""
        try:
            rows = self._fetch(codes)
        except Exception:
            self._drop_connection()
            rows = self._fetch(codes)
        found: dict[str, LinkTarget | None] = dict.fromkeys(codes)
        for code, *fields in rows:
            found[code] = LinkTarget(*fields)
        expires = time.monotonic() + _UNKNOWN_TTL
        with self._lock:
            for code, link in found.items():
                if link is None:
                    if len(self._unknown) >= self._size:
                        self._unknown.clear()
                    self._unknown[code] = expires
                else:
                    self._known[code] = link
                    if len(self._known) > self._size:
                        self._known.popitem(last=False)
        return found

    def _fetch(self, codes: list[str]) -> list[tuple[Any, ...]]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pooled = self._engine.raw_connection()
            connection = pooled.driver_connection
            pooled.detach()  # this thread's for good; never handed back mid-transaction
            if self._engine.dialect.name == "postgresql":
                connection.autocommit = True  # type: ignore[union-attr]
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        cursor = connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self._sql, (self._as_parameter(codes),))
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        finally:
            cursor.close()
        return rows

    def close(self) -> None:
        """Close the lookup threads' connections (once those threads are done)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.close()

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()


@dataclass(frozen=True, slots=True)
class Hit:
    link: LinkTarget
    at: datetime
    bot_reason: BotReason | None
    user_agent: str | None
    ip_hash: str | None

    def row(self) -> tuple[Any, ...]:
        link = self.link
        return (
            link.workspace_id,
            link.link_id,
            link.message_id,
            link.contact_id,
            link.campaign_id,
            self.at,
            self.bot_reason is None,
            None if self.bot_reason is None else self.bot_reason.value,
            self.user_agent,
            self.ip_hash,
        )


class ClickRecorder:
    """Classifies hits and writes them in batches from a background thread.

    ``observe`` never blocks; ``flush`` writes what is queued now (tests, shutdown);
    ``close`` stops the writer after a last flush. The writer starts with the first
    hit, so the recorder works the same standalone or mounted in another app.
    A second hit on a link within a second is told by this process's memory of
    recent hits (one process serves a link's bursts; see ``rules.classify_hit``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = 0.01,
        max_batch: int = 5_000,
        max_pending: int = 1_000_000,
        ip_key: bytes | None = None,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._max_batch = max_batch
        self._max_pending = max_pending
        # Without a configured key, digests are comparable within this process only.
        self._ip_key = ip_key or secrets.token_bytes(16)
        self._pending: deque[Hit] = deque()
        self._last_hit: OrderedDict[int, datetime] = OrderedDict()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.written = 0
        self.dropped = 0

    def observe(
        self,
        link: LinkTarget,
        *,
        method: str,
        user_agent: str | None,
        ip: str | None,
        now: datetime,
    ) -> Hit:
        """Classify the hit, queue it for writing, and return it."""
        previous = self._last_hit.get(link.link_id)
        reason = classify_hit(method=method, user_agent=user_agent, last_hit_at=previous, now=now)
        # Every hit starts (or extends) a burst, a fetcher's too: a scanner's HEAD or
        # preview fetch followed at once by a browser-like GET is one machine, not a tap.
        self._last_hit[link.link_id] = now
        self._last_hit.move_to_end(link.link_id)
        if len(self._last_hit) > 100_000:
            self._last_hit.popitem(last=False)
        hit = Hit(
            link=link,
            at=now,
            bot_reason=reason,
            user_agent=user_agent[:_MAX_USER_AGENT] if user_agent else None,
            ip_hash=hash_ip(ip, self._ip_key) if ip else None,
        )
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            return hit
        self._pending.append(hit)
        if self._thread is None:
            self._start()
        return hit

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Write every hit queued so far; the number written."""
        written = 0
        with self._write_lock:
            while self._pending:
                batch = [
                    self._pending.popleft() for _ in range(min(len(self._pending), self._max_batch))
                ]
                written += self._write(batch)
        return written

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="click-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:
                log.exception("writing clicks failed; retrying in a second")
                self._stop.wait(1.0)

    def _write(self, batch: list[Hit]) -> int:
        try:
            self._insert(batch)
        except Exception:
            # A link deleted (with its campaign) since it was cached fails the batch
            # (the driver's own error, from COPY): drop its hits and keep the rest.
            with self._engine.connect() as conn:
                alive = queries.existing_links(conn, {hit.link.link_id for hit in batch})
            kept = [hit for hit in batch if hit.link.link_id in alive]
            if len(kept) == len(batch):
                self._pending.extendleft(reversed(batch))
                raise
            self.dropped += len(batch) - len(kept)
            batch = kept
            self._insert(batch)
        self.written += len(batch)
        return len(batch)

    def _insert(self, batch: list[Hit]) -> None:
        with self._engine.begin() as conn:
            queries.insert_clicks(conn, [hit.row() for hit in batch])
