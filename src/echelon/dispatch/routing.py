"""Pure routing rules: which channel takes which message.

A channel covers carriers (移动/联通/电信, or all) and has a priority (smaller first)
and a weight. A message goes to the best-priority group of channels that cover its
carrier and are up; inside the group a batch is spread by weight, exactly (smooth
weighted round robin: with weights 5/3/2 every ten messages go 5, 3 and 2 ways).
A message that already has a channel — one chosen when it was planned (a campaign's
or an A/B variant's preference), or one it was tried on — stays on it while that
channel covers it and is up, until it failed there ``failover_after`` times; then it
moves to another one if any covers it, otherwise it tries the same channel again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ALL = "all"


@dataclass(frozen=True, slots=True)
class Route:
    channel_id: int
    workspace_id: int
    carriers: frozenset[str]
    weight: int
    priority: int

    def covers(self, carrier: str | None) -> bool:
        return ALL in self.carriers or (carrier is not None and carrier in self.carriers)


@dataclass(frozen=True, slots=True)
class Routable:
    message_id: int
    workspace_id: int
    carrier: str | None
    last_channel_id: int | None  # the channel of the last attempt, if any
    attempts_on_last: int  # how many attempts that channel had


class Router:
    """Routes batches over a fixed set of channels, keeping each group's round-robin
    state between batches so small batches spread by weight too."""

    def __init__(self, routes: Iterable[Route], *, failover_after: int = 2) -> None:
        self._routes = sorted(routes, key=lambda r: (r.priority, r.channel_id))
        self._failover_after = failover_after
        self._current: dict[int, int] = {}  # channel id → smooth WRR credit

    @property
    def routes(self) -> Sequence[Route]:
        return self._routes

    def candidates(self, message: Routable) -> list[Route]:
        """The channels ``message`` may go to, best first, without the one it should
        leave (when another could take it)."""
        covering = [
            r
            for r in self._routes
            if r.workspace_id == message.workspace_id and r.covers(message.carrier)
        ]
        if (
            message.last_channel_id is not None
            and message.attempts_on_last >= self._failover_after
            and any(r.channel_id != message.last_channel_id for r in covering)
        ):
            covering = [r for r in covering if r.channel_id != message.last_channel_id]
        return covering

    def route(self, batch: Sequence[Routable]) -> dict[int, int | None]:
        """message id → channel id (None: no channel covers it)."""
        chosen: dict[int, int | None] = {}
        for message in batch:
            covering = self.candidates(message)
            if not covering:
                chosen[message.message_id] = None
                continue
            if (
                message.last_channel_id is not None
                and message.attempts_on_last < self._failover_after
                and any(r.channel_id == message.last_channel_id for r in covering)
            ):
                # Its own channel: a preference set when it was planned (a campaign's
                # or an A/B variant's), or a retry that has not yet earned a failover.
                chosen[message.message_id] = message.last_channel_id
                continue
            best = covering[0].priority
            chosen[message.message_id] = self._pick([r for r in covering if r.priority == best])
        return chosen

    def _pick(self, group: Sequence[Route]) -> int:
        if len(group) == 1:
            return group[0].channel_id
        total = 0
        winner = group[0]
        for route in group:
            credit = self._current.get(route.channel_id, 0) + route.weight
            self._current[route.channel_id] = credit
            total += route.weight
            if credit > self._current[winner.channel_id]:
                winner = route
        self._current[winner.channel_id] -= total
        return winner.channel_id
