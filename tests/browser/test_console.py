"""The console in a real browser (Debian's Chromium, headless) against a live
``echelon serve``: a marketer's day from import to report, the reviewer's approval,
the owner's settings — every page screenshotted for review."""

from __future__ import annotations

import re

from console_browser import LiveServer, members_csv, settled, shot, signed_in
from playwright.sync_api import Browser, Page, expect


def _number(page: Page, selector: str) -> int:
    return int(page.locator(selector).inner_text().replace(",", "").strip())


def _owner_prepares_the_workspace(browser: Browser, server: LiveServer) -> None:
    """Signature, an all-day sending window (the test runs at any hour), a channel."""
    context, page = signed_in(browser, server, "boss@example.com")
    expect(page).to_have_title(re.compile("概览"))
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    shot(page, "01-dashboard-empty")

    page.goto("/settings?tab=content")
    page.get_by_label("默认签名").fill("星河商城")
    page.locator("#save-content").click()
    expect(page.locator("#done")).to_be_visible()
    shot(page, "02-settings-content")

    page.goto("/settings?tab=sending")
    page.get_by_label("开始", exact=True).fill("00:00")
    page.get_by_label("结束", exact=True).fill("00:00")
    page.locator("#save-sending").click()
    expect(page.locator("#done")).to_be_visible()
    shot(page, "03-settings-sending")

    page.goto("/settings?tab=channels")
    form = page.locator("form[action='/settings/channels/add']")
    form.get_by_label("通道", exact=True).fill("模拟网关")
    form.get_by_label("主机").fill(server.simulator_host)
    form.get_by_label("端口").fill(str(server.simulator_port))
    form.get_by_label("账号 (system_id)").fill("echelon")
    form.get_by_label("密码").fill("secret")
    form.get_by_role("button", name="添加 SMPP 通道").click()
    expect(page.locator("#done")).to_be_visible()
    expect(page.get_by_role("cell", name="模拟网关")).to_be_visible()
    shot(page, "04-settings-channels")

    for tab in ("thresholds", "users", "keys", "webhooks"):
        page.goto(f"/settings?tab={tab}")
        shot(page, f"05-settings-{tab}")
    context.close()


