"""Fixtures of the browser tests: Debian's Chromium and a Chinese font (installed here
when missing), a live ``echelon serve`` over SQLite in a temporary directory with the
SMSC simulator beside it, and the directory every page's screenshot is written to."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from console_browser import PASSWORD, SCREENSHOTS, LiveServer
from playwright.sync_api import Browser, Playwright, sync_playwright

from echelon.access.service import create_user
from echelon.channels.simulator import LogNormalDelay, SimulatorConfig, SimulatorProcess
from echelon.channels.simulator.process import free_port
from echelon.db.engine import create_db_engine
from echelon.db.migrate import upgrade
from echelon.workspaces.service import create_workspace

CHROMIUM = Path("/usr/bin/chromium")
CHINESE_FONT = "fonts-wqy-microhei"
_INSTALL_LOCK = Path(tempfile.gettempdir()) / "echelon-chromium-install.lock"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    shots = sorted(SCREENSHOTS.glob("*.png")) if SCREENSHOTS.is_dir() else []
    if shots:
        terminalreporter.write_sep("-", f"console screenshots: {SCREENSHOTS} ({len(shots)} pages)")


def _has_chinese_font() -> bool:
    found = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


def _install_missing() -> None:
    """``apt-get install -y`` Chromium, and a Chinese font so screenshots are readable,
    when missing — one worker at a time. Without Chromium the run fails loudly."""
    with _INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = [] if CHROMIUM.exists() else ["chromium"]
        if not _has_chinese_font():
            wanted.append(CHINESE_FONT)
        if not wanted:
            return
        log = []
        for command in (
            ["apt-get", "install", "-y", *wanted],
            ["apt-get", "update"],
            ["apt-get", "install", "-y", *wanted],
        ):
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                check=False,
            )
            log.append(f"$ {' '.join(command)} → {done.returncode}\n{done.stderr[-1500:]}")
            if done.returncode == 0 and command[1] == "install":
                break
        if not CHROMIUM.exists():
            pytest.fail("Chromium is missing and could not be installed:\n" + "\n".join(log))
        if not _has_chinese_font():
            warnings.warn(f"no Chinese font ({CHINESE_FONT}): screenshots show boxes", stacklevel=1)


# Module scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, and any later test of this worker that calls asyncio.run()
# would fail ("cannot be called from a running event loop").
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists() or not _has_chinese_font():
        _install_missing()
    with sync_playwright() as playwright:
        chromium = _launch(playwright)
        yield chromium
        chromium.close()


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
    )


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``echelon serve`` (dispatcher included) over a fresh SQLite database with an
    owner, a marketer and a reviewer, and the SMSC simulator to add as a channel."""
    directory = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{directory / 'echelon.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    workspace, _ = create_workspace(engine, slug="default", name="星河商城")
    now = datetime.now(UTC)
    for email, name, role in (
        ("boss@example.com", "老板", "owner"),
        ("mei@example.com", "小美", "marketer"),
        ("rui@example.com", "小瑞", "reviewer"),
    ):
        create_user(
            engine,
            workspace_id=workspace.id,
            email=email,
            name=name,
            role=role,
            password=PASSWORD,
            now=now,
        )
    engine.dispose()
    simulator = SimulatorProcess(
        SimulatorConfig(
            seed=7,
            delivery_success_ratio=1.0,
            receipt_delay=LogNormalDelay(median_ms=100, p95_ms=400),
            reply_delay=LogNormalDelay(median_ms=100, p95_ms=300),
            reply_suffixes={"0777": "TD", "1314": "请问周末营业吗？"},
        )
    )
    simulator.start()
    port = free_port("127.0.0.1")
    log_path = directory / "serve.log"
    env = {**os.environ, "ECHELON_DATABASE_URL": url, "ECHELON_WORKSPACE": "default"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "echelon", "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    live = LiveServer(
        url=f"http://127.0.0.1:{port}",
        database_url=url,
        workspace_id=workspace.id,
        simulator_host=simulator.host,
        simulator_port=simulator.port,
        directory=directory,
    )
    try:
        _wait_until_up(live.url, process, log_path)
        yield live
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        simulator.kill()
        simulator.close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"echelon serve exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"echelon serve not up after 30 s:\n{log.read_text(errors='replace')[-3000:]}")
