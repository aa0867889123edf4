"""Planning in two processes: a forked child reads the audience, composes each text
and runs the gate, page by page, on a read-only connection of its own, while this
process bills each page it hands over and writes it (``PageWriter``).

Composing and gating a million recipients costs most of a core in Python, and so does
writing them on SQLite (on PostgreSQL, the server's checking and indexing does); side
by side on two cores a plan costs about the larger of the two, not their sum. Billing
stays here, in the order pages are written. The child is forked — before any thread
starts — with the ``Planner`` built here, and never touches this process's
connections; it leaves with ``os._exit`` so that nothing inherited is finalised twice.
Pages cross as typed JSON, never pickles, each distinct text once a page; the child
runs a page ahead at most, so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection as Pipe
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine

from echelon.campaigns import queries
from echelon.campaigns.planner import (
    HOLDOUT_ARM,
    ComposedPage,
    Decision,
    PlannedRow,
    PlannedText,
    Planner,
    Recipient,
)
from echelon.compliance.rules import BlockReason
from echelon.db.bulk import stored_time
from echelon.db.engine import create_db_engine
from echelon.errors import EchelonError
from echelon.tracking.links import Issued


class PlanningFailed(EchelonError):
    """The planning process stopped on an error: its code and message are this one's."""

    code = "planning_failed"

    def __init__(self, message: str, *, code: str | None = None, http_status: int = 500) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class JudgedPage:
    """A page composed and gated, to be billed."""

    page: ComposedPage
    decided: list[Decision]
    placeholders: dict[str, str]  # tracked-link target → its placeholder, so far


class PlanningProcess:
    """The pages of ``planner``'s audience after contact ``after_id``, composed and
    gated by a forked child, in order."""

    def __init__(self, engine: Engine, planner: Planner, *, after_id: int) -> None:
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        url = engine.url.render_as_string(hide_password=False)
        self._child = context.Process(
            target=_plan,
            args=(url, planner, after_id, sender),
            name="campaign-planner",
            daemon=True,
        )
        self._child.start()
        sender.close()

    def pages(self) -> Iterator[JudgedPage]:
        try:
            while True:
                message = json.loads(self._receiver.recv_bytes())
                if "rows" in message:
                    yield _page(message)
                elif "error" in message:
                    raise PlanningFailed(
                        message["error"], code=message["code"], http_status=message["status"]
                    )
                else:
                    return
        except EOFError as exc:
            raise PlanningFailed("规划短信的进程意外退出") from exc

    def __enter__(self) -> PlanningProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._receiver.close()
        if self._child.is_alive():
            self._child.terminate()
        self._child.join()


# Writes one page: its rows (and the tracked links and coupons they carry), planned for
# the contacts after ``after`` up to ``through``.
WritePage = Callable[[Connection, list[tuple[Any, ...]], Issued | None, int, int], None]
_Page = tuple[list[tuple[Any, ...]], Issued | None, int, int]


class PageWriter:
    """Writes pages in order, each in a transaction of its own; leaving the ``with``
    block waits until all are written and raises what failed.

    On PostgreSQL a thread with its own connection writes, so that this process bills
    and builds the next page while the server checks, indexes and stores this one —
    the thread mostly waits on the server, hardly competing for the GIL. On SQLite the
    page is written at once: SQLite's writer is this process, and a thread would only
    trade the GIL back and forth with it. At most two pages wait.
    """

    def __init__(self, engine: Engine, write_page: WritePage) -> None:
        self._engine = engine
        self._write_page = write_page
        self._failure: BaseException | None = None
        self._pages: queue.Queue[_Page | None] | None = None
        self._thread: threading.Thread | None = None
        if engine.dialect.name == "postgresql":
            self._pages = queue.Queue(maxsize=1)
            self._thread = threading.Thread(target=self._run, name="plan-writer", daemon=True)
            self._thread.start()

    def write(
        self, rows: list[tuple[Any, ...]], issued: Issued | None, after: int, through: int
    ) -> None:
        if self._pages is None:
            with self._engine.begin() as conn:
                self._write_page(conn, rows, issued, after, through)
            return
        self._raise_failure()
        self._pages.put((rows, issued, after, through))

    def __enter__(self) -> PageWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pages is not None and self._thread is not None:
            self._pages.put(None)
            self._thread.join()
        if error is None:
            self._raise_failure()

    def _run(self) -> None:
        assert self._pages is not None
        while (page := self._pages.get()) is not None:
            if self._failure is not None:
                continue  # a page failed: no later one may be written
            try:
                with self._engine.begin() as conn:
                    self._write_page(conn, *page)
            except BaseException as exc:  # raised in the planning thread
                self._failure = exc

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


