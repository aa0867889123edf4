"""The send API's latency: POST /api/v1/messages against a real ``echelon serve`` (uvicorn,
with the dispatcher in the same process sending to the SMSC simulator over a healthy
channel), driven by a load generator in a process of its own.

    .venv/bin/python bench/bench_send_api.py --size 5000
    .venv/bin/python bench/bench_send_api.py --size 500          # CI smoke
Target (issue: HTTP API): p99 under 50 ms while the channel is healthy. Every request
carries its own Idempotency-Key and goes to its own number, so each is a real send:
the gate, the outbox row, the idempotency record and the audit line.

Two loads, both printed: ``open`` sends at a steady ``--rate`` whatever the answers
(latency counted from when each request was due, so a slow answer cannot hide the
ones queued behind it) — the target's figure; ``closed`` keeps ``--concurrency``
requests in flight, as fast as the server answers — its capacity, where latency is
simply concurrency / throughput. On PostgreSQL the dispatcher runs as the deployment
guide runs it, ``echelon worker`` beside ``echelon serve --no-workers``
(``--same-process`` runs it inside the server, as on SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from echelon.access.service import create_key
from echelon.channels.simulator import LogNormalDelay, SimulatorConfig, SimulatorProcess, free_port
from echelon.compliance.policy import save_settings
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.db.outbox import messages
from echelon.dispatch.channel_admin import add_channel, smpp_config
from echelon.workspaces.service import create_workspace, update_settings
from support import POSTGRES, scratch_postgres

TARGET_P99_MS = 50.0


def prepare(url: str, sim: SimulatorProcess) -> str:
    """A workspace that may send at any hour over a channel to ``sim``; an API key."""
    engine = create_db_engine(url)
    upgrade(engine)
    workspace, _ = create_workspace(engine, slug="default", name="bench")
    now = datetime.now(UTC)
    update_settings(engine, workspace_id=workspace.id, signature="星河商城")
    with engine.begin() as conn:
        save_settings(conn, workspace.id, {"quiet_start": "00:00", "quiet_end": "00:00"})
    add_channel(
        engine, workspace_id=workspace.id, name="sim",
        config=smpp_config({"host": sim.host, "port": sim.port, "system_id": "bench",
                            "password": "pw"}),
        carriers=["all"], weight=1, priority=0, now=now,
    )  # fmt: skip
    secret = create_key(
        engine, workspace_id=workspace.id, name="bench", scopes=["messages:send"],
        rate_per_minute=1_000_000, created_by="bench", holder=None, now=now,
    ).secret  # fmt: skip
    engine.dispose()
    return secret


async def generate(
    base: str, key: str, size: int, concurrency: int, first: int = 0, rate: float = 0
) -> dict[str, Any]:
    """The load generator: ``size`` sends, each timed; request ``i`` goes to number and
    key ``first + i``. ``rate`` > 0: open loop, request ``i`` due at ``i / rate`` s and
    timed from then; otherwise closed loop over ``concurrency`` connections."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {key}"}
    connections = concurrency if rate <= 0 else max(concurrency, 64)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def send(i: int, due: float) -> None:
            body = {"phone": f"139{i:08d}", "body": f"您的验证码是 {i % 1_000_000:06d}",
                    "kind": "verification"}  # fmt: skip
            answer = await client.post(
                "/api/v1/messages", json=body, headers={"Idempotency-Key": f"bench-{i}"}
            )
            latencies.append((time.perf_counter() - due) * 1000)
            if answer.status_code != 202 or answer.json()["status"] != "queued":
                reason = f"{answer.status_code} {answer.text[:80]}"
                failures[reason] = failures.get(reason, 0) + 1

        started = time.perf_counter()
        if rate > 0:
            sending: list[asyncio.Task[None]] = []
            for n, i in enumerate(range(first, first + size)):
                due = started + n / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                sending.append(asyncio.create_task(send(i, due)))
            await asyncio.gather(*sending)
        else:
            counter = iter(range(first, first + size))

            async def worker() -> None:
                for i in counter:
                    await send(i, time.perf_counter())

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "load": f"open {rate:g}/s" if rate > 0 else f"closed x{concurrency}",
        "requests": size,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(size / elapsed),
        "p50_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(0.90 * (len(ordered) - 1))], 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
        "max_ms": round(ordered[-1], 2),
        "failures": failures,
    }


