"""The campaign and template tools in a real browser against a live ``echelon serve``:
a draft campaign's channel changed in its editor, and a lint suggestion applied to the
template being written with one click — screenshotted for review."""

from __future__ import annotations

from datetime import UTC, datetime

from console_browser import PASSWORD, LiveServer, settled, shot, signed_in
from playwright.sync_api import Browser, expect

from echelon.access.service import create_user
from echelon.campaigns.service import create_campaign
from echelon.content.review import approve_template, submit_template
from echelon.content.templates import create_template
from echelon.db.engine import create_db_engine
from echelon.dispatch.channel_admin import add_channel, smpp_config
from echelon.workspaces.service import create_workspace, update_settings

CAMPAIGN = "工具 · 周末草稿"
CHANNELS = ("工具-主通道", "工具-备用通道")
SLUG = "campaign-tools"
EMAIL = "mei@example.com"


def _draft_campaign_with_channels(server: LiveServer) -> None:
    """A workspace of its own (its channels must never carry another test's messages)
    with a marketer, a signature, two channels (the simulator's), an approved template
    and a draft campaign using it."""
    engine = create_db_engine(server.database_url)
    now = datetime.now(UTC)
    try:
        workspace, _ = create_workspace(engine, slug=SLUG, name="活动工具测试店")
        workspace_id = workspace.id
        create_user(
            engine, workspace_id=workspace_id, email=EMAIL, name="小梅", role="marketer",
            password=PASSWORD, now=now,
        )  # fmt: skip
        update_settings(engine, workspace_id=workspace_id, signature="星河商城")
        for name in CHANNELS:
            config = {
                "host": server.simulator_host,
                "port": server.simulator_port,
                # An account of its own: an SMSC hands a receipt to any session bound
                # with the account that sent the message, so channels sharing one
                # would take each other's receipts.
                "system_id": f"tools{CHANNELS.index(name) + 1}",
                "password": "secret",
            }
            add_channel(
                engine, workspace_id=workspace_id, name=name, config=smpp_config(config),
                carriers=["all"], weight=1, priority=0, now=now,
            )  # fmt: skip
        create_template(
            engine, workspace_id=workspace_id, name="工具-周末", kind="marketing",
            body="{{ name | default('会员') }}您好，周末上新", actor="mei@example.com", now=now,
        )  # fmt: skip
        submit_template(engine, workspace_id=workspace_id, name="工具-周末", actor="mei", now=now)
        approve_template(engine, workspace_id=workspace_id, name="工具-周末", actor="rui", now=now)
        create_campaign(
            engine, workspace_id=workspace_id, name=CAMPAIGN, template="工具-周末",
            audience={"kind": "consenting"}, send_at=None, ends_at=None,
            throttle_per_second=None, budget_yuan=None, now=now, channel=CHANNELS[0],
        )  # fmt: skip
    finally:
        engine.dispose()


def test_a_marketer_changes_a_drafts_channel_and_applies_a_lint_suggestion(
    browser: Browser, server: LiveServer
) -> None:
    _draft_campaign_with_channels(server)
    context, page = signed_in(browser, server, EMAIL, workspace=SLUG)

    # The draft's editor: its stored settings, a channel chosen instead of the first.
    page.goto("/campaigns")
    page.get_by_role("link", name=CAMPAIGN).click()
    expect(page.locator("#campaign-channel")).to_have_text(CHANNELS[0])
    page.locator("#edit-campaign").click()
    channel = page.get_by_label("发送通道")
    expect(channel).to_have_value(CHANNELS[0])
    page.get_by_label("每秒最多条数").fill("20")
    channel.select_option(CHANNELS[1])
    shot(page, "90-campaign-edit")
    page.locator("#save-campaign").click()
    expect(page.locator("#done")).to_contain_text("草稿已保存")
    expect(page.locator("#campaign-channel")).to_have_text(CHANNELS[1])
    expect(page.locator("#preview-audience")).to_be_visible()
    shot(page, "91-campaign-edited")
    page.locator("#edit-campaign").click()
    expect(page.get_by_label("发送通道")).to_have_value(CHANNELS[1])
    expect(page.get_by_label("每秒最多条数")).to_have_value("20")

    # The template editor: a blocked word, its suggestion applied with one click, and
    # the live counter following at once.
    page.goto("/templates/new")
    page.get_by_label("模板名称").fill("工具-夸张")
    body = page.get_by_label("正文")
    body.press_sequentially("{{ name }}您好，本店最佳好物限时特卖")
    # The counter redraws after each keystroke: wait for the one drawn for the whole
    # body, settled, so that no later redraw moves the button away under the click.
    expect(page.locator("#composed")).to_contain_text("好物限时特卖")
    settled(page)
    expect(page.locator("#composed mark.block")).to_have_count(1)
    expect(page.locator("#lint-hits")).to_contain_text("最佳")
    before = page.locator("#counter-characters").inner_text()
    shot(page, "92-template-lint-suggestion")
    page.locator("#lint-hits .apply-suggestion").first.click()
    expect(body).to_have_value("{{ name }}您好，本店优选好物限时特卖")
    expect(page.locator("#composed mark")).to_have_count(0)
    expect(page.locator("#lint-hits")).to_have_count(0)
    expect(page.locator("#composed")).to_contain_text("本店优选好物")
    expect(page.locator("#counter-characters")).to_have_text(before)  # 最佳 → 优选
    settled(page)
    shot(page, "93-template-suggestion-applied")
    page.locator("#save-template").click()
    expect(page.locator("#done")).to_be_visible()
    expect(page.get_by_label("正文")).to_have_value("{{ name }}您好，本店优选好物限时特卖")
    context.close()
