"""Reports: a campaign's metrics (grouped as asked) judged against the workspace's
thresholds, the alerts they raise, the workspace dashboard and channel health."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, select, update

from echelon.analytics import queries
from echelon.analytics.models import (
    GROUPINGS,
    RATE_METRICS,
    SENT,
    GroupBy,
    Judgement,
    Metrics,
    RateMetric,
    Tally,
    Thresholds,
)
from echelon.analytics.queries import Scope
from echelon.analytics.rules import alerts, check_level, judge, metrics_of
from echelon.db.engine import reading
from echelon.db.tracking import analytics_settings, metric_alerts
from echelon.errors import InvalidInput, NotFound

PPM = 1_000_000
SNAPSHOT_MAX_AGE = timedelta(minutes=1)
# How long after it started a campaign's messages may still go out.
CAMPAIGN_SPAN = timedelta(days=30)
# How long after it was due a message may still go out (quiet hours, throttling).
SEND_DELAY = timedelta(days=2)


class CampaignNotFound(NotFound):
    code = "campaign_not_found"

    def __init__(self, reference: str) -> None:
        super().__init__(f"活动「{reference}」不存在（可用活动 ID 或名称）")


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    """Metrics of one group: ``key`` as stored (channel id, carrier code, local hour …),
    ``label`` as people read it."""

    key: Any
    label: str
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign_id: int
    campaign: str
    status: str
    by: GroupBy | None
    total: Metrics
    judgements: list[Judgement]
    groups: list[GroupMetrics]


@dataclass(frozen=True, slots=True)
class Alert:
    campaign_id: int
    campaign: str
    metric: str
    value: float
    threshold: float
    advice: str
    raised_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None


# Thresholds -------------------------------------------------------------------------


def thresholds_in(conn: Connection, *, workspace_id: int) -> Thresholds:
    stored = conn.execute(
        select(analytics_settings.c.thresholds).where(
            analytics_settings.c.workspace_id == workspace_id
        )
    ).scalar_one_or_none()
    thresholds = Thresholds()
    for metric, levels in (stored or {}).get("levels", {}).items():
        if metric in RATE_METRICS:
            thresholds = thresholds.with_level(cast(RateMetric, metric), **levels)
    if stored and "min_sample" in stored:
        thresholds = Thresholds(thresholds.levels, int(stored["min_sample"]))
    return thresholds


def get_thresholds(engine: Engine, *, workspace_id: int) -> Thresholds:
    with engine.connect() as conn:
        return thresholds_in(conn, workspace_id=workspace_id)


def set_threshold(
    engine: Engine,
    *,
    workspace_id: int,
    metric: str,
    passing: float | None = None,
    excellent: float | None = None,
    alert: float | None = None,
    now: datetime,
) -> Thresholds:
    """Change a rate's levels (None keeps one); the workspace's thresholds after."""
    if metric not in RATE_METRICS:
        raise InvalidInput(f"未知指标 {metric}，可用：{', '.join(RATE_METRICS)}")
    rate = metric
    with engine.begin() as conn:
        current = thresholds_in(conn, workspace_id=workspace_id)
        after = current.with_level(rate, passing=passing, excellent=excellent, alert=alert)
        check_level(after.levels[rate])
        _store(conn, workspace_id, after, now)
    return after


def set_min_sample(engine: Engine, *, workspace_id: int, messages: int, now: datetime) -> None:
    if messages < 1:
        raise InvalidInput("最小样本量须至少为 1 条")
    with engine.begin() as conn:
        current = thresholds_in(conn, workspace_id=workspace_id)
        _store(conn, workspace_id, Thresholds(current.levels, messages), now)


def _store(conn: Connection, workspace_id: int, thresholds: Thresholds, now: datetime) -> None:
    document = {
        "levels": {
            metric: {"passing": t.passing, "excellent": t.excellent, "alert": t.alert}
            for metric, t in thresholds.levels.items()
        },
        "min_sample": thresholds.min_sample,
    }
    s = analytics_settings.c
    changed = conn.execute(
        update(analytics_settings)
        .where(s.workspace_id == workspace_id)
        .values(thresholds=document, updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(
            insert(analytics_settings).values(
                workspace_id=workspace_id, thresholds=document, updated_at=now
            )
        )


# Campaign report --------------------------------------------------------------------


def campaign_report(
    engine: Engine,
    *,
    workspace_id: int,
    campaign: str,
    by: str | None = None,
    now: datetime | None = None,
    max_age: timedelta = SNAPSHOT_MAX_AGE,
) -> CampaignReport:
    """Metrics of a campaign (by id or name), in total and per ``by`` group.

    What a report reads is kept (``report_snapshots``) and reused while younger than
    ``max_age``: the scan of the campaign's messages, and for good once none of them
    can change; and what followed them (clicks, conversions, opt-outs, complaints).
    """
    if by is not None and by not in GROUPINGS:
        raise InvalidInput(f"不能按 {by} 分组，可用：{', '.join(GROUPINGS)}")
    grouping = by
    keys = (grouping,) if grouping else ()
    moment = now or datetime.now(UTC)
    with engine.begin() as conn:
        found = queries.campaign_row(conn, workspace_id, campaign)
        if found is None:
            raise CampaignNotFound(campaign)
        tallies = _campaign_tallies(conn, workspace_id, found["id"], keys, moment, max_age)
        thresholds = thresholds_in(conn, workspace_id=workspace_id)
        label, fold = _labeller(conn, workspace_id, grouping)
    total = Tally()
    for part in tallies.values():
        total.add(part)
    metrics = metrics_of(total)
    groups: list[GroupMetrics] = []
    if grouping is not None:
        merged: dict[Any, Tally] = defaultdict(Tally)
        for key, part in tallies.items():
            merged[fold(key[0])].add(part)
        groups = [
            GroupMetrics(key, label(key), metrics_of(merged[key]))
            for key in sorted(merged, key=_sort_key)
        ]
    return CampaignReport(
        campaign_id=found["id"],
        campaign=found["name"],
        status=found["status"],
        by=grouping,
        total=metrics,
        judgements=judge(metrics, thresholds),
        groups=groups,
    )


def _campaign_tallies(
    conn: Connection,
    workspace_id: int,
    campaign_id: int,
    keys: tuple[str, ...],
    moment: datetime,
    max_age: timedelta,
) -> dict[queries.Key, Tally]:
    """The campaign's tallies per key, from kept rows where they are fresh enough.
    What followed the messages is counted on a connection of its own while the
    messages are scanned on this one: the two together take the longer of the two."""
    kept = queries.snapshot(conn, campaign_id, "+".join(keys))
    followed: list[queries.FollowUp] | None = None
    if kept is not None and kept.followed_at is not None and kept.followed_at >= moment - max_age:
        followed = kept.follow_ups
    counting: Future[list[queries.FollowUp]] | None = None
    if followed is None:
        scope = Scope(workspace_id, campaign_id=campaign_id)
        counting = _BESIDE.submit(_follow_ups_apart, conn.engine, scope, keys)
    rows = _campaign_outcomes(conn, workspace_id, campaign_id, keys, moment, max_age, kept)
    if counting is not None:
        followed = counting.result()
        queries.store_snapshot(
            conn,
            workspace_id=workspace_id,
            campaign_id=campaign_id,
            grouping="+".join(keys),
            rows=None,
            settled=False,
            followed=followed,
            now=moment,
        )
    tallies = queries.fold(rows)
    queries.add_follow_ups(tallies, followed or [])
    return tallies


# Reads that run beside a report's scan, each on a connection of its own.
_BESIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="report-follow-ups")


def _follow_ups_apart(
    engine: Engine, scope: Scope, keys: tuple[str, ...]
) -> list[queries.FollowUp]:
    """``queries.follow_ups`` in a read transaction of its own (on SQLite one that
    neither waits for the writer nor holds it up)."""
    apart = reading(engine) if engine.dialect.name == "sqlite" else engine.connect()
    with apart as conn, conn.begin():
        return queries.follow_ups(conn, scope, keys)


def _campaign_outcomes(
    conn: Connection,
    workspace_id: int,
    campaign_id: int,
    keys: tuple[str, ...],
    moment: datetime,
    max_age: timedelta,
    kept: queries.Snapshot | None = None,
) -> list[queries.Outcome]:
    """The campaign's outcome rows: kept ones while fresh (or settled), else a scan,
    kept for the next time."""
    grouping = "+".join(keys)
    if kept is None:
        kept = queries.snapshot(conn, campaign_id, grouping)
    if kept is not None and (kept.settled or kept.computed_at >= moment - max_age):
        return kept.outcomes
    settled = not queries.unsettled(conn, workspace_id, campaign_id)
    rows = queries.outcomes(conn, Scope(workspace_id, campaign_id=campaign_id), keys)
    queries.store_snapshot(
        conn,
        workspace_id=workspace_id,
        campaign_id=campaign_id,
        grouping=grouping,
        rows=rows,
        settled=settled,
        followed=None,
        now=moment,
    )
    return rows


def _recent_outcomes(
    conn: Connection, workspace_id: int, keys: tuple[str, ...], since: datetime, moment: datetime
) -> list[queries.Outcome]:
    """Outcome rows of the workspace's messages that went (or are due) since ``since``,
    per ``keys`` ending with the hour: each recent campaign's kept scan, and a scan of
    the messages outside campaigns."""
    rows: list[queries.Outcome] = []
    for campaign_id in queries.campaigns_since(conn, workspace_id, since - CAMPAIGN_SPAN):
        rows += _campaign_outcomes(conn, workspace_id, campaign_id, keys, moment, SNAPSHOT_MAX_AGE)
    outside = Scope(workspace_id, outside_campaigns=True, due_from=since - CAMPAIGN_SPAN)
    rows += queries.outcomes(conn, outside, keys)
    return [row for row in rows if row[0][-1] >= since]


def _sort_key(key: Any) -> tuple[bool, Any]:
    # Keys of one grouping share a type; the one None (unknown) goes last.
    return (key is None, key if key is not None else 0)


def _labeller(
    conn: Connection, workspace_id: int, grouping: GroupBy | None
) -> tuple[Callable[[Any], str], Callable[[Any], Any]]:
    """How a group key reads, and how a raw key folds (UTC hour → local hour of day)."""
    if grouping == "channel":
        names = queries.channel_names(conn, workspace_id)
        return (lambda key: names.get(key, "未分配通道") if key else "未分配通道"), _same
    if grouping == "hour":
        zone = ZoneInfo(queries.workspace_timezone(conn, workspace_id))
        return (lambda hour: f"{hour:02d}时"), (lambda utc: utc.astimezone(zone).hour)
    if grouping == "variant":
        return (lambda key: key or "（无）"), _same
    return (lambda key: key or "未知"), _same


def _same(key: Any) -> Any:
    return key


def record_alerts(
    engine: Engine, *, workspace_id: int, report: CampaignReport, now: datetime
) -> list[Alert]:
    """Raise, refresh or resolve the campaign's alerts from its report; the open ones."""
    drafts = {draft.metric: draft for draft in alerts(report.judgements)}
    a = metric_alerts.c
    with engine.begin() as conn:
        existing = {
            row.metric: row
            for row in conn.execute(
                select(metric_alerts).where(
                    a.workspace_id == workspace_id, a.campaign_id == report.campaign_id
                )
            )
        }
        for metric, draft in drafts.items():
            values = {
                "value_ppm": round(draft.value * PPM),
                "threshold_ppm": round(draft.threshold * PPM),
                "advice": draft.advice,
                "last_seen_at": now,
            }
            row = existing.get(metric)
            if row is None:
                conn.execute(
                    insert(metric_alerts).values(
                        workspace_id=workspace_id,
                        campaign_id=report.campaign_id,
                        metric=metric,
                        raised_at=now,
                        **values,
                    )
                )
            else:
                if row.resolved_at is not None:
                    values |= {"raised_at": now, "resolved_at": None}
                conn.execute(update(metric_alerts).where(a.id == row.id).values(**values))
        for metric, row in existing.items():
            if metric not in drafts and row.resolved_at is None:
                conn.execute(update(metric_alerts).where(a.id == row.id).values(resolved_at=now))
    return [
        alert
        for alert in list_alerts(engine, workspace_id=workspace_id, campaign_id=report.campaign_id)
        if alert.resolved_at is None
    ]


