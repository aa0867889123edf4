"""Segment counting speed: N generated contacts with 10 events each on SQLite and
PostgreSQL, then the live count (with its carrier/province breakdown) of an RFM
segment and of the cart-abandonment preset, figures printed.

    .venv/bin/python bench/bench_segments.py --size 1000000
Target (issue: segments): with 1,000,000 contacts and 10,000,000 events, each count
under 3 s on PostgreSQL and under 10 s on SQLite.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from echelon.audience.regions import PROVINCES
from echelon.db.bulk import copy_rows
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.db.tables import contacts, events
from echelon.segments.models import definition_json
from echelon.segments.presets import get_preset
from echelon.segments.service import count_segment
from echelon.workspaces.service import create_workspace
from support import POSTGRES, scratch_postgres

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
EVENTS_PER_CONTACT = 10
BATCH = 50_000
# Recency + frequency + monetary + province: bought in the last 30 days, 3+ times and
# ¥1,000+ in the last 365 days, living in Guangdong.
RFM = {
    "and": [
        {"kind": "purchases", "measure": "days_since_last", "max": 30},
        {"kind": "purchases", "measure": "count", "days": 365, "min": 3},
        {"kind": "purchases", "measure": "total", "days": 365, "min": 1000},
        {"kind": "attribute", "field": "province", "op": "equals", "value": "广东"},
    ]
}
CARRIERS = ("china_mobile", "china_unicom", "china_telecom")
CATEGORIES = ("母婴", "数码", "服饰", "美妆", "食品")
# Guangdong weighs most, as in a southern shop's member base.
PROVINCE_NAMES = [official for official, _ in PROVINCES]
PROVINCE_WEIGHTS = [12 if name == "广东省" else 3 for name in PROVINCE_NAMES]


class Times:
    """Moments as the database's own text, a minute apart, put together from day and
    minute spellings: formatting ten million datetimes would take longer than loading."""

    def __init__(self, dialect: str, days: int) -> None:
        self.days = days
        midnight = NOW.replace(hour=0, minute=0) - timedelta(days=days)
        self._days = [(midnight + timedelta(days=d)).date().isoformat() for d in range(days + 1)]
        suffix = ".000000" if dialect == "sqlite" else "+00"
        self._minutes = [f" {m // 60:02d}:{m % 60:02d}:00{suffix}" for m in range(1440)]
        self._now = days * 1440 + NOW.hour * 60 + NOW.minute
        self.now = self.ago(0)

    def ago(self, minutes: int) -> str:
        at = self._now - minutes
        return self._days[at // 1440] + self._minutes[at % 1440]


def contact_rows(
    workspace_id: int, size: int, rng: random.Random, times: Times
) -> Iterator[list[Any]]:
    provinces = rng.choices(PROVINCE_NAMES, PROVINCE_WEIGHTS, k=size)
    birthdays = [(date(1960, 1, 1) + timedelta(days=d)).isoformat() for d in range(45 * 365)]
    batch: list[Any] = []
    for i in range(size):
        created = times.ago(rng.randrange(times.days * 1440))
        batch.append(
            (
                workspace_id,
                f"+86138{i:08d}",
                f"会员{i}",
                rng.choice(("male", "female", None)),
                birthdays[rng.randrange(len(birthdays))],
                provinces[i],
                None,
                rng.choice(CARRIERS),
                json.dumps({"会员等级": rng.choice(("金卡", "银卡", "普通"))}, ensure_ascii=False),
                created,
                created,
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def event_rows(
    workspace_id: int, first_id: int, size: int, rng: random.Random, times: Times
) -> Iterator[list[Any]]:
    """About ten events per contact over 18 months: 30% purchases, 30% cart adds."""
    batch: list[Any] = []
    key = 0
    ago = times.ago
    span = 540 * 1440
    for contact_id in range(first_id, first_id + size):
        for _ in range(rng.randrange(2 * EVENTS_PER_CONTACT + 1)):
            key += 1
            roll = rng.random()
            at = ago(rng.randrange(span))
            if roll < 0.3:
                row = (
                    "purchase",
                    at,
                    rng.randrange(2_000, 200_000),
                    f"o{key}",
                    CATEGORIES[rng.randrange(5)],
                    "D11" if rng.random() < 0.3 else None,
                )
            elif roll < 0.6:
                row = ("cart_add", at, None, None, CATEGORIES[rng.randrange(5)], None)
            else:
                row = ("app_open", at, None, None, None, None)
            batch.append((workspace_id, contact_id, *row, "{}", f"b{key:012d}", times.now))
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


EVENT_COLUMNS = (
    "workspace_id",
    "contact_id",
    "type",
    "occurred_at",
    "amount_fen",
    "order_id",
    "category",
    "coupon_code",
    "properties",
    "event_key",
    "created_at",
)
CONTACT_COLUMNS = (
    "workspace_id",
    "phone",
    "name",
    "gender",
    "birthday",
    "province",
    "city",
    "carrier",
    "attributes",
    "created_at",
    "updated_at",
)


def load(engine: Engine, size: int) -> int:
    """Generate the data (the same on every database); the workspace id."""
    workspace, _ = create_workspace(engine, slug="bench", name="bench")
    rng = random.Random(20261111)
    sqlite = engine.dialect.name == "sqlite"
    times = Times(engine.dialect.name, 3 * 365)
    with engine.connect() as conn:
        # The generated rows are consistent by construction: skip the per-row foreign
        # key checks (and build the indexes once, after the load) to load in minutes.
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        with conn.begin():
            if not sqlite:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            for batch in contact_rows(workspace.id, size, rng, times):
                copy_rows(conn, contacts, CONTACT_COLUMNS, batch)
            first_id = conn.execute(text("SELECT min(id) FROM contacts")).scalar_one()
            for index in events.indexes:
                index.drop(conn)
            for batch in event_rows(workspace.id, first_id, size, rng, times):
                copy_rows(conn, events, EVENT_COLUMNS, batch)
            for index in events.indexes:
                index.create(conn)
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
    if not sqlite:
        # What autovacuum does after a load (and index-only scans need the visibility
        # map); SQLite gets no ANALYZE, as nothing in echelon runs one.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return workspace.id


def timed(engine: Engine, workspace_id: int, definition: object) -> dict[str, Any]:
    runs = []
    total = 0
    for _ in range(3):
        started = time.perf_counter()
        counted = count_segment(engine, workspace_id=workspace_id, definition=definition, now=NOW)
        runs.append(time.perf_counter() - started)
        total = counted.total
    return {"members": total, "first_s": round(runs[0], 2), "best_s": round(min(runs), 2)}


def measure(url: str, size: int) -> dict[str, Any]:
    engine = create_db_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    workspace_id = load(engine, size)
    figures: dict[str, Any] = {"load_s": round(time.perf_counter() - started, 1)}
    with engine.connect() as conn:
        figures["events"] = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    figures["rfm"] = timed(engine, workspace_id, RFM)
    cart = get_preset("cart_abandon").definition()
    figures["cart_abandon"] = timed(engine, workspace_id, definition_json(cart))
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000, help="contacts")
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"contacts {args.size}, about {args.size * EVENTS_PER_CONTACT} events", flush=True)
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"sqlite     {measure(f'sqlite:///{tmp}/bench.db', args.size)}", flush=True)
    if args.skip_postgres:
        return
    with scratch_postgres(args.postgres) as url:
        postgres = measure(url, args.size)
    print(f"postgresql {postgres}", flush=True)


if __name__ == "__main__":
    main()