def outbox_rows(
    engine: Engine, planner: Planner, rows: list[PlannedRow], *, now: datetime
) -> list[tuple[Any, ...]]:
    """``rows`` as ``queries.write_planned`` takes them, times as this database stores
    them, each queued text made its recipient's own (tracked link, coupon)."""
    request = planner.request
    tracking = request.tracking
    stored = stored_time(engine)
    workspace_id, campaign_id = request.workspace_id, request.campaign_id
    kind = request.template.kind
    ends = None if request.ends_at is None else stored(request.ends_at)
    written = stored(now)
    arms = [(arm.variant, arm.channel_id) for arm in planner.arms]
    due_at: dict[datetime, Any] = {}
    outbox: list[tuple[Any, ...]] = []
    for contact_id, phone, text, text_hash, parts, cost, reason, due, arm, *place in rows:
        stored_due = due_at.get(due)
        if stored_due is None:
            stored_due = due_at[due] = stored(due)
        variant, channel_id = (None, None) if arm == HOLDOUT_ARM else arms[arm]
        if reason is None and tracking is not None:
            text = tracking.personalise(text, contact_id)
        outbox.append(
            (
                workspace_id,
                contact_id,
                phone,
                campaign_id,
                kind,
                text,
                text_hash,
                parts,
                cost,
                "queued" if reason is None else "blocked",
                reason,
                stored_due,
                ends,
                written,
                written,
                variant,
                channel_id,
                *place,
            )
        )
    return outbox


def _plan(url: str, planner: Planner, after_id: int, sender: Pipe) -> None:
    code = 0
    try:
        # Reads only: on SQLite this process never waits for the writer, nor it for us.
        engine = create_db_engine(url, read_only=True)
        with engine.connect() as conn:
            queries.tune_for_pages(conn)
            page = planner.read_page(conn, after_id=after_id)
        while page is not None:
            composed = planner.compose(page)  # outside any transaction: SQLite's lock is free
            with engine.connect() as conn:
                queries.tune_for_pages(conn)
                decided = planner.judge(conn, composed) if composed.contacts else []
                page = planner.read_page(conn, after_id=composed.last_id)
            sender.send_bytes(_encoded(planner, composed, decided))
        sender.send_bytes(b"{}")
    except BrokenPipeError:
        code = 1  # the parent stopped listening: it is failing or done with us
    except BaseException as exc:  # reported to the parent, which raises it
        if isinstance(exc, EchelonError):
            error = {"error": exc.message, "code": exc.code, "status": exc.http_status}
        else:
            error = {"error": f"{type(exc).__name__}: {exc}", "code": None, "status": 500}
        with contextlib.suppress(OSError):
            sender.send_bytes(json.dumps(error, ensure_ascii=False).encode())
        code = 1
    finally:
        os._exit(code)


def _encoded(planner: Planner, page: ComposedPage, decided: list[Decision]) -> bytes:
    """A page as JSON: each distinct text, due time and (carrier, province) once, rows
    pointing at them, and the placeholders of tracked links issued so far."""
    texts: dict[PlannedText, int] = {}
    dues: dict[datetime, int] = {}
    places: dict[tuple[str | None, str | None], int] = {}
    rows = []
    for (contact_id, phone, *place), text, (reason, due), arm in zip(
        page.contacts, page.texts, decided, page.arms, strict=True
    ):
        text_index = texts.get(text)
        if text_index is None:
            text_index = texts[text] = len(texts)
        due_index = dues.get(due)
        if due_index is None:
            due_index = dues[due] = len(dues)
        key = (place[0], place[1])
        place_index = places.get(key)
        if place_index is None:
            place_index = places[key] = len(places)
        rows.append((contact_id, phone, text_index, reason, due_index, arm, place_index))
    tracking = planner.request.tracking
    message = {
        "rows": rows,
        "texts": list(texts),
        "dues": [due.isoformat() for due in dues],
        "places": list(places),
        "last_id": page.last_id,
        "skipped": page.skipped,
        "placeholders": {} if tracking is None else tracking.known_placeholders(),
    }
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


_REASONS: dict[str | None, BlockReason | None] = {None: None} | {r.value: r for r in BlockReason}


def _page(message: dict[str, Any]) -> JudgedPage:
    texts: list[PlannedText] = [
        (text, text_hash, parts, _REASONS[refusal])
        for text, text_hash, parts, refusal in message["texts"]
    ]
    dues = [datetime.fromisoformat(due) for due in message["dues"]]
    places = [(carrier, province) for carrier, province in message["places"]]
    contacts: list[Recipient] = []
    page_texts: list[PlannedText] = []
    decided: list[Decision] = []
    arms: list[int] = []
    for contact_id, phone, text, reason, due, arm, place in message["rows"]:
        contacts.append((contact_id, phone, *places[place]))
        page_texts.append(texts[text])
        decided.append((_REASONS[reason], dues[due]))
        arms.append(arm)
    page = ComposedPage(contacts, page_texts, arms, message["last_id"], message["skipped"])
    return JudgedPage(page, decided, message["placeholders"])
