"""Helpers of the pages: sign-in redirects, progress, channel health, settings input,
the import wizard's column choice and uploads."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.requests import Request

from echelon.analytics.reports import ChannelHour
from echelon.audience.importing import ImportReport
from echelon.console.imports import ImportJobs, overrides, suggested_mapping
from echelon.console.pages.auth import cookie_dropped, safe_next
from echelon.console.pages.campaigns import progress_of
from echelon.console.pages.dashboard import summarise_channels
from echelon.console.pages.settings import parse_auto_replies, percent_to_rate
from echelon.errors import InvalidInput

NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/campaigns?x=1", "/campaigns?x=1"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_after_sign_in_only_a_path_of_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_progress_counts_what_is_settled() -> None:
    status = {"by_status": {"queued": 3, "submitting": 1, "delivered": 5, "blocked": 1}}
    progress = progress_of(status)
    assert (progress["total"], progress["waiting"], progress["delivered"]) == (10, 4, 5)
    assert progress["share"] == pytest.approx(0.6)
    assert progress_of({"by_status": {}})["share"] == 0.0


def test_channel_health_sums_hours_and_lists_idle_channels() -> None:
    hour = NOW.replace(minute=0)
    hours = [
        ChannelHour("移动直连", hour, 100, 97, 0.97, 1.0, 3.0),
        ChannelHour("移动直连", hour + timedelta(hours=1), 100, 99, 0.99, 1.0, 2.0),
    ]
    summary = summarise_channels(hours, {"移动直连": True, "备用": False})
    assert [(c.name, c.sent, c.delivered, c.enabled) for c in summary] == [
        ("备用", 0, 0, False),
        ("移动直连", 200, 196, True),
    ]
    assert summary[1].delivery_rate == pytest.approx(0.98)
    assert summary[1].latency_p95_s == 2.0
    assert summary[0].delivery_rate is None


def test_settings_input() -> None:
    assert parse_auto_replies("营业时间=10:00–22:00\n\n地址 = 西湖路1号") == [
        {"keyword": "营业时间", "reply": "10:00–22:00"},
        {"keyword": "地址", "reply": "西湖路1号"},
    ]
    with pytest.raises(InvalidInput, match="2"):
        parse_auto_replies("a=b\nno equals sign")
    assert percent_to_rate("98.5") == pytest.approx(0.985)
    assert percent_to_rate("0.1%") == pytest.approx(0.001)
    assert percent_to_rate(" ") is None
    for bad in ("101", "-1", "abc"):
        with pytest.raises(InvalidInput):
            percent_to_rate(bad)


def test_columns_are_suggested_and_only_changes_are_passed_on() -> None:
    headers = ["手机号码", "客户姓名", "会员等级", "Tel"]
    assert suggested_mapping(headers) == {"手机号码": "phone", "客户姓名": "name"}
    chosen = {"手机号码": "phone", "客户姓名": "name", "会员等级": "", "Tel": ""}
    assert overrides(headers, chosen) == {}
    assert overrides(headers, chosen | {"会员等级": "tags"}) == {"会员等级": "tags"}
    with pytest.raises(InvalidInput, match="phone"):
        overrides(headers, chosen | {"Tel": "phone"})
    with pytest.raises(InvalidInput):
        overrides(headers, chosen | {"Tel": "salary"})


def test_an_upload_is_kept_privately_and_seen_by_its_workspace_only(tmp_path: Path) -> None:
    jobs = ImportJobs(root=tmp_path)
    data = "手机号,姓名\n13800138000,张三\n13900139000,李四\n".encode("utf-8-sig")
    job = jobs.upload(
        workspace_id=1, filename="../../etc/会员.csv", stream=io.BytesIO(data), now=NOW
    )
    assert job.filename == "会员.csv"
    assert job.path.parent.parent == tmp_path
    assert job.headers == ["手机号", "姓名"]
    assert job.sample == [["13800138000", "张三"], ["13900139000", "李四"]]
    assert job.suggested == {"手机号": "phone", "姓名": "name"}
    assert jobs.get(job.id, workspace_id=1) is job
    with pytest.raises(InvalidInput):
        jobs.get(job.id, workspace_id=2)
    for name, body in (("x.pdf", b"%PDF"), ("empty.csv", b"")):
        with pytest.raises(InvalidInput):
            jobs.upload(workspace_id=1, filename=name, stream=io.BytesIO(body), now=NOW)
    assert len(list(tmp_path.iterdir())) == 1  # refused uploads leave nothing behind


def test_a_job_runs_once_and_reports_its_progress(tmp_path: Path) -> None:
    jobs = ImportJobs(root=tmp_path)
    job = jobs.upload(
        workspace_id=1, filename="a.csv", stream=io.BytesIO(b"phone\n13800138000\n"), now=NOW
    )

    def run(path: Path, progress: object) -> ImportReport:
        assert callable(progress)
        progress(1, 1)
        return ImportReport(rows=1, imported=1)

    jobs.start(job, run)
    for _ in range(200):
        if job.state == "done":
            break
        time.sleep(0.01)
    assert job.state == "done" and job.progress == 1.0 and job.done_rows == 1
    with pytest.raises(InvalidInput):
        jobs.start(job, run)


@pytest.mark.parametrize(
    ("url", "secure", "dropped"),
    [
        ("http://127.0.0.1:8000/login", True, False),
        ("http://localhost:8000/login", True, False),
        ("http://192.168.1.20:8000/login", True, True),
        ("https://sms.example.com/login", True, False),
        ("http://192.168.1.20:8000/login", False, False),
    ],
)
def test_a_secure_cookie_over_plain_http_is_foretold(url: str, secure: bool, dropped: bool) -> None:
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": parts.scheme,
        "path": parts.path,
        "query_string": b"",
        "headers": [(b"host", parts.netloc.encode())],
    }
    assert Request(scope).url.hostname == parts.hostname
    request = Request(scope)
    assert cookie_dropped(request, secure=secure) is dropped
