"""Short-link redirects: uvicorn serving the redirect app, a load generator in its own
process, on SQLite and PostgreSQL; figures printed.

    .venv/bin/python bench/bench_redirect.py --size 60000 --rate 3000
Target (issue 6): at least 3,000 redirects/s with p99 under 20 ms, every click recorded.

``--size`` requests go at a fixed ``--rate`` (open loop: latency is measured from when
each request was due, so a stall cannot hide itself), spread at random over size/3
links — most codes are hit more than once, a third of the hits are a code's first and
go to the database. Then as many again as fast as the server answers (``max``). The
server is stopped (its shutdown flushes the click queue) and the clicks are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from echelon.db.bulk import copy_rows
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.db.tables import contacts
from echelon.db.tracking import clicks, links
from echelon.tracking.links import allocate_link_codes
from echelon.workspaces.service import create_workspace
from support import POSTGRES, scratch_postgres

AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CONNECTIONS = 64


def prepare(url: str, count: int) -> list[str]:
    """A workspace with ``count`` contacts, each with one short link; the codes."""
    engine = create_db_engine(url)
    upgrade(engine)
    workspace, _ = create_workspace(engine, slug="bench", name="bench")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        copy_rows(
            conn,
            contacts,
            ("workspace_id", "phone", "created_at", "updated_at"),
            [(workspace.id, f"+86138{i:08d}", now, now) for i in range(count)],
        )
        ids = conn.execute(select(contacts.c.id).order_by(contacts.c.id)).scalars().all()
        codes = allocate_link_codes(conn, count, 7)
        copy_rows(
            conn,
            links,
            ("workspace_id", "code", "contact_id", "target_url", "created_at"),
            [
                (workspace.id, code, contact, f"https://shop.example/sale?u={contact}", now)
                for code, contact in zip(codes, ids, strict=True)
            ],
        )
    engine.dispose()
    return codes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory"),
            "echelon.api.redirect:app_from_environment",
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log"),
            *("--log-level", "warning", "--backlog", "4096"),
        ],
        env={**os.environ, "ECHELON_DATABASE_URL": url},
    )
    for _ in range(300):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.05)
    server.kill()
    raise RuntimeError("the redirect server did not start")


def run_generator(port: int, codes: list[str], size: int, rate: float, closed: bool) -> Any:
    """The load generator, as a process of its own (this script with --generate)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(codes, handle)
    try:
        done = subprocess.run(
            [
                *(sys.executable, __file__, "--generate", handle.name),
                *("--port", str(port), "--size", str(size), "--rate", str(rate)),
                *(("--closed",) if closed else ()),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    return json.loads(done.stdout)


async def generate(port: int, codes: list[str], size: int, rate: float, closed: bool) -> Any:
    import uvloop

    uvloop.install()
    chooser = random.Random(6)
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while (item := await queue.get()) is not None:
            due, request = item
            started = time.perf_counter() if closed else due
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:") and int(line[15:]):
                    await reader.readexactly(int(line[15:]))
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    def request() -> bytes:
        code = chooser.choice(codes)
        return (
            f"GET /{code} HTTP/1.1\r\nHost: s.echelon.cn\r\nUser-Agent: {AGENT}\r\n\r\n"
        ).encode()

    workers = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    started = time.perf_counter()
    for i in range(size):
        due = started + i / rate
        if not closed and (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        queue.put_nowait((due, request()))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    seconds = time.perf_counter() - started
    latencies.sort()

    def at(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "requests": size,
        "redirects": statuses.get(302, 0),
        "per_s": round(size / seconds),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
    }


def measure(url: str, size: int, rate: float) -> dict[str, Any]:
    codes = prepare(url, max(size // 3, 1))
    port = free_port()
    server = start_server(url, port)
    try:
        steady = run_generator(port, codes, size, rate, closed=False)
        burst = run_generator(port, codes, size, rate, closed=True)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)
    engine = create_db_engine(url)
    with engine.connect() as conn:
        recorded = conn.execute(select(func.count()).select_from(clicks)).scalar_one()
    engine.dispose()
    sent = steady["requests"] + burst["requests"]
    return {
        "links": len(codes),
        "rate": steady,
        "max": {k: burst[k] for k in ("per_s", "p50_ms", "p99_ms")},
        "clicks_recorded": f"{recorded}/{sent}",
        "target_met": steady["per_s"] >= 3_000 * 0.98 and steady["p99_ms"] < 20,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=3_000)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--closed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        with open(args.generate, encoding="utf-8") as handle:
            codes = json.load(handle)
        figures = asyncio.run(generate(args.port, codes, args.size, args.rate, args.closed))
        print(json.dumps(figures))
        return
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            figures = measure(f"sqlite:///{tmp}/bench.db", args.size, args.rate)
            print(f"sqlite     {figures}", flush=True)
            failed |= (
                figures["clicks_recorded"].split("/")[0] != figures["clicks_recorded"].split("/")[1]
            )
        if not args.skip_postgres:
            with scratch_postgres(args.postgres) as url:
                figures = measure(url, args.size, args.rate)
            print(f"postgresql {figures}", flush=True)
            failed |= (
                figures["clicks_recorded"].split("/")[0] != figures["clicks_recorded"].split("/")[1]
            )
    if failed:
        sys.exit("not every click was recorded")


if __name__ == "__main__":
    main()
