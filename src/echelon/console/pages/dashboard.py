"""The dashboard: today, 7 and 30 days of sending judged against the workspace's
thresholds (green / amber / red), spend and ROI, channel health, what is running and
the open alerts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from echelon.analytics.models import RATE_METRICS, Judgement, Metrics
from echelon.analytics.reports import (
    ChannelHour,
    channel_health,
    dashboard,
    get_thresholds,
    list_alerts,
)
from echelon.analytics.rules import judge
from echelon.campaigns.service import campaign_status, list_campaigns
from echelon.console import charts
from echelon.console.format import Light, light
from echelon.console.pages.journeys import running_journeys
from echelon.console.web import NAVIGATION, Console, Page
from echelon.dispatch.channel_admin import list_channels

ACTIVE = ("planning", "running", "paused")


@dataclass(frozen=True, slots=True)
class Rate:
    metric: str
    value: float | None
    light: Light
    status: str


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    metrics: Metrics
    rates: list[Rate]


@dataclass(frozen=True, slots=True)
class ChannelSummary:
    name: str
    enabled: bool
    sent: int
    delivered: int
    delivery_rate: float | None
    latency_p95_s: float | None


def rates(judgements: list[Judgement]) -> list[Rate]:
    return [Rate(j.metric, j.value, light(j), j.status.value) for j in judgements]


def summarise_channels(hours: list[ChannelHour], enabled: dict[str, bool]) -> list[ChannelSummary]:
    """Each channel's last hours summed; a channel with no traffic is listed too."""
    sent: dict[str, int] = defaultdict(int)
    delivered: dict[str, int] = defaultdict(int)
    latest_p95: dict[str, float | None] = {}
    for hour in hours:
        sent[hour.channel] += hour.sent
        delivered[hour.channel] += hour.delivered
        if hour.latency_p95_s is not None:
            latest_p95[hour.channel] = hour.latency_p95_s
    names = sorted(set(enabled) | set(sent))
    return [
        ChannelSummary(
            name=name,
            enabled=enabled.get(name, False),
            sent=sent[name],
            delivered=delivered[name],
            delivery_rate=delivered[name] / sent[name] if sent[name] else None,
            latency_p95_s=latest_p95.get(name),
        )
        for name in names
    ]


def register(router: APIRouter, console: Console) -> None:
    @router.get("/")
    def home(request: Request) -> Response:
        page = console.page(request)
        if not page.may("reports:read"):
            # Reviewers start at their queue; others where their work is.
            if page.may("templates:approve"):
                return console.redirect("/review")
            for path, _label, permission in NAVIGATION:
                if permission is not None and page.may(permission):
                    return console.redirect(path)
            return console.redirect("/settings")
        return console.render(request, "dashboard.html", _dashboard(console, page), page=page)


def _dashboard(console: Console, page: Page) -> dict[str, Any]:
    engine, workspace_id, t = console.engine, page.workspace_id, page.t
    board = dashboard(engine, workspace_id=workspace_id, now=page.now)
    thresholds = get_thresholds(engine, workspace_id=workspace_id)
    periods = [
        Period(key, metrics, rates(judge(metrics, thresholds)))
        for key, metrics in (
            ("today", board.today),
            ("last_7_days", board.last_7_days),
            ("last_30_days", board.last_30_days),
        )
    ]
    days = [day.strftime("%m-%d") for day, _ in board.daily]
    volume = charts.line_chart(
        days,
        {
            t("metric.sent"): [m.sent for _, m in board.daily],
            t("metric.delivered"): [m.delivered for _, m in board.daily],
            t("metric.clicks"): [m.clicks for _, m in board.daily],
        },
    )
    quality = charts.line_chart(
        days,
        {
            t(f"metric.{metric}") + " %": [
                charts.percent_value(m.rate(metric)) for _, m in board.daily
            ]
            for metric in ("delivery_rate", "click_rate", "conversion_rate")
        },
    )
    channel_rows = summarise_channels(
        channel_health(engine, workspace_id=workspace_id, now=page.now, hours=24),
        {c.name: c.enabled for c in list_channels(engine, workspace_id=workspace_id)},
    )
    running = [
        campaign_status(engine, workspace_id=workspace_id, name=c.name)
        for c in list_campaigns(engine, workspace_id=workspace_id)
        if c.status in ACTIVE
    ]
    return {
        "periods": periods,
        "rate_metrics": RATE_METRICS,
        "volume_chart": volume,
        "quality_chart": quality,
        "channels": channel_rows,
        "running": running,
        "journeys": running_journeys(engine, workspace_id=workspace_id),
        "alerts": list_alerts(engine, workspace_id=workspace_id, open_only=True),
    }