def evaluate_alerts(
    engine: Engine, *, now: datetime, within: timedelta = timedelta(days=7)
) -> list[Alert]:
    """Record alerts for every campaign of every workspace that is running or started
    within ``within`` (a worker's periodic pass); the alerts open afterwards."""
    with engine.connect() as conn:
        recent = queries.recent_campaigns(conn, since=now - within)
    opened: list[Alert] = []
    for workspace_id, campaign_id in recent:
        report = campaign_report(engine, workspace_id=workspace_id, campaign=str(campaign_id))
        opened += record_alerts(engine, workspace_id=workspace_id, report=report, now=now)
    return opened


def list_alerts(
    engine: Engine, *, workspace_id: int, campaign_id: int | None = None, open_only: bool = False
) -> list[Alert]:
    a = metric_alerts.c
    with engine.connect() as conn:
        names = queries.campaign_names(conn, workspace_id)
        query = select(metric_alerts).where(a.workspace_id == workspace_id)
        if campaign_id is not None:
            query = query.where(a.campaign_id == campaign_id)
        if open_only:
            query = query.where(a.resolved_at.is_(None))
        rows = conn.execute(query.order_by(a.raised_at.desc(), a.id.desc())).all()
    return [
        Alert(
            campaign_id=row.campaign_id,
            campaign=names.get(row.campaign_id, str(row.campaign_id)),
            metric=row.metric,
            value=row.value_ppm / PPM,
            threshold=row.threshold_ppm / PPM,
            advice=row.advice,
            raised_at=row.raised_at,
            last_seen_at=row.last_seen_at,
            resolved_at=row.resolved_at,
        )
        for row in rows
    ]


