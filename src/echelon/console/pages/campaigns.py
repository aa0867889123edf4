"""Campaigns: the wizard (audience, template, channel, schedule and window, throttle,
budget) and the same settings edited while a draft, the preview before the start
button (size, blocked by reason, cost, sample texts), live progress while sending, an
A/B test decided early, and the report with charts by hour, channel, carrier and
province, and its exports."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from echelon.analytics.exports import export_messages
from echelon.analytics.reports import campaign_report
from echelon.campaigns.metering import yuan
from echelon.campaigns.models import Campaign
from echelon.campaigns.rollout import decide_campaign, experiment_report
from echelon.campaigns.service import (
    campaign_status,
    cancel_campaign,
    create_campaign,
    draft_campaign,
    edit_campaign,
    list_campaigns,
    pause_campaign,
    preview_campaign,
    resume_campaign,
    start_campaign,
)
from echelon.console import charts
from echelon.console.format import light
from echelon.console.forms import parse_amount, parse_count, parse_local
from echelon.console.pages.content import message_test_form
from echelon.console.web import Console, Page
from echelon.content.templates import get_template, list_templates
from echelon.dispatch.channel_admin import list_channels
from echelon.errors import EchelonError, InvalidInput
from echelon.segments.service import get_segment, list_segments

AUDIENCES: Final = ("consenting", "segment", "tag", "list", "all")
GROUPINGS: Final = ("hour", "channel", "carrier", "province")
FINAL: Final = frozenset({"completed", "cancelled"})
DONE_MESSAGES: Final = frozenset({"edited", "decided"})
WAITING: Final = ("planned", "queued", "submitting")
_MEDIA: Final = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def progress_of(status: dict[str, Any]) -> dict[str, Any]:
    """What the progress panel shows of a campaign's status counts."""
    counts: dict[str, int] = status["by_status"]
    total = sum(counts.values())
    waiting = sum(counts.get(s, 0) for s in WAITING)
    return {
        "total": total,
        "waiting": waiting,
        "settled": total - waiting,
        "share": (total - waiting) / total if total else 0.0,
        "delivered": counts.get("delivered", 0),
        "counts": counts,
    }


