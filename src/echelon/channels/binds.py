"""One SMPP account over several binds: the channel setting ``binds``.

Carriers count the window per session and often grant an account several binds, so a
channel with ``binds = N`` opens N sessions of the same account and spreads each batch
over those that are bound. The account's ``tps`` is shared evenly among them; each keeps
the configured ``window``. Receipts and replies may arrive on any of the sessions (the
SMSC picks one): all of them go through one ``InboundHandler``, so a reply whose parts
came over different sessions is still reassembled, and the counts are the account's.

Starting is all or nothing: a bind refused at start (a carrier allowing fewer binds
than configured answers ``ESME_RALYBND`` or ``ESME_RBINDFAIL``) closes the others and
raises ``BindFailed`` naming the bind, so a wrong setting shows at once instead of
running on fewer sessions than planned. Once started, each session reconnects on its
own, as a single-bind channel does.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Sequence

from echelon.channels.base import (
    AcceptedSink,
    BindFailed,
    ChannelHealth,
    InboundSink,
    OutboundSms,
    SubmitOutcome,
)
from echelon.channels.smpp import SmppChannel, SmppConfig, inbound_handler

# Their SmppChannel reads them from the one handler all sessions share: counted once.
_SHARED_COUNTERS = ("sink_errors", "mo_parts_pending")


class SmppBinds:
    """``base.Channel`` over ``binds`` sessions of one SMPP account."""

    def __init__(
        self,
        config: SmppConfig,
        on_inbound: InboundSink,
        *,
        binds: int,
        on_accepted: AcceptedSink | None = None,
    ) -> None:
        if binds < 1:
            raise ValueError("binds must be at least 1")
        self.name = config.name
        self._config = config
        inbound = inbound_handler(config, on_inbound)
        share = _tps_share(config, binds)
        self.sessions = tuple(
            SmppChannel(share, on_inbound, on_accepted=on_accepted, inbound=inbound)
            for _ in range(binds)
        )

    async def start(self) -> None:
        results = await asyncio.gather(
            *(session.start() for session in self.sessions), return_exceptions=True
        )
        failed = [(n, r) for n, r in enumerate(results, 1) if isinstance(r, BaseException)]
        if not failed:
            return
        await asyncio.gather(
            *(s.close() for s, r in zip(self.sessions, results, strict=True) if r is None)
        )
        number, error = failed[0]
        if not isinstance(error, BindFailed):
            raise error
        raise BindFailed(
            f"{self.name}: bind {number} of {len(self.sessions)} failed "
            f"({len(failed)} failed in all): {error.message}"
        ) from error

    async def submit_many(self, batch: Sequence[OutboundSms]) -> list[SubmitOutcome]:
        if not batch:
            return []
        # The bound sessions share the batch; with none bound (all reconnecting) every
        # session takes a share and waits for its bind as a single-bind channel does.
        live = [s for s in self.sessions if s.state == "bound"] or list(self.sessions)
        size = math.ceil(len(batch) / len(live))
        shares = [batch[start : start + size] for start in range(0, len(batch), size)]
        results = await asyncio.gather(
            *(session.submit_many(share) for session, share in zip(live, shares, strict=False))
        )
        return [outcome for result in results for outcome in result]

    async def close(self) -> None:
        await asyncio.gather(*(session.close() for session in self.sessions))

    def health(self) -> ChannelHealth:
        parts = [session.health() for session in self.sessions]
        first = parts[0]
        bound = [h for h in parts if h.state == "bound"]
        states = {h.state for h in parts}
        state = next(s for s in ("bound", "connecting", "idle", "closed") if s in states)
        counters: Counter[str] = Counter()
        for h in parts:
            counters.update({k: v for k, v in h.counters.items() if k not in _SHARED_COUNTERS})
        shared = {k: first.counters[k] for k in _SHARED_COUNTERS if k in first.counters}
        return ChannelHealth(
            name=self.name,
            state=state,
            bind_mode=first.bind_mode,
            window=sum(h.window for h in parts),
            outstanding=sum(h.outstanding for h in parts),
            tps_limit=self._config.tps,
            submitted_parts=sum(h.submitted_parts for h in parts),
            accepted_parts=sum(h.accepted_parts for h in parts),
            rejected_parts=sum(h.rejected_parts for h in parts),
            unknown_parts=sum(h.unknown_parts for h in parts),
            # One handler behind every session: its counts are the account's already.
            receipts=first.receipts,
            replies=first.replies,
            reconnects=sum(h.reconnects for h in parts),
            enquire_links_answered=sum(h.enquire_links_answered for h in parts),
            malformed_inbound=first.malformed_inbound,
            last_error=next((h.last_error for h in parts if h.last_error), None),
            bound_since=min((h.bound_since for h in bound if h.bound_since), default=None),
            counters={**counters, **shared, "binds": len(parts), "binds_bound": len(bound)},
        )


def _tps_share(config: SmppConfig, binds: int) -> SmppConfig:
    """Each session's config: the account's ``tps`` (and burst) split evenly."""
    if config.tps is None or binds == 1:
        return config
    burst = config.tps_burst
    return config.model_copy(
        update={
            "tps": config.tps / binds,
            "tps_burst": None if burst is None else max(1, burst // binds),
        }
    )
