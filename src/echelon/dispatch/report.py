"""What became of a workspace's (or one campaign's) messages once sent: the figures the
demo and ``campaigns status`` print. The analytics package has the full reports."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from echelon.db.outbox import messages

SENT = ("submitted", "delivered", "undelivered", "expired", "rejected", "unknown")
NOT_DELIVERED = ("failed", "undelivered", "expired", "rejected")


def campaign_outcome(
    conn: Connection, workspace_id: int, campaign_id: int | None = None
) -> dict[str, Any]:
    m = messages.c
    scope = [m.workspace_id == workspace_id, m.kind == "marketing"]
    if campaign_id is not None:
        scope.append(m.campaign_id == campaign_id)
    by_status: dict[str, int] = {
        status: int(n)
        for status, n in conn.execute(
            select(m.status, func.count()).where(*scope).group_by(m.status)
        )
    }
    failed = {
        code or status: int(n)
        for status, code, n in conn.execute(
            select(m.status, m.error_code, func.count())
            .where(*scope, m.status.in_(NOT_DELIVERED))
            .group_by(m.status, m.error_code)
        )
    }
    latencies = sorted(
        (done - sent).total_seconds() * 1000
        for sent, done in conn.execute(
            select(m.submitted_at, m.done_at).where(*scope, m.status == "delivered")
        )
    )
    cost_e4 = conn.execute(
        select(func.coalesce(func.sum(m.cost_e4), 0)).where(*scope, m.status.in_(SENT))
    ).scalar_one()
    return {
        "sent": sum(by_status.get(status, 0) for status in SENT),
        "delivered": by_status.get("delivered", 0),
        "failed": failed,
        "awaiting_receipt": by_status.get("submitted", 0),
        "unknown": by_status.get("unknown", 0),
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
        "cost_yuan": str((Decimal(int(cost_e4)) / 10_000).quantize(Decimal("0.01"))),
    }


def _percentile(ordered: list[float], pct: int) -> int | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return round(ordered[index])