def test_a_marketer_imports_segments_writes_gets_approval_sends_and_reads_the_report(
    browser: Browser, server: LiveServer
) -> None:
    _owner_prepares_the_workspace(browser, server)
    context, page = signed_in(browser, server, "mei@example.com")

    # Import: upload, map (recognised headers), consent source, progress, rejects.
    csv_path, good, vip_consenting, bad = members_csv(server.directory)
    page.get_by_role("link", name="联系人", exact=True).click()
    page.get_by_role("link", name="导入联系人").click()
    page.get_by_label("选择 CSV 或 Excel（XLSX）文件").set_input_files(str(csv_path))
    shot(page, "10-import-upload")
    page.get_by_role("button", name="上传并预览").click()
    expect(page.get_by_label("手机号", exact=True)).to_have_value("phone")
    page.get_by_label("同意来源").fill("store_signup")
    shot(page, "11-import-map")
    page.get_by_role("button", name="开始导入").click()
    expect(page.locator("#import-progress")).to_have_attribute("data-state", "done")
    assert _number(page, "#import-imported") == good
    assert _number(page, "#import-rejected") == bad
    shot(page, "12-import-done")
    with page.expect_download() as download:
        page.get_by_role("link", name="下载被拒绝的行").click()
    rejects = download.value.path().read_text(encoding="utf-8-sig")
    assert "12345" in rejects and "行号" in rejects

    page.get_by_role("link", name="查看联系人").click()
    page.get_by_placeholder("手机号或姓名").fill("会员01")
    page.get_by_role("button", name="搜索").click()
    expect(page.get_by_role("cell", name="会员01")).to_be_visible()
    shot(page, "13-contacts")
    page.locator("table a").first.click()
    expect(page.get_by_text("store_signup")).to_be_visible()
    shot(page, "14-contact-profile")

    # Segment: consenting VIPs, the live count following the conditions.
    page.get_by_role("link", name="分群", exact=True).click()
    shot(page, "20-segments")
    page.get_by_role("link", name="新建分群").click()
    expect(page.locator("#segment-count")).to_be_visible()
    consenting = _number(page, "#segment-count")
    assert consenting > vip_consenting
    page.get_by_role("button", name="添加条件").click()
    expect(page.locator(".condition")).to_have_count(2)
    settled(page)
    page.locator(".condition").nth(1).get_by_label("条件类型").select_option("tag")
    expect(page.locator(".condition").nth(1)).to_have_attribute("data-kind", "tag")
    settled(page)
    page.locator(".condition").nth(1).get_by_label("标签（逗号分隔）").fill("vip")
    expect(page.locator("#segment-count")).to_have_text(str(vip_consenting))
    page.locator("input[name=name]").fill("VIP 会员")
    shot(page, "21-segment-builder")
    page.locator("#save-segment").click()
    expect(page.locator("#segment-count")).to_have_text(str(vip_consenting))
    segment_url = page.url
    shot(page, "22-segment-view")

    # Template: the counter follows the typing; then submit for review.
    page.get_by_role("link", name="模板", exact=True).click()
    page.get_by_role("link", name="新建模板").click()
    page.get_by_label("模板名称").fill("双11预热")
    body = page.get_by_label("正文")
    body.press_sequentially("{{ name }}您好，双11预售开启")
    expect(page.locator("#counter-parts")).to_have_text("1")
    short = _number(page, "#counter-characters")
    body.press_sequentially(
        "，全场满300减50，全网最低价，会员再享9折，点击领取优惠券，先到先得，活动仅限本周末两天"
    )
    expect(page.locator("#counter-characters")).not_to_have_text(str(short))
    assert _number(page, "#counter-characters") > short
    expect(page.locator("#counter-parts")).to_have_text("2")
    expect(page.locator("#composed mark.block")).to_have_count(1)
    expect(page.locator("#lint-hits")).to_contain_text("最低价")
    shot(page, "30-template-lint")
    body.fill("{{ name }}您好，双11预售开启，全场满300减50，会员再享9折")
    expect(page.locator("#composed mark")).to_have_count(0)
    expect(page.locator("#counter-parts")).to_have_text("1")
    page.locator("#save-template").click()
    expect(page.locator("#done")).to_be_visible()
    page.get_by_label("联系人手机号").fill("13800000000")
    page.get_by_role("button", name="预览", exact=True).click()
    expect(page.locator("#preview-text")).to_contain_text("【星河商城】会员00您好")
    page.locator("#submit-review").click()
    expect(page.locator("#done")).to_contain_text("已提交审核")
    expect(page.locator("#approve")).to_have_count(0)  # a marketer cannot approve
    shot(page, "31-template-submitted")

    # The reviewer, a second person, approves it from the review queue.
    reviewer, review = signed_in(browser, server, "rui@example.com")
    expect(review).to_have_url(re.compile("/review$"))
    expect(review.get_by_role("link", name="双11预热")).to_be_visible()
    shot(review, "32-review-queue")
    review.get_by_role("button", name="审核通过").click()
    expect(review.locator("#done")).to_contain_text("已审核通过")
    shot(review, "33-template-approved")
    reviewer.close()

    # Campaign: wizard, preview before the start button, live progress to delivered.
    page.goto(segment_url)
    page.get_by_role("link", name="向这个分群发活动").click()
    page.get_by_label("活动名称").fill("双11 VIP 预热")
    page.get_by_label("模板", exact=True).select_option("双11预热")
    shot(page, "40-campaign-wizard")
    page.locator("#create-campaign").click()
    expect(page.locator("#preview-audience")).to_have_text(str(vip_consenting))
    expect(page.locator("#preview-planned")).to_have_text(str(vip_consenting))
    shot(page, "41-campaign-preview")
    page.once("dialog", lambda dialog: dialog.accept())
    # Starting plans the campaign before the page moves on: allow for a loaded machine.
    page.locator("#start-campaign").click(timeout=60_000)
    expect(page.locator("#progress")).to_be_visible()
    shot(page, "42-campaign-sending")
    expect(page.locator("#progress-delivered")).to_have_text(str(vip_consenting), timeout=60_000)
    expect(page.locator("#progress")).to_have_attribute("data-status", "completed")
    shot(page, "43-campaign-delivered")

    page.locator("#open-report").click()
    expect(page.locator("#report-delivered")).to_have_text(str(vip_consenting))
    expect(page.locator("#report-carrier table")).to_contain_text("中国移动")
    expect(page.locator("#report-province canvas").first).to_be_visible()
    shot(page, "44-campaign-report")
    with page.expect_download() as export:
        page.get_by_role("link", name="导出短信记录（CSV）").click()
    assert "【星河商城】" in export.value.path().read_text(encoding="utf-8-sig")

    # The rest of the day: campaigns, inbox (replies from the simulator), dashboard.
    page.get_by_role("link", name="群发活动", exact=True).click()
    shot(page, "45-campaigns")
    page.get_by_role("link", name="收件箱", exact=True).click()
    expect(page.locator("#replies")).to_contain_text("退订", timeout=20_000)
    shot(page, "50-inbox")
    # Journeys: one copied from a built-in, seen as a flow, a timing changed.
    page.get_by_role("link", name="自动旅程", exact=True).click()
    shot(page, "60-journeys")
    page.locator("form[action='/journeys/builtin']").filter(
        has=page.locator("input[value=cart_abandonment]")
    ).get_by_role("button").click()
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#journey-flow .step")).to_have_count(4)
    shot(page, "61-journey-flow")
    page.locator("input[name='s.wait24h.hours']").fill("12")
    page.locator("#save-journey").click()
    expect(page.locator("#done")).to_contain_text("新版本")
    expect(page.locator("[data-step=wait24h]")).to_contain_text("12 小时")
    shot(page, "62-journey-edited")
    page.get_by_role("link", name="概览", exact=True).click()
    expect(page.locator(".kpi .value").first).to_have_text(str(vip_consenting))
    shot(page, "70-dashboard")
    page.goto("/?lang=en")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"
    shot(page, "71-dashboard-english")
    page.get_by_role("link", name="Templates", exact=True).click()
    expect(page.get_by_role("heading", name="Templates")).to_be_visible()
    context.close()


def test_roles_and_forgery_are_refused(browser: Browser, server: LiveServer) -> None:
    context, page = signed_in(browser, server, "rui@example.com")
    # A reviewer sees no campaigns or settings of the owner's.
    expect(page.get_by_role("link", name="群发活动", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="联系人", exact=True)).to_have_count(0)
    page.goto("/contacts")
    expect(page.locator(".alert.error")).to_contain_text("没有权限")
    shot(page, "80-refused")
    # A form posted without the session's CSRF token is refused.
    answer = page.request.post("/templates/approve", form={"name": "双11预热"})
    assert answer.status == 403
    assert "CSRF" in answer.text()
    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(re.compile("/login$"))
    page.goto("/settings")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    shot(page, "81-sign-in")
    context.close()