def measure(
    url: str, size: int, concurrency: int, warmup: int, rate: float, *, separate_worker: bool
) -> dict[str, dict[str, Any]]:
    """Both loads against one server, after ``warmup`` unmeasured requests."""
    fast = LogNormalDelay(median_ms=5, p95_ms=20)
    config = SimulatorConfig(seed=7, delivery_success_ratio=1.0, receipt_delay=fast)
    with SimulatorProcess(config) as sim, tempfile.TemporaryDirectory() as tmp:
        key = prepare(url, sim)
        port = free_port()
        echelon = [sys.executable, "-m", "echelon", "--database-url", url]
        serve = [*echelon, "serve", "--port", str(port)]
        processes = [_start([*serve, "--no-workers"] if separate_worker else serve, tmp)]
        if separate_worker:
            processes.append(_start([*echelon, "worker"], tmp))
        base = f"http://127.0.0.1:{port}"
        results: dict[str, dict[str, Any]] = {}
        try:
            _wait_up(base, processes[0])
            sent = 0
            if warmup:
                _generate_in_process(base, key, warmup, concurrency, first=10_000_000)
            for load, load_rate in (("open", rate), ("closed", 0.0)):
                results[load] = _generate_in_process(
                    base, key, size, concurrency, first=sent, rate=load_rate
                )
                sent += size
            results["open"]["delivered"] = _wait_delivered(url, sent + warmup)
        finally:
            for process in processes:
                process.send_signal(signal.SIGINT)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    return results


def _start(command: list[str], cwd: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ | {"ECHELON_API_COOKIE_SECURE": "false"},
    )


def _generate_in_process(
    base: str, key: str, size: int, concurrency: int, *, first: int, rate: float = 0
) -> dict[str, Any]:
    """Run the generator as its own process, so client and server do not share a GIL."""
    args = [sys.executable, __file__, "--generate", base, key, str(size), str(concurrency)]
    args += [str(first), str(rate)]
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=3600)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _wait_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            problem = server.stderr.read().decode(errors="replace") if server.stderr else ""
            raise RuntimeError(f"echelon serve exited: {problem}")
        try:
            if httpx.get(f"{base}/api/v1/openapi.json").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("echelon serve did not answer within 60 s")


def _wait_delivered(url: str, expected: int, timeout: float = 60) -> int:
    """Messages the dispatcher (in the server's process) got delivered, waiting for all."""
    engine = create_db_engine(url)
    deadline = time.monotonic() + timeout
    delivered = 0
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            delivered = int(
                conn.execute(
                    select(func.count()).where(messages.c.status == "delivered")
                ).scalar_one()
            )
        if delivered >= expected:
            break
        time.sleep(0.5)
    engine.dispose()
    return delivered


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        base, key, size, concurrency = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        first, rate = int(sys.argv[6]), float(sys.argv[7])
        result = asyncio.run(generate(base, key, size, concurrency, first, rate))
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=5_000, help="requests measured per load")
    parser.add_argument("--rate", type=float, default=50, help="requests a second of the open load")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="connections in use at once (closed load)"
    )
    parser.add_argument("--warmup", type=int, default=100, help="requests sent first, unmeasured")
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="on PostgreSQL too, run the dispatcher inside echelon serve",
    )
    args = parser.parse_args()
    print(f"command: {' '.join([sys.executable, *sys.argv])}", flush=True)
    ok = True
    runs: list[tuple[str, Any]] = []
    loads = (args.size, args.concurrency, args.warmup, args.rate)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            url = f"sqlite:///{tmp}/bench.db"
            runs.append(("sqlite", lambda: measure(url, *loads, separate_worker=False)))
        if not args.skip_postgres:

            def on_postgres() -> dict[str, dict[str, Any]]:
                with scratch_postgres(args.postgres) as url:
                    return measure(url, *loads, separate_worker=not args.same_process)

            runs.append(("postgresql", on_postgres))
        for name, run in runs:
            results = run()
            for load, result in results.items():
                verdict = ""
                if load == "open":
                    met = "met" if result["p99_ms"] < TARGET_P99_MS else "NOT met"
                    verdict = f"  (target p99 < {TARGET_P99_MS:.0f} ms: {met})"
                print(f"{name:<10} {result}{verdict}", flush=True)
                ok = ok and not result["failures"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