def register(router: APIRouter, console: Console) -> None:
    @router.get("/campaigns")
    def campaigns(request: Request) -> Response:
        page = console.page(request, "campaigns:read")
        return console.render(
            request,
            "campaigns/list.html",
            {"campaigns": list_campaigns(console.engine, workspace_id=page.workspace_id)},
            page=page,
        )

    @router.get("/campaigns/new")
    def new(request: Request, segment: str = "") -> Response:
        page = console.page(request, "campaigns:write")
        chosen = {"audience": "segment", "segment": segment} if segment else {}
        return _wizard(console, request, page, chosen, None)

    @router.post("/campaigns/create")
    def create(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        form = console.form_text(request)
        try:
            created = create_campaign(
                console.engine,
                workspace_id=page.workspace_id,
                name=form.get("name", ""),
                now=datetime.now(UTC),
                experiment=_experiment(form),
                **_draft_settings(form, page),
            )
        except EchelonError as exc:
            return _wizard(console, request, page, form, console.word(request, exc))
        return _to_view(console, created.name)

    @router.get("/campaigns/edit")
    def edit(request: Request, name: str) -> Response:
        page = console.page(request, "campaigns:write")
        campaign = draft_campaign(console.engine, workspace_id=page.workspace_id, name=name)
        return _editor(console, request, page, campaign, _settings_form(campaign, page), None)

    @router.post("/campaigns/update")
    def update(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        form = console.form_text(request)
        name = form.get("name", "")
        campaign = draft_campaign(console.engine, workspace_id=page.workspace_id, name=name)
        try:
            edited = edit_campaign(
                console.engine,
                workspace_id=page.workspace_id,
                name=campaign.name,
                now=datetime.now(UTC),
                **_draft_settings(form, page),
            )
        except EchelonError as exc:
            message = console.word(request, exc)
            return _editor(console, request, page, campaign, form, message, exc.http_status)
        console.audit(
            page,
            "campaign.edit",
            f"campaign:{edited.name}",
            {
                "template": edited.template,
                "audience": edited.audience.model_dump(exclude_none=True),
                "send_at": edited.send_at and edited.send_at.isoformat(),
                "ends_at": edited.ends_at and edited.ends_at.isoformat(),
                "throttle_per_second": edited.throttle_per_second,
                "budget_yuan": None if edited.budget_e4 is None else str(yuan(edited.budget_e4)),
                "channel": edited.channel,
            },
        )
        return _to_view(console, edited.name, "edited")

    @router.post("/campaigns/decide")
    def decide(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        name = console.form_text(request).get("name", "")
        report = decide_campaign(
            console.engine,
            workspace_id=page.workspace_id,
            name=name,
            now=datetime.now(UTC),
            early=True,
        )
        console.audit(page, "campaign.decide", f"campaign:{name}", report["decision"] or {})
        return _to_view(console, name, "decided")

    @router.get("/campaigns/view")
    def view(request: Request, name: str, done: str = "") -> Response:
        page = console.page(request, "campaigns:read")
        status = campaign_status(console.engine, workspace_id=page.workspace_id, name=name)
        preview: dict[str, Any] | None = None
        problem: str | None = None
        if status["campaign"]["status"] == "draft":
            try:
                preview = preview_campaign(
                    console.engine,
                    workspace_id=page.workspace_id,
                    name=name,
                    samples=3,
                    now=datetime.now(UTC),
                )
            except EchelonError as exc:
                problem = exc.message
        audience = status["campaign"]["audience"]
        segment_name = None
        if audience.get("kind") == "segment" and audience.get("segment") is not None:
            segment_name = get_segment(
                console.engine, workspace_id=page.workspace_id, segment=audience["segment"]
            ).name
        experiment = None
        if status["campaign"].get("experiment"):
            experiment = experiment_report(
                console.engine, workspace_id=page.workspace_id, name=name, now=datetime.now(UTC)
            )
            if experiment["decide_at"]:
                experiment["decide_at"] = datetime.fromisoformat(experiment["decide_at"])
        return console.render(
            request,
            "campaigns/view.html",
            {
                "done": done if done in DONE_MESSAGES else "",
                "test": message_test_form(
                    console,
                    page,
                    get_template(
                        console.engine,
                        workspace_id=page.workspace_id,
                        name=status["campaign"]["template"],
                    ),
                    channel=status["campaign"]["channel"],
                    campaign=name,
                )
                if page.may("messages:send") and page.may("templates:write")
                else None,
                "experiment": experiment,
                "segment_name": segment_name,
                "status": status,
                "campaign": status["campaign"],
                "preview": preview,
                "problem": problem,
                "progress": progress_of(status),
                "final": status["campaign"]["status"] in FINAL,
            },
            page=page,
        )

    @router.get("/campaigns/progress")
    def progress(request: Request, name: str) -> Response:
        page = console.page(request, "campaigns:read")
        status = campaign_status(console.engine, workspace_id=page.workspace_id, name=name)
        return console.render(
            request,
            "campaigns/_progress.html",
            {
                "status": status,
                "campaign": status["campaign"],
                "progress": progress_of(status),
                "final": status["campaign"]["status"] in FINAL,
            },
            page=page,
        )

    @router.post("/campaigns/start")
    def start(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        name = console.form_text(request).get("name", "")
        summary = start_campaign(
            console.engine, workspace_id=page.workspace_id, name=name, now=datetime.now(UTC)
        )
        console.audit(
            page,
            "campaign.start",
            f"campaign:{name}",
            {k: summary[k] for k in ("audience", "planned", "parts", "cost_yuan")},
        )
        return _to_view(console, name)

    @router.post("/campaigns/pause")
    def pause(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        name = console.form_text(request).get("name", "")
        pause_campaign(
            console.engine, workspace_id=page.workspace_id, name=name, now=datetime.now(UTC)
        )
        return _to_view(console, name)

    @router.post("/campaigns/resume")
    def resume(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        name = console.form_text(request).get("name", "")
        resume_campaign(
            console.engine, workspace_id=page.workspace_id, name=name, now=datetime.now(UTC)
        )
        return _to_view(console, name)

    @router.post("/campaigns/cancel")
    def cancel(request: Request) -> Response:
        page = console.page(request, "campaigns:write")
        name = console.form_text(request).get("name", "")
        moved = cancel_campaign(
            console.engine, workspace_id=page.workspace_id, name=name, now=datetime.now(UTC)
        )
        console.audit(page, "campaign.cancel", f"campaign:{name}", {"messages": moved})
        return _to_view(console, name)

    @router.get("/campaigns/report")
    def report(request: Request, name: str) -> Response:
        page = console.page(request, "reports:read")
        return console.render(
            request, "campaigns/report.html", _report(console, page, name), page=page
        )

    @router.get("/campaigns/export")
    def export(request: Request, name: str, format: str = "csv") -> Response:
        page = console.page(request, "reports:read")
        fmt = format if format in _MEDIA else "csv"
        handle, path_name = tempfile.mkstemp(prefix="echelon-export-", suffix=f".{fmt}")
        os.close(handle)
        path = Path(path_name)
        try:
            rows = export_messages(
                console.engine, workspace_id=page.workspace_id, path=path, campaign=name
            )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        console.audit(page, "export", "messages", {"campaign": name, "rows": rows, "format": fmt})
        stamp = page.now.strftime("%Y%m%d-%H%M%S")
        return FileResponse(
            path,
            media_type=_MEDIA[fmt],
            filename=f"messages-{stamp}.{fmt}",
            background=BackgroundTask(path.unlink, missing_ok=True),
        )


def _report(console: Console, page: Page, name: str) -> dict[str, Any]:
    t = page.t
    total = campaign_report(console.engine, workspace_id=page.workspace_id, campaign=name)
    groups: dict[str, Any] = {}
    for by in GROUPINGS:
        grouped = campaign_report(
            console.engine, workspace_id=page.workspace_id, campaign=name, by=by
        )
        labels = [
            t.label("carrier", g.key, g.label) if by == "carrier" else g.label
            for g in grouped.groups
        ]
        volume = {
            t("metric.sent"): [g.metrics.sent for g in grouped.groups],
            t("metric.delivered"): [g.metrics.delivered for g in grouped.groups],
        }
        groups[by] = {
            "rows": list(zip(labels, grouped.groups, strict=True)),
            "chart": charts.bar_chart(labels, volume, horizontal=by == "province"),
            "rate_chart": charts.bar_chart(
                labels,
                {
                    t("metric.delivery_rate") + " %": [
                        charts.percent_value(g.metrics.delivery_rate) for g in grouped.groups
                    ],
                    t("metric.click_rate") + " %": [
                        charts.percent_value(g.metrics.click_rate) for g in grouped.groups
                    ],
                },
                horizontal=by == "province",
            ),
            "tall": by == "province" and len(labels) > 10,
        }
    m = total.total
    funnel = charts.bar_chart(
        [
            t("metric.planned"),
            t("metric.sent"),
            t("metric.delivered"),
            t("metric.clicks"),
            t("metric.conversions"),
        ],
        {t("report.messages"): [m.planned, m.sent, m.delivered, m.clicks, m.conversions]},
    )
    blocked = charts.pie_chart(
        {t.label("block", reason): n for reason, n in m.blocked_by_reason.items()}
    )
    return {
        "report": total,
        "metrics": m,
        "rates": [(j, light(j)) for j in total.judgements],
        "groups": groups,
        "groupings": GROUPINGS,
        "funnel": funnel,
        "blocked_chart": blocked,
    }


def _wizard(
    console: Console,
    request: Request,
    page: Page,
    chosen: dict[str, str],
    message: str | None,
) -> Response:
    return console.render(
        request,
        "campaigns/new.html",
        {"form": chosen, "message": message, **_choices(console, page, None)},
        page=page,
    )


def _editor(
    console: Console,
    request: Request,
    page: Page,
    campaign: Campaign,
    chosen: dict[str, str],
    message: str | None,
    status_code: int = 200,
) -> Response:
    return console.render(
        request,
        "campaigns/edit.html",
        {
            "campaign": campaign,
            "form": chosen,
            "message": message,
            **_choices(console, page, campaign.template),
        },
        page=page,
        status_code=status_code,
    )


def _choices(console: Console, page: Page, current_template: str | None) -> dict[str, Any]:
    """What the settings form offers: approved templates (and a draft's own, whatever
    its status now), segments, audiences and channels."""
    templates = list_templates(console.engine, workspace_id=page.workspace_id)
    return {
        "templates": [
            t for t in templates if t.review_status == "approved" or t.name == current_template
        ],
        "segments": list_segments(console.engine, workspace_id=page.workspace_id),
        "audiences": AUDIENCES,
        "channels": list_channels(console.engine, workspace_id=page.workspace_id),
    }


def _settings_form(campaign: Campaign, page: Page) -> dict[str, str]:
    """A draft's stored settings as the form's fields (times in the workspace's zone)."""
    audience = campaign.audience
    form = {
        "audience": audience.kind,
        "template": campaign.template,
        "send_at": _local_field(campaign.send_at, page),
        "ends_at": _local_field(campaign.ends_at, page),
        "throttle": ""
        if campaign.throttle_per_second is None
        else str(campaign.throttle_per_second),
        "budget": "" if campaign.budget_e4 is None else str(yuan(campaign.budget_e4)),
        "channel": campaign.channel or "",
    }
    if audience.kind == "segment":
        form["segment"] = str(audience.segment or "")
    elif audience.kind in ("tag", "list"):
        form[audience.kind] = (audience.tag if audience.kind == "tag" else audience.list) or ""
    return form


def _local_field(moment: datetime | None, page: Page) -> str:
    return "" if moment is None else moment.astimezone(page.zone).strftime("%Y-%m-%dT%H:%M")


def _audience(form: dict[str, str]) -> dict[str, Any]:
    kind = form.get("audience", "consenting")
    audience: dict[str, Any] = {"kind": kind}
    if kind == "segment":
        segment = form.get("segment", "")
        audience["segment"] = int(segment) if segment.isdigit() else segment
    elif kind in ("tag", "list"):
        audience[kind] = form.get(kind, "").strip()
    return audience


def _to_view(console: Console, name: str, done: str = "") -> Response:
    suffix = f"&done={done}" if done else ""
    return console.redirect(f"/campaigns/view?name={quote(name, safe='')}{suffix}")


def _draft_settings(form: dict[str, str], page: Page) -> dict[str, Any]:
    """A draft's settings as the wizard and the editor post them (not its name)."""
    return {
        "template": form.get("template", ""),
        "audience": _audience(form),
        "send_at": parse_local(form.get("send_at"), page.zone),
        "ends_at": parse_local(form.get("ends_at"), page.zone),
        "throttle_per_second": parse_count(form.get("throttle"), field=page.t("campaign.throttle")),
        "budget_yuan": parse_amount(form.get("budget")),
        "channel": form.get("channel", "").strip() or None,
    }


def _experiment(form: dict[str, str]) -> dict[str, Any] | None:
    """The wizard's A/B section as an experiment; None when no variant B is chosen."""
    variant_b = form.get("ab_template", "").strip()
    if not variant_b:
        return None
    return {
        "variants": [{"name": "A"}, {"name": "B", "template": variant_b}],
        "mode": "split" if form.get("ab_mode") == "split" else "test",
        "test_share": _number(form.get("ab_test_share"), "测试比例", default=20.0),
        "window_hours": _number(form.get("ab_window"), "测试窗口", default=4.0),
        "holdout": _number(form.get("ab_holdout"), "对照组比例", default=0.0),
        "metric": form.get("ab_metric") or "click_rate",
    }


def _number(text: str | None, what: str, *, default: float) -> float:
    if text is None or not text.strip():
        return default
    try:
        return float(text.strip().rstrip("%"))
    except ValueError:
        raise InvalidInput(f"{what}「{text}」应为数字") from None