# Dashboard and channel health -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The workspace today, in the last 7 and 30 days (local days, today included),
    and each of those 30 days: messages by the day they went (or were due), clicks,
    conversions, opt-outs and complaints by the day they happened."""

    today: Metrics
    last_7_days: Metrics
    last_30_days: Metrics
    daily: list[tuple[date, Metrics]]
    judgements: list[Judgement]


def dashboard(engine: Engine, *, workspace_id: int, now: datetime) -> Dashboard:
    """Recent campaigns' kept scans make this cheap: only campaigns still changing,
    and messages outside campaigns, are scanned again."""
    with engine.begin() as conn:
        zone = ZoneInfo(queries.workspace_timezone(conn, workspace_id))
        today = now.astimezone(zone).date()
        first = today - timedelta(days=29)
        start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
        tallies = queries.fold(_recent_outcomes(conn, workspace_id, ("hour",), start, now))
        followed = queries.follow_ups_by_hour(conn, workspace_id, start)
        thresholds = thresholds_in(conn, workspace_id=workspace_id)
    by_day: dict[date, Tally] = defaultdict(Tally)
    for (hour,), part in [*tallies.items(), *followed.items()]:
        by_day[hour.astimezone(zone).date()].add(part)
    days = [first + timedelta(days=i) for i in range(30)]

    def since(day: date) -> Metrics:
        return metrics_of(_sum(part for d, part in by_day.items() if d >= day))

    last_30 = since(first)
    return Dashboard(
        today=since(today),
        last_7_days=since(today - timedelta(days=6)),
        last_30_days=last_30,
        daily=[(day, metrics_of(by_day.get(day, Tally()))) for day in days],
        judgements=judge(last_30, thresholds),
    )


def _sum(parts: Iterable[Tally]) -> Tally:
    total = Tally()
    for part in parts:
        total.add(part)
    return total


@dataclass(frozen=True, slots=True)
class ChannelHour:
    channel: str
    hour: datetime  # local time, on the hour
    sent: int
    delivered: int
    delivery_rate: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None


def channel_health(
    engine: Engine, *, workspace_id: int, now: datetime, hours: int = 24
) -> list[ChannelHour]:
    """Delivery rate and latency per channel per hour over the last ``hours`` hours,
    by when messages were submitted."""
    if not 1 <= hours <= 24 * 31:
        raise InvalidInput("通道健康度的时间范围须为 1 小时到 31 天")
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    with engine.begin() as conn:
        zone = ZoneInfo(queries.workspace_timezone(conn, workspace_id))
        names = queries.channel_names(conn, workspace_id)
        # What reached a channel, found through (status, due time): a message goes out
        # within SEND_DELAY of when it was due, or it is not counted here.
        scope = Scope(
            workspace_id,
            statuses=SENT,
            due_from=start - SEND_DELAY,
            submitted_from=start,
        )
        tallies = queries.fold(queries.outcomes(conn, scope, ("channel", "hour")))
    rows = []
    for key in sorted(tallies, key=lambda k: (names.get(k[0], ""), k[1])):
        channel_id, hour = key
        metrics = metrics_of(tallies[key])
        rows.append(
            ChannelHour(
                channel=names.get(channel_id, "未分配通道"),
                hour=hour.astimezone(zone),
                sent=metrics.sent,
                delivered=metrics.delivered,
                delivery_rate=metrics.delivery_rate,
                latency_p50_s=metrics.latency_p50_s,
                latency_p95_s=metrics.latency_p95_s,
            )
        )
    return rows
