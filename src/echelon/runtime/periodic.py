"""Background work that runs a pass every so often until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


async def every(
    seconds: float, work: Callable[[], object], stop: asyncio.Event, *, what: str
) -> None:
    """Run ``work`` on a thread (it may block on the database), then wait ``seconds``
    or until ``stop`` is set; a failed pass is logged and the next one tried."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(work)
        except Exception:
            log.exception("%s failed; retrying next round", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
