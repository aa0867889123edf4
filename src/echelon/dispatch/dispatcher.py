"""The dispatcher: due messages out of the outbox, through the gate, to a channel, and
what comes back — receipts and replies — into the database.

One asyncio loop drives the channels; every database call runs on one worker thread
(claims on a second one on PostgreSQL), so the loop keeps serving sockets while a
batch is written, and on SQLite there is exactly one writer. A cycle:

1. every few seconds: renew the channel leases (taking over an expired one first
   settles what its last holder left ``submitting`` as ``unknown``), start or stop
   channel sessions, mark finished campaigns ``completed``;
2. claim a batch of due ``queued`` messages, re-run the gate (an opt-out may have come
   in since planning), route each to a channel, and commit them as ``submitting``;
3. submit each channel's share pipelined, then write every outcome in one batch:
   ``submitted`` with its provider id (or ended at once when its receipt came first),
   ``unknown``, a retry with backoff (failing over to another channel after
   ``failover_after`` tries), or ``failed`` with the reason;
4. receipts and replies arriving meanwhile are buffered and written every few
   milliseconds in one transaction per flush (on PostgreSQL on a thread of their own).
   Receipts are matched to their messages in memory (``correlation``) and stored
   already linked; one that overtook the write of its submit response ends the
   message in that write. The SMSC's ack waits until the receipt is stored.

Several batches are in flight at once (``max_in_flight``), so claiming and writing
overlap with the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, Engine, select

from echelon.channels.base import (
    AcceptedSink,
    BindFailed,
    Channel,
    Inbound,
    InboundReply,
    InboundSink,
    OutboundSms,
    Receipt,
    SubmitOutcome,
)
from echelon.channels.binds import SmppBinds
from echelon.channels.smpp import SmppChannel, SmppConfig
from echelon.compliance.gate import Candidate, Policy, judge
from echelon.compliance.policy import load_policy
from echelon.compliance.rules import BlockReason, Kind
from echelon.db.access import callback_tokens
from echelon.db.outbox import campaigns
from echelon.db.statistics import refresh_statistics
from echelon.dispatch import queries
from echelon.dispatch.correlation import Arrived, Correlator, Matched
from echelon.dispatch.inbound import (
    Ending,
    Linked,
    Sent,
    end_by_stored_receipts,
    end_sent,
    learn_invalid_numbers,
    link_early_receipts,
    record_receipts_in,
    record_reply,
    store_linked_receipts,
)
from echelon.dispatch.queries import ChannelRow, Claimed
from echelon.dispatch.routing import Routable, Router
from echelon.dispatch.send import SOLICITED_EXEMPT
from echelon.dispatch.settings import DispatchSettings, load_dispatch_settings

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0005
_SKEW_TOLERANCE = timedelta(milliseconds=1)  # a real clock: accepted_at is right as it is
P = ParamSpec("P")
R = TypeVar("R")
ChannelFactory = Callable[[ChannelRow, InboundSink, AcceptedSink], Channel]


def smpp_channel(row: ChannelRow, sink: InboundSink, accepted: AcceptedSink) -> Channel:
    fields = {k: v for k, v in row.config.items() if k != "binds"}
    config = SmppConfig.model_validate(fields | {"name": row.name})
    binds = int(row.config.get("binds", 1))
    if binds > 1:
        return SmppBinds(config, sink, binds=binds, on_accepted=accepted)
    return SmppChannel(config, sink, on_accepted=accepted)


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    holder: str = field(default_factory=default_holder)
    # Three batches of 2,000 in flight: fewer, larger transactions than 4 × 1,000 once
    # receipts stopped costing a write per batch (100,000 messages: PostgreSQL 4,340 vs
    # 3,990 msg/s, SQLite 4,670 vs 4,230).
    batch_size: int = 2_000
    max_in_flight: int = 3
    poll_interval: float = 0.2
    refresh_interval: float = 3.0
    lease_ttl: timedelta = timedelta(seconds=15)
    # Short: the SMSC's ack of each receipt waits for the flush that stores it, and an
    # SMSC slows down as unacknowledged receipts pile up (20 ms: 2,900 msg/s end to end
    # on PostgreSQL; 5 ms: 3,200).
    inbound_flush_interval: float = 0.005
    bind_timeout: float = 10.0


@dataclass
class DispatchStats:
    claimed: int = 0
    submitted: int = 0
    blocked: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    unknown: int = 0
    settled_unknown: int = 0
    settled_by_receipt: int = 0  # left in flight by a previous holder, receipt stored
    receipts: int = 0
    replies: int = 0
    opt_outs: int = 0


@dataclass
class _Workspace:
    policy: Policy
    settings: DispatchSettings


@dataclass(frozen=True, slots=True)
class _Refreshed:
    """What a refresh read and settled in its transaction."""

    channels: list[ChannelRow]  # enabled, any holder
    held: set[int]  # the channels this process holds the lease of
    settled_by_receipt: int
    settled_unknown: int
    workspaces: dict[int, _Workspace]
    throttles: dict[int, float]  # running campaign → messages a second
    callbacks: set[int]  # held channels with an HTTP callback token


@dataclass
class _Bucket:
    """A campaign's throttle: ``rate`` messages a second, a second's worth of burst."""

    rate: float
    tokens: float
    at: float

    def available(self, now: float) -> bool:
        return self.take(0, now) == 0 and self.tokens >= 1

    def take(self, wanted: int, now: float) -> int:
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        *,
        options: DispatchOptions | None = None,
        channel_factory: ChannelFactory = smpp_channel,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._options = options or DispatchOptions()
        self._factory = channel_factory
        self._clock = clock
        self._db_thread = ThreadPoolExecutor(1, thread_name_prefix="echelon-db")
        # On PostgreSQL claims run beside the writes of outcomes and receipts: they
        # touch only queued rows, the writes only rows already claimed. SQLite has one
        # writer whatever the threads, so there one thread does everything.
        self._claim_thread = (
            ThreadPoolExecutor(1, thread_name_prefix="echelon-claim")
            if engine.dialect.name == "postgresql"
            else self._db_thread
        )
        # Receipts and replies too: they touch only messages whose outcome is committed
        # (``correlation`` holds back those of open batches).
        self._inbound_thread = (
            ThreadPoolExecutor(1, thread_name_prefix="echelon-inbound")
            if engine.dialect.name == "postgresql"
            else self._db_thread
        )
        # Planner statistics refreshed beside the dispatch, never in its way.
        self._upkeep_thread = ThreadPoolExecutor(1, thread_name_prefix="echelon-upkeep")
        self._upkeep: asyncio.Future[list[str]] | None = None
        self._channels: dict[int, Channel] = {}
        self._rows: dict[int, ChannelRow] = {}
        self._all_routes: list[ChannelRow] = []
        self._router = Router(())
        self._workspaces: dict[int, _Workspace] = {}
        self._buckets: dict[int, _Bucket] = {}
        # What came in, each with the future its ack waits on (done once it is stored).
        self._inbound: list[tuple[int, Inbound, asyncio.Future[None]]] = []
        self._receipts: Correlator[asyncio.Future[None]] = Correlator()
        self._late: list[tuple[Sent, Ending]] = []  # receipts that came during a write
        # The flush of receipts and replies under way, if any (one at a time): a reply
        # being recorded may queue an auto-reply (on PostgreSQL beside the query that
        # decides whether anything is left to do), and a batch's outcome write may have
        # to see the receipts it stores.
        self._storing: asyncio.Future[int] | None = None
        # Receipts stored unlinked (the database path), per channel, and the channels an
        # HTTP provider may post receipts for: only there can a batch's early receipts
        # be in the database rather than in memory.
        self._strays: Counter[int] = Counter()
        self._callbacks: set[int] = set()
        self._unknown_on: set[int] = set()  # channels whose receipts may settle unknowns
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self._options.max_in_flight)
        self.stats = DispatchStats()

    # -- running ------------------------------------------------------------------------
    async def run(
        self,
        stop: asyncio.Event | None = None,
        *,
        until_idle: bool = False,
        receipt_wait: float = 30.0,
    ) -> DispatchStats:
        """Dispatch until ``stop`` is set — or, with ``until_idle``, until nothing is due,
        nothing is in flight, and every submitted message has its receipt (waiting at
        most ``receipt_wait`` seconds for the last receipts)."""
        stop = stop or asyncio.Event()
        # The loop and the database thread share the GIL: at the default 5 ms switch
        # interval every socket write waits behind a database batch (a convoy).
        sys.setswitchinterval(SWITCH_INTERVAL)
        flusher = asyncio.create_task(self._flush_inbound_forever(stop))
        last_refresh = -1e9
        idle_since: float | None = None
        try:
            while not stop.is_set():
                if time.monotonic() - last_refresh >= self._options.refresh_interval:
                    await self._refresh()
                    last_refresh = time.monotonic()
                claimed = 0
                if self._router.routes:
                    await self._slots.acquire()
                    try:
                        claimed = await self._claim_and_send()
                    finally:
                        if not claimed:
                            self._slots.release()
                if claimed:
                    idle_since = None
                    continue
                if until_idle and await self._finished(idle_since, receipt_wait):
                    break
                if idle_since is None:
                    idle_since = time.monotonic()
                await _sleep_or_stop(stop, self._options.poll_interval)
        finally:
            await self._shutdown(flusher)
        return self.stats

    async def _finished(self, idle_since: float | None, receipt_wait: float) -> bool:
        if self._in_flight or self._inbound or self._late or self._storing is not None:
            return False
        workspace_ids = {row.workspace_id for row in self._all_routes} or {0}
        left = await self._db(self._outstanding, workspace_ids, receipt_wait)
        if left.get("queued") or left.get("submitting"):
            return False
        if not left.get("submitted"):
            return True
        return idle_since is not None and time.monotonic() - idle_since >= receipt_wait

    def _outstanding(self, workspace_ids: set[int], horizon: float) -> dict[str, int]:
        # Retries due within the horizon are waited for, a campaign due tomorrow is not.
        soon = self._clock() + timedelta(seconds=max(horizon, 60.0))
        with self._engine.connect() as conn:
            return queries.outstanding(conn, workspace_ids=workspace_ids, now=soon)

    async def _shutdown(self, flusher: asyncio.Task[None]) -> None:
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        await self._flush_inbound()
        await self._db(self._release)
        self._claim_thread.shutdown(wait=True)
        self._inbound_thread.shutdown(wait=True)
        self._db_thread.shutdown(wait=True)
        if self._upkeep is not None:
            await asyncio.gather(self._upkeep, return_exceptions=True)
        self._upkeep_thread.shutdown(wait=True)

    def _release(self) -> None:
        with self._engine.begin() as conn:
            queries.release_leases(conn, holder=self._options.holder)
            queries.complete_campaigns(conn, now=self._clock())

    async def _db(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread, lambda: fn(*args, **kwargs))

    # -- channels and leases ----------------------------------------------------------
    async def _refresh(self) -> None:
        if self._upkeep is None or self._upkeep.done():
            self._upkeep = asyncio.get_running_loop().run_in_executor(
                self._upkeep_thread, _refresh_statistics, self._engine
            )
        fresh = await self._db(self._refresh_in_db)
        self._callbacks = fresh.callbacks
        self.stats.settled_by_receipt += fresh.settled_by_receipt
        self.stats.settled_unknown += fresh.settled_unknown
        self._workspaces = workspaces = fresh.workspaces
        self._all_routes = fresh.channels
        wanted = {row.id: row for row in fresh.channels if row.id in fresh.held}
        for channel_id in list(self._channels):
            if channel_id not in wanted or wanted[channel_id] != self._rows.get(channel_id):
                await self._channels.pop(channel_id).close()
        for channel_id, row in wanted.items():
            if channel_id in self._channels:
                continue
            channel = self._factory(row, self._sink(channel_id), self._accepted(channel_id))
            try:
                await channel.start()
            except BindFailed as exc:
                log.warning("channel %s: %s", row.name, exc)
                continue
            self._channels[channel_id] = channel
            self._rows[channel_id] = row
        self._router = Router(
            [self._rows[c].route for c in self._channels],
            failover_after=min((w.settings.failover_after for w in workspaces.values()), default=2),
        )
        now = time.monotonic()
        self._buckets = {
            campaign_id: self._buckets.get(campaign_id) or _Bucket(rate, rate, now)
            for campaign_id, rate in fresh.throttles.items()
        }

    def _refresh_in_db(self) -> _Refreshed:
        now = self._clock()
        with self._engine.begin() as conn:
            rows = queries.enabled_channels(conn)
            held, taken = queries.hold_leases(
                conn, holder=self._options.holder, wanted=rows, now=now, ttl=self._options.lease_ttl
            )
            # A previous holder may have stored a receipt and died before writing the
            # ending it kept in memory; the rest of what it left in flight is unknown.
            by_receipt = end_by_stored_receipts(conn, channel_ids=taken, now=now)
            unknown = queries.settle_abandoned(conn, channel_ids=taken, now=now)
            self._unknown_on |= queries.channels_with_unknown(conn, taken)
            queries.complete_campaigns(conn, now=now)
            workspaces = {
                workspace_id: _Workspace(
                    load_policy(conn, workspace_id), load_dispatch_settings(conn, workspace_id)
                )
                for workspace_id in {row.workspace_id for row in rows}
            }
            throttles = {
                campaign_id: float(rate)
                for campaign_id, rate in conn.execute(
                    select(campaigns.c.id, campaigns.c.throttle_per_second).where(
                        campaigns.c.status == "running",
                        campaigns.c.throttle_per_second.is_not(None),
                    )
                )
            }
            tokens = callback_tokens.c
            callbacks = set(
                conn.execute(
                    select(tokens.channel_id).where(tokens.channel_id.in_(held or {0}))
                ).scalars()
            )
        return _Refreshed(rows, held, by_receipt, unknown, workspaces, throttles, callbacks)

    def _sink(self, channel_id: int) -> InboundSink:
        """Buffer the item; the SMSC's ack waits until the write that stores it commits,
        so a crash never loses an acknowledged receipt (the SMSC delivers it again)."""

        def sink(item: Inbound) -> asyncio.Future[None]:
            stored = asyncio.get_running_loop().create_future()
            self._inbound.append((channel_id, item, stored))
            return stored

        return sink

    def _accepted(self, channel_id: int) -> AcceptedSink:
        def accepted(message_id: int, provider_id: str) -> None:
            self._receipts.responded(channel_id, provider_id, message_id)

        return accepted

    # -- claim, gate, route, submit ---------------------------------------------------
    async def _claim_and_send(self) -> int:
        """Claim one batch and start sending it; how many were claimed (0: none due)."""
        now = time.monotonic()
        skip = [c for c, bucket in self._buckets.items() if not bucket.available(now)]
        loop = asyncio.get_running_loop()
        batch, claimed = await loop.run_in_executor(self._claim_thread, self._claim, skip)
        if not claimed:
            return 0
        if batch:
            task = asyncio.create_task(self._send(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        else:
            self._slots.release()
        return claimed

    def _claim(self, skip_campaigns: Sequence[int]) -> tuple[dict[int, list[Claimed]], int]:
        now = self._clock()
        workspace_ids = {self._rows[c].workspace_id for c in self._channels}
        with _batch(self._engine) as conn:
            rows = queries.claim_due(
                conn,
                workspace_ids=workspace_ids,
                now=now,
                limit=self._options.batch_size,
                skip_campaigns=skip_campaigns,
            )
            rows = self._throttled(rows)
            if not rows:
                return {}, 0
            changes: list[dict[str, Any]] = []
            go: list[Claimed] = []
            for workspace_id, members in _by_workspace(rows).items():
                go.extend(self._judge(conn, workspace_id, members, now, changes))
            batch = self._route(go, now, changes)
            for shape in _by_keys(changes):
                queries.write_messages(conn, shape)
            for channel_id, routed in batch.items():
                queries.mark_submitting(
                    conn, channel_id=channel_id, message_ids=[r.id for r in routed], now=now
                )
        self.stats.claimed += len(rows)
        return batch, len(rows)

    def _throttled(self, rows: list[Claimed]) -> list[Claimed]:
        if not self._buckets:
            return rows
        wanted = Counter(r.campaign_id for r in rows if r.campaign_id in self._buckets)
        now = time.monotonic()
        granted = {c: self._buckets[c].take(n, now) for c, n in wanted.items()}
        kept = []
        for row in rows:
            if row.campaign_id in granted:
                if granted[row.campaign_id] <= 0:
                    continue
                granted[row.campaign_id] -= 1
            kept.append(row)
        return kept

    def _judge(
        self,
        conn: Connection,
        workspace_id: int,
        rows: list[Claimed],
        now: datetime,
        changes: list[dict[str, Any]],
    ) -> list[Claimed]:
        """The gate's second run; what may go now (others are blocked or moved)."""
        workspace = self._workspaces[workspace_id]
        verdicts = judge(
            conn,
            workspace_id=workspace_id,
            policy=workspace.policy,
            candidates=[
                Candidate(
                    r.contact_id,
                    r.phone,
                    cast(Kind, r.kind),
                    r.text_hash,
                    max(r.due_at, now),
                    r.expires_at,
                )
                for r in rows
            ],
            exclude_message_ids=[r.id for r in rows],
        )
        go = []
        for row, verdict in zip(rows, verdicts, strict=True):
            reason = verdict.reason
            if row.reply_id is not None and reason in SOLICITED_EXEMPT:
                reason = None
            if reason is None and row.expires_at is not None and now >= row.expires_at:
                reason = BlockReason.EXPIRED
            if reason is not None:
                self.stats.blocked[reason.value] += 1
                changes.append(
                    {"_id": row.id, "status": "blocked", "block_reason": reason.value,
                     "updated_at": now}
                )  # fmt: skip
            elif verdict.due_at > now:  # moved out of quiet hours: wait, still queued
                changes.append({"_id": row.id, "due_at": verdict.due_at, "updated_at": now})
            else:
                go.append(row)
        return go

    def _route(
        self, rows: list[Claimed], now: datetime, changes: list[dict[str, Any]]
    ) -> dict[int, list[Claimed]]:
        chosen = self._router.route(
            [Routable(r.id, r.workspace_id, r.carrier, r.channel_id, r.attempts) for r in rows]
        )
        covered_anywhere = {row.workspace_id for row in self._all_routes}
        batch: dict[int, list[Claimed]] = defaultdict(list)
        for row in rows:
            channel_id = chosen[row.id]
            if channel_id is not None:
                batch[channel_id].append(row)  # marked submitting in one statement
            elif self._no_route_anywhere(row, covered_anywhere):
                self.stats.failed["no_route"] += 1
                changes.append(
                    {"_id": row.id, "status": "failed", "error_code": "no_route",
                     "error_detail": "没有覆盖该号码运营商的可用通道", "done_at": now,
                     "updated_at": now}
                )  # fmt: skip
            else:  # another worker holds the channel that covers it: look again later
                changes.append({"_id": row.id, "due_at": now + timedelta(seconds=5)})
        return batch

    def _no_route_anywhere(self, row: Claimed, workspaces_with_channels: set[int]) -> bool:
        if row.workspace_id not in workspaces_with_channels:
            return True
        return not any(
            c.route.workspace_id == row.workspace_id and c.route.covers(row.carrier)
            for c in self._all_routes
        )

    async def _send(self, batch: dict[int, list[Claimed]]) -> None:
        message_ids = [row.id for rows in batch.values() for row in rows]
        awaiting: list[tuple[int, str, Sent]] = []
        strays = {channel_id: self._strays[channel_id] for channel_id in batch}
        try:
            results = await asyncio.gather(
                *(self._submit(channel_id, rows) for channel_id, rows in batch.items())
            )
            endings = self._receipts.endings(message_ids)  # receipts that came first
            relink = {
                channel_id
                for channel_id, seen in strays.items()
                if self._strays[channel_id] != seen or channel_id in self._callbacks
            }
            storing = self._storing
            if relink and storing is not None:
                # A receipt that took the database path during the batch may be one of
                # its own, come ahead of its response (over another bind): the lookup
                # must see it stored, or neither write would link the two.
                await asyncio.wait({storing})
            awaiting = await self._db(self._record_outcomes, results, endings, relink)
        except Exception:
            # The rows stay ``submitting``; the next lease holder settles them as unknown.
            log.exception("dispatch batch failed")
        finally:
            self._late += self._receipts.close(message_ids, awaiting)
            self._slots.release()

    async def _submit(
        self, channel_id: int, rows: list[Claimed]
    ) -> tuple[int, list[Claimed], list[SubmitOutcome], datetime]:
        channel = self._channels.get(channel_id)
        sent_at = self._clock()
        skew = sent_at - datetime.now(UTC)  # the dispatcher's clock may be a simulated one
        outbound = [OutboundSms(r.id, r.phone, r.text) for r in rows]
        if channel is None:  # closed since the claim: nothing left this process
            outcomes = [
                SubmitOutcome(r.id, False, error_code="not_connected", retryable=True) for r in rows
            ]
        else:
            outcomes = await channel.submit_many(outbound)
            if abs(skew) > _SKEW_TOLERANCE:
                outcomes = [
                    replace(o, accepted_at=o.accepted_at + skew) if o.accepted_at else o
                    for o in outcomes
                ]
        return channel_id, rows, outcomes, sent_at

    def _record_outcomes(
        self,
        results: Sequence[tuple[int, list[Claimed], list[SubmitOutcome], datetime]],
        endings: Mapping[int, Ending] | None = None,
        relink: Collection[int] | None = None,
    ) -> list[tuple[int, str, Sent]]:
        """Write the batch's outcomes — ended at once where a receipt came first
        (``endings``: stored already, known in memory, or stored unlinked on the
        channels in ``relink``, every channel when None); (channel, provider id,
        message) of each message now awaiting its receipt."""
        now = self._clock()
        changes: list[dict[str, Any]] = []
        invalid: dict[int, set[str]] = defaultdict(set)
        accepted: dict[int, dict[str, tuple[Claimed, dict[str, Any]]]] = defaultdict(dict)
        # Unknown, yet a receipt for the first part came (a later part's response was
        # lost): the SMSC has it, and the receipt says how it ended.
        lost: list[tuple[Claimed, dict[str, Any]]] = []
        for channel_id, rows, outcomes, sent_at in results:
            for row, outcome in zip(rows, outcomes, strict=True):
                change = self._outcome_change(row, outcome, now, sent_at)
                changes.append(change)
                if change["status"] == "unknown":
                    self._unknown_on.add(channel_id)
                    lost.append((row, change))
                if change["status"] == "submitted" and outcome.provider_id:
                    accepted[channel_id][outcome.provider_id] = (row, change)
                elif change["status"] == "failed":
                    invalid[row.workspace_id].add(row.phone)
        with _batch(self._engine, lookups=relink is None or bool(relink)) as conn:
            ended = dict(endings or {})
            for channel_id, by_provider in accepted.items():
                if relink is not None and channel_id not in relink:
                    continue
                # Receipts stored unlinked before the response (by another process, a
                # second bind, before a restart): linked now.
                linked = {provider_id: row.id for provider_id, (row, _) in by_provider.items()}
                stored = link_early_receipts(conn, channel_id=channel_id, linked=linked)
                ended = stored | ended
            # A message whose receipt came first is written submitted and ended at once,
            # and a 空号 among them counts as any other.
            submitted = [
                entry for by_provider in accepted.values() for entry in by_provider.values()
            ]
            for row, change in [*submitted, *lost]:
                if (ending := ended.get(row.id)) is None:
                    continue
                change |= {"status": ending.status, "error_code": ending.error_code,
                           "done_at": ending.done_at}  # fmt: skip
                if ending.status != "delivered" and ending.error_code:
                    invalid[row.workspace_id].add(row.phone)
            for shape in _by_keys(changes):
                queries.write_messages(conn, shape)
            for workspace_id, phones in invalid.items():
                workspace = self._workspaces.get(workspace_id)
                learn_invalid_numbers(
                    conn, workspace_id=workspace_id, phones=phones, now=now,
                    settings=workspace.settings if workspace else None,
                )  # fmt: skip
        awaiting = [
            (channel_id, provider_id, Sent(row.id, row.workspace_id, row.phone))
            for channel_id, by_provider in accepted.items()
            for provider_id, (row, change) in by_provider.items()
            if change["status"] == "submitted"
        ]
        return awaiting

    def _outcome_change(
        self, row: Claimed, outcome: SubmitOutcome, now: datetime, sent_at: datetime
    ) -> dict[str, Any]:
        base = {"_id": row.id, "updated_at": now}
        if outcome.ok:
            self.stats.submitted += 1
            return base | {
                "status": "submitted",
                "provider_id": outcome.provider_id,
                "submitted_at": outcome.accepted_at or sent_at,
                "error_code": None,
            }
        if outcome.unknown:
            self.stats.unknown += 1
            return base | {
                "status": "unknown",
                "error_code": outcome.error_code,
                "error_detail": (outcome.reason or "")[:500],
                "submitted_at": sent_at,
            }
        settings = self._workspaces[row.workspace_id].settings
        attempts = row.attempts + 1
        if outcome.retryable and attempts < settings.max_attempts:
            self.stats.retried += 1
            delay = timedelta(seconds=settings.retry_delay(attempts))
            return base | {"status": "queued", "due_at": now + delay,
                           "error_code": outcome.error_code}  # fmt: skip
        code = outcome.error_code or "failed"
        self.stats.failed[code] += 1
        return base | {
            "status": "failed",
            "error_code": code,
            "error_detail": (outcome.reason or "")[:500],
            "done_at": now,
        }

    # -- inbound ------------------------------------------------------------------------
    async def _flush_inbound_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self._options.inbound_flush_interval)
            await self._flush_inbound()

    async def _flush_inbound(self) -> None:
        if not self._inbound and not self._late:
            return
        now = self._clock()
        items, self._inbound = self._inbound, []
        late, self._late = self._late, []
        arrived: list[Arrived[asyncio.Future[None]]] = []
        others: list[tuple[int, Inbound]] = []
        waiting: list[asyncio.Future[None]] = []
        for channel_id, item, stored in items:
            if isinstance(item, Receipt) and item.final:
                arrived.append(Arrived(channel_id, item, now, stored))
            else:
                others.append((channel_id, item))
                waiting.append(stored)
        matched, rest = self._receipts.sort(arrived)
        self._strays.update(a.channel_id for a in rest)
        waiting += [m.arrived.token for m in matched] + [a.token for a in rest]
        loop = asyncio.get_running_loop()
        self._storing = storing = loop.run_in_executor(
            self._inbound_thread, self._record_inbound, matched, rest, others, late, now
        )
        try:
            new = await storing
        except Exception as exc:
            # Not acknowledged: the SMSC delivers them again (receipts are idempotent).
            log.exception("could not record %d receipts/replies", len(waiting))
            _settle(waiting, exc)
            self._late = late + self._late  # their receipts are stored: try again
            return
        finally:
            self._storing = None
        self.stats.receipts += new
        _settle(waiting)

    def _record_inbound(
        self,
        matched: Sequence[Matched[Any]],
        rest: Sequence[Arrived[Any]],
        others: Sequence[tuple[int, Inbound]],
        late: Sequence[tuple[Sent, Ending]],
        now: datetime,
    ) -> int:
        """Store receipts and replies; how many receipts were new."""
        receipts: dict[int, list[Receipt]] = defaultdict(list)
        replies: list[tuple[int, InboundReply]] = []
        for arrived in rest:
            receipts[arrived.channel_id].append(arrived.receipt)
        for channel_id, item in others:
            if isinstance(item, Receipt):
                receipts[channel_id].append(item)
            else:
                replies.append((channel_id, item))
        new = 0
        if matched or receipts or late:
            settings = {k: w.settings for k, w in self._workspaces.items()}
            # Receipts and endings known here are writes by id: no lookups unless some
            # receipts take the database path.
            with _batch(self._engine, lookups=bool(receipts)) as conn:
                linked = [
                    Linked(m.arrived.channel_id, self._rows[m.arrived.channel_id].workspace_id,
                           m.message_id, m.arrived.receipt, m.arrived.at)
                    for m in matched
                ]  # fmt: skip
                new, endings = store_linked_receipts(conn, linked)
                ended = [(m.sent, endings[m.message_id]) for m in matched if m.sent is not None]
                end_sent(conn, [*ended, *late], now=now, settings=settings)
                for channel_id, batch in receipts.items():
                    workspace_id = self._rows[channel_id].workspace_id
                    new += record_receipts_in(
                        conn,
                        channel_id=channel_id,
                        received=batch,
                        now=now,
                        reconcile=channel_id in self._unknown_on,
                        workspace_id=workspace_id,
                        settings=settings.get(workspace_id),
                    )
        for channel_id, reply in replies:
            row = self._rows[channel_id]
            outcome = record_reply(
                self._engine, workspace_id=row.workspace_id, channel_id=channel_id,
                reply=reply, now=now,
            )  # fmt: skip
            self.stats.replies += 1
            self.stats.opt_outs += outcome.opted_out
        return new


