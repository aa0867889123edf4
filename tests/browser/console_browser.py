"""Helpers of the browser tests: the live server's coordinates, signing in, taking a
page's screenshot, and a member file to import."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

PASSWORD = "correct horse battery"
SCREENSHOTS = Path(
    os.environ.get("ECHELON_SCREENSHOTS", Path(tempfile.gettempdir()) / "echelon-screenshots")
)


@dataclass(frozen=True)
class LiveServer:
    url: str
    database_url: str
    workspace_id: int
    simulator_host: str
    simulator_port: int
    directory: Path


def signed_in(
    browser: Browser, server: LiveServer, email: str, workspace: str | None = None
) -> tuple[BrowserContext, Page]:
    """A new browser context signed in as ``email`` (of ``workspace``, by default the
    server's) through the sign-in form."""
    context = browser.new_context(
        base_url=server.url, viewport={"width": 1400, "height": 900}, locale="zh-CN"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(f"{server.url}/login?next=%2F")
    if workspace is not None:
        page.get_by_label("工作区").fill(workspace)
    page.get_by_label("邮箱").fill(email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.locator(".topbar .who")).to_contain_text(email)
    return context, page


def settled(page: Page) -> None:
    """Wait until htmx has swapped, settled and wired up what it last loaded (a person
    is never faster than its 20 ms settle; a robot is)."""
    page.wait_for_function(
        "!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot of ``page`` under SCREENSHOTS, charts drawn."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(400)  # ECharts animates its first frame in
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def members_csv(directory: Path) -> tuple[Path, int, int, int]:
    """A member export as shops send it (Chinese headers, GBK-free UTF-8 with BOM):
    the file, its good rows, how many of those are VIPs consenting, and bad rows."""
    provinces = ["广东", "浙江", "江苏", "北京", "上海", "四川"]
    prefixes = ["138", "186", "189", "150", "177", "192"]
    lines = ["手机号,姓名,性别,省份,城市,标签,营销同意,会员等级"]
    vip_consenting = 0
    good = 0
    for i in range(24):
        number = f"{prefixes[i % len(prefixes)]}{i:04d}{(i * 37) % 10000:04d}"
        if i == 5:
            number = "13912340777"  # answers TD: an opt-out in the inbox
        if i == 4:
            number = "15012341314"  # asks a question
        vip = i % 3 != 0
        consent = "否" if i % 8 == 7 else "是"
        tags = "vip|老客" if vip else "老客"
        gender = "女" if i % 2 else "男"
        lines.append(
            f"{number},会员{i:02d},{gender},{provinces[i % len(provinces)]},,{tags},{consent},"
            f"{'金' if vip else '银'}"
        )
        good += 1
        if vip and consent == "是":
            vip_consenting += 1
    lines.append("12345,坏号码,女,广东,,vip,是,金")
    lines.append("1380013800a,又一个坏号码,男,浙江,,vip,是,银")
    path = directory / "会员导出.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return path, good, vip_consenting, 2
