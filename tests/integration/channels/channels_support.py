"""Helpers for the channel tests (a uniquely named module: test dirs have no packages)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from echelon.channels.base import Inbound, InboundReply, Receipt
from echelon.channels.simulator import LogNormalDelay, SimulatorConfig, SimulatorProcess
from echelon.channels.smpp import SmppConfig

T = TypeVar("T")

FAST_RECEIPTS = LogNormalDelay(median_ms=5, p95_ms=20)
FAST_REPLIES = LogNormalDelay(median_ms=5, p95_ms=20)
LONG_REPLY = (
    "您好，我想了解一下会员日的活动细则：是否全场商品都参加八折？"
    "另外请问周末门店几点开门、几点关门？谢谢！如果以后活动太多，请帮我退订营销短信。😀"
)  # 72 UTF-16 units (the emoji is a surrogate pair): two UCS-2 parts


def run(coro: Coroutine[Any, Any, T], timeout: float = 45.0) -> T:
    """Run one test coroutine on a fresh loop, failing it rather than hanging CI."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def sim_config(**settings: Any) -> SimulatorConfig:
    base: dict[str, Any] = {
        "seed": 42,
        "delivery_success_ratio": 1.0,
        "receipt_delay": FAST_RECEIPTS,
        "reply_delay": FAST_REPLIES,
        "reject_suffixes": {"0000": "0x0B"},
        "empty_suffixes": ["4444"],
        "reply_suffixes": {"88": LONG_REPLY, "77": "TD"},
    }
    return SimulatorConfig.model_validate(base | settings)


def channel_config(sim: SimulatorProcess, **settings: Any) -> SmppConfig:
    base: dict[str, Any] = {
        "name": "sim",
        "host": sim.host,
        "port": sim.port,
        "system_id": "echelon",
        "password": "secret",
        "source_addr": "1069",
        "reconnect_initial": 0.1,
        "reconnect_max": 0.5,
    }
    return SmppConfig.model_validate(base | settings)


class Inbox:
    """The channel's sink: collects receipts and replies; tests await a condition on it."""

    def __init__(self) -> None:
        self.items: list[Inbound] = []
        self._changed = asyncio.Event()

    def __call__(self, item: Inbound) -> None:
        self.items.append(item)
        self._changed.set()

    @property
    def receipts(self) -> list[Receipt]:
        return [item for item in self.items if isinstance(item, Receipt)]

    @property
    def replies(self) -> list[InboundReply]:
        return [item for item in self.items if isinstance(item, InboundReply)]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a state that raises no event (a health counter); never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