def _refresh_statistics(engine: Engine) -> list[str]:
    try:
        return refresh_statistics(engine, ("messages", "receipts"))
    except Exception:  # statistics are an optimisation: never stop dispatching for them
        log.exception("could not refresh planner statistics")
        return []


@contextlib.contextmanager
def _batch(engine: Engine, *, lookups: bool = True) -> Iterator[Connection]:
    """A transaction of the dispatcher's batched statements. On PostgreSQL, where it
    ``lookups`` (``= ANY`` over arrays of provider or message ids), each statement is
    planned for its own arrays: a plan cached while ``receipts`` and ``messages`` were
    small (a new installation's first campaign) scans them sequentially once they are
    not — measured at 50,000 messages: 0.9 s per receipt batch, half the dispatch time
    and four times the database's CPU. Writes by id from a JSON array need no such care
    (and skip the round trip)."""
    with engine.begin() as conn:
        if lookups and conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
        yield conn


def _by_workspace(rows: list[Claimed]) -> dict[int, list[Claimed]]:
    groups: dict[int, list[Claimed]] = defaultdict(list)
    for row in rows:
        groups[row.workspace_id].append(row)
    return groups


def _by_keys(changes: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Changes grouped by the columns they set: one executemany per shape."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for change in changes:
        groups[tuple(sorted(change))].append(change)
    return list(groups.values())


def _settle(futures: Sequence[asyncio.Future[None]], error: Exception | None = None) -> None:
    """Let the acks waiting on ``futures`` go: "stored", or a temporary error."""
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
            future.exception()  # retrieved: the channel answers "temporary error"


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
