"""The contact tools in a real browser against the live ``echelon serve``: a marketer
changes a contact's tags on its profile, then finds the number's messages in the
message log by filtering — each page screenshotted. The test keeps to a workspace of
its own, so the other browser tests' counts never see its data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from console_browser import PASSWORD, LiveServer, shot
from playwright.sync_api import Browser, expect

from echelon.access.models import Principal, Role
from echelon.access.sending import send_message
from echelon.access.service import create_user
from echelon.audience.records import upsert_contacts
from echelon.db.engine import create_db_engine
from echelon.workspaces.service import create_workspace, update_settings

SLUG = "tools"
EMAIL = "lan@example.com"
PHONE = "13700001111"


def _prepare(server: LiveServer) -> None:
    """A workspace with a marketer, a tagged contact and service messages to two numbers
    (one of them the contact's)."""
    engine = create_db_engine(server.database_url)
    now = datetime.now(UTC)
    try:
        workspace, _ = create_workspace(engine, slug=SLUG, name="工具测试店")
        update_settings(engine, workspace_id=workspace.id, signature="星河商城")
        create_user(
            engine, workspace_id=workspace.id, email=EMAIL, name="小蓝", role="marketer",
            password=PASSWORD, now=now,
        )  # fmt: skip
        upsert_contacts(
            engine,
            workspace_id=workspace.id,
            records=[{"phone": PHONE, "name": "蓝先生", "tags": ["vip", "老客"], "consent": True}],
            consent_source="store_signup",
            list_name=None,
            now=now,
        )
        sender = Principal(workspace.id, "user", 0, EMAIL, frozenset(), Role.MARKETER)
        for phone, body, minutes in ((PHONE, "您的订单已发货", 5), ("13700002222", "取件码 8", 1)):
            send_message(
                engine, principal=sender, phone=phone, body=body, kind="service",
                idempotency_key=None, keep=timedelta(hours=1), now=now - timedelta(minutes=minutes),
            )  # fmt: skip
    finally:
        engine.dispose()


def test_a_marketer_edits_tags_and_filters_the_message_log(
    browser: Browser, server: LiveServer
) -> None:
    _prepare(server)
    context = browser.new_context(
        base_url=server.url, viewport={"width": 1400, "height": 900}, locale="zh-CN"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("工作区").fill(SLUG)
    page.get_by_label("邮箱").fill(EMAIL)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.locator(".topbar .who")).to_contain_text(EMAIL)

    # The profile: add two tags in one go, remove one, each effective on the page.
    page.get_by_role("link", name="联系人", exact=True).click()
    page.get_by_placeholder("手机号或姓名").fill("蓝先生")
    page.get_by_role("button", name="搜索").click()
    page.get_by_role("link", name=f"+86{PHONE}").click()
    tags = page.locator("#tags")
    expect(tags.locator("[data-tag]")).to_have_count(2)
    shot(page, "90-contact-tags-before")
    page.get_by_label("添加标签").fill("会员，双11")
    page.locator("#tag-add").get_by_role("button", name="添加标签").click()
    expect(page.locator("#done")).to_have_text("标签已更新。")
    expect(tags.locator("[data-tag]")).to_have_count(4)
    page.get_by_role("button", name="删除标签「vip」").click()
    expect(page.locator("#done")).to_have_text("标签已更新。")
    expect(tags.locator("[data-tag]")).to_have_count(3)
    expect(tags.locator("[data-tag=vip]")).to_have_count(0)
    expect(tags).to_contain_text("双11")
    shot(page, "91-contact-tags-after")

    # The message log: both messages, then only the contact's, by its number.
    page.get_by_role("link", name="短信记录", exact=True).click()
    log = page.locator("#message-log")
    expect(log.locator("tr[data-id]")).to_have_count(2)
    expect(log.locator("tr[data-id]").first).to_contain_text("取件码 8")  # newest first
    shot(page, "92-message-log")
    page.locator("#log-filter").get_by_label("手机号").fill(PHONE)
    page.locator("#log-filter").get_by_label("状态").select_option(label="全部状态")
    page.locator("#log-filter").get_by_role("button", name="搜索").click()
    expect(page).to_have_url(re.compile(rf"phone={PHONE}"))
    expect(log.locator("tr[data-id]")).to_have_count(1)
    expect(log).to_contain_text("【星河商城】您的订单已发货")
    expect(log).not_to_contain_text("取件码 8")
    expect(page.locator("#export-csv")).to_have_attribute("href", re.compile(rf"phone={PHONE}"))
    shot(page, "93-message-log-filtered")
    context.close()
