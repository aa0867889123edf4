"""The redirect on both databases: 302 to the target, every hit recorded, bots told apart."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, delete, select
from tracking_support import add_campaign, open_shop, plan_with_tracking

from echelon.api.redirect import RedirectApp, build_redirect_app, location
from echelon.db.outbox import campaigns
from echelon.db.tracking import clicks, links
from echelon.tracking.clicks import Cache, ClickRecorder, LinkResolver
from echelon.tracking.models import BotReason, LinkTarget
from echelon.tracking.rules import hash_ip
from echelon.workspaces.service import Workspace

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def codes(engine: Engine, workspace: Workspace, tmp_path: Path) -> list[str]:
    open_shop(engine, workspace, tmp_path)
    plan_with_tracking(engine, workspace, add_campaign(engine, workspace))
    with engine.connect() as conn:
        return list(conn.execute(select(links.c.code).order_by(links.c.id)).scalars())


def visit(app: RedirectApp, *requests: tuple[str, str, str | None]) -> list[httpx.Response]:
    """Send (method, path, user agent) requests to the app in turn, then shut it down as
    a server would: the recorder's last flush."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50123))
        async with httpx.AsyncClient(transport=transport, base_url="https://s.echelon.cn") as c:
            return [
                await c.request(method, path, headers={"user-agent": agent} if agent else {})
                for method, path, agent in requests
            ]

    answers = asyncio.run(send())
    app.close()
    return answers


def recorded(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(links.c.code, clicks.c.human, clicks.c.bot_reason, clicks.c.user_agent)
                .join_from(clicks, links, links.c.id == clicks.c.link_id)
                .order_by(clicks.c.id)
            )
        ]


def test_a_tap_redirects_and_is_recorded_with_its_message(engine: Engine, codes: list[str]) -> None:
    (answer,) = visit(build_redirect_app(engine), ("GET", f"/{codes[0]}", PHONE))
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://shop.example/sale?id=11"
    assert answer.headers["cache-control"] == "no-store"
    assert recorded(engine) == [(codes[0], True, None, PHONE)]
    with engine.connect() as conn:
        click = conn.execute(select(clicks)).one()
        link = conn.execute(select(links).where(links.c.code == codes[0])).one()
    assert (click.message_id, click.contact_id, click.campaign_id) == (
        link.message_id,
        link.contact_id,
        link.campaign_id,
    )
    assert click.message_id is not None and len(click.ip_hash) == 16


def test_processes_sharing_a_key_agree_on_an_addresses_digest(
    engine: Engine, codes: list[str]
) -> None:
    key = hashlib.sha256(b"configured secret").digest()
    for app in (build_redirect_app(engine, ip_key=key), build_redirect_app(engine, ip_key=key)):
        visit(app, ("GET", f"/{codes[0]}", PHONE))
    visit(build_redirect_app(engine), ("GET", f"/{codes[1]}", PHONE))  # a key of its own
    with engine.connect() as conn:
        digests = list(conn.execute(select(clicks.c.ip_hash).order_by(clicks.c.id)).scalars())
    assert digests[0] == digests[1] != digests[2]
    assert digests[0] == hash_ip("203.0.113.7", key)


def test_previews_scanners_and_repeats_are_kept_but_not_counted(
    engine: Engine, codes: list[str]
) -> None:
    agent = "facebookexternalhit/1.1 Facebot Twitterbot/1.0"
    answers = visit(
        build_redirect_app(engine),
        ("HEAD", f"/{codes[0]}", PHONE),
        ("GET", f"/{codes[1]}", agent),
        ("GET", f"/{codes[2]}", PHONE),
        ("GET", f"/{codes[2]}", PHONE),
    )
    assert [r.status_code for r in answers] == [302] * 4
    assert recorded(engine) == [
        (codes[0], False, "head", PHONE),
        (codes[1], False, "agent", agent),
        (codes[2], True, None, PHONE),
        (codes[2], False, "repeat", PHONE),
    ]


def test_a_get_right_after_a_head_or_a_preview_is_the_same_machine(
    engine: Engine, codes: list[str]
) -> None:
    agent = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    visit(
        build_redirect_app(engine),
        ("HEAD", f"/{codes[0]}", PHONE),
        ("GET", f"/{codes[0]}", PHONE),
        ("GET", f"/{codes[1]}", agent),
        ("GET", f"/{codes[1]}", PHONE),
    )
    assert recorded(engine) == [
        (codes[0], False, "head", PHONE),
        (codes[0], False, "repeat", PHONE),
        (codes[1], False, "agent", agent),
        (codes[1], False, "repeat", PHONE),
    ]


def test_a_tap_a_second_or_more_after_a_fetch_counts(engine: Engine, codes: list[str]) -> None:
    recorder = ClickRecorder(engine, interval=3600)  # written when flushed
    link = LinkResolver(engine).load(codes[0])
    assert link is not None
    start = _now()
    seen = [
        recorder.observe(link, method=method, user_agent=PHONE, ip="10.0.0.1", now=at).bot_reason
        for method, at in [
            ("HEAD", start),
            ("GET", start + timedelta(milliseconds=999)),  # a burst extends itself
            ("GET", start + timedelta(milliseconds=2_000)),
            ("GET", start + timedelta(milliseconds=2_500)),  # a double tap
        ]
    ]
    assert seen == [BotReason.HEAD, BotReason.REPEAT, None, BotReason.REPEAT]
    recorder.close()
    assert [row[1] for row in recorded(engine)] == [False, False, True, False]


@pytest.mark.parametrize("path", ["/Zz9Zz9Z", "/Ab3-K9", "/favicon.ico", "/", "/a/b/c"])
def test_unknown_codes_get_a_plain_page(engine: Engine, codes: list[str], path: str) -> None:
    (answer,) = visit(build_redirect_app(engine), ("GET", path, PHONE))
    assert answer.status_code == 404
    assert "链接不存在或已失效" in answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert recorded(engine) == []


def test_codes_are_cached_after_the_first_hit(engine: Engine, codes: list[str]) -> None:
    resolver = LinkResolver(engine)
    recorder = ClickRecorder(engine)
    app = build_redirect_app(engine, recorder=recorder, resolver=resolver)
    assert resolver.cached(codes[0]) is Cache.MISS
    answers = visit(app, ("GET", f"/{codes[0]}", PHONE), ("GET", "/Zz9Zz9Z", PHONE))
    assert [r.status_code for r in answers] == [302, 404]
    cached = resolver.cached(codes[0])
    assert isinstance(cached, LinkTarget) and cached.target_url.startswith("https://shop.")
    assert resolver.cached("Zz9Zz9Z") is None  # remembered as unknown


def test_clicks_of_a_link_deleted_meanwhile_are_dropped_not_the_batch(
    engine: Engine, workspace: Workspace, codes: list[str]
) -> None:
    second = add_campaign(engine, workspace, name="第二波")
    plan_with_tracking(engine, workspace, second)
    with engine.connect() as conn:
        survivor = conn.execute(
            select(links.c.code).where(links.c.campaign_id == second).limit(1)
        ).scalar_one()
    recorder = ClickRecorder(engine, interval=3600)  # nothing written until flushed
    resolver = LinkResolver(engine)
    doomed, alive = resolver.load(codes[0]), resolver.load(survivor)
    assert doomed is not None and alive is not None
    for link in (doomed, alive):
        recorder.observe(link, method="GET", user_agent=PHONE, ip="10.0.0.1", now=_now())
    with engine.begin() as conn:
        conn.execute(delete(campaigns).where(campaigns.c.id != second))
    assert recorder.flush() == 1
    recorder.close()
    assert [row[0] for row in recorded(engine)] == [survivor]
    assert recorder.dropped == 1


def test_the_writer_thread_flushes_on_its_own(engine: Engine, codes: list[str]) -> None:
    recorder = ClickRecorder(engine, interval=0.002)
    resolver = LinkResolver(engine)
    link = resolver.load(codes[0])
    assert link is not None
    for i in range(50):
        recorder.observe(link, method="GET", user_agent=f"{PHONE} #{i}", ip=None, now=_now())
    for _ in range(500):
        if recorder.written == 50:
            break
        time.sleep(0.01)
    assert recorder.written == 50 and recorder.pending == 0
    recorder.close()
    assert len(recorded(engine)) == 50


def _now() -> datetime:
    return datetime.now(UTC)


def test_targets_that_are_not_ascii_are_percent_encoded() -> None:
    assert location("https://shop.example/双11?a=b c") == (
        b"https://shop.example/%E5%8F%8C11?a=b%20c"
    )
    assert location("https://shop.example/sale?id=11#top") == b"https://shop.example/sale?id=11#top"


def test_other_methods_get_the_plain_page(engine: Engine, codes: list[str]) -> None:
    (answer,) = visit(build_redirect_app(engine), ("POST", f"/{codes[0]}", PHONE))
    assert answer.status_code == 404
    assert recorded(engine) == []


def test_first_hits_arriving_together_are_looked_up_together(
    engine: Engine, codes: list[str]
) -> None:
    """Codes first seen in one turn of the event loop share one lookup: each request
    still gets its own link (or the 404 page), the same code twice included."""
    app = build_redirect_app(engine)
    queried: list[list[str]] = []
    load_many = app.resolver.load_many

    def counted(batch: list[str]) -> dict[str, LinkTarget | None]:
        queried.append(sorted(batch))
        return load_many(batch)

    app.resolver.load_many = counted  # type: ignore[method-assign]
    paths = [f"/{c}" for c in codes] + [f"/{codes[0]}", "/Zz9Zz9Z"]

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50123))
        async with httpx.AsyncClient(transport=transport, base_url="https://s.echelon.cn") as c:
            return await asyncio.gather(
                *(c.get(path, headers={"user-agent": PHONE}) for path in paths)
            )

    answers = asyncio.run(send())
    app.close()
    with engine.connect() as conn:
        targets = dict(conn.execute(select(links.c.code, links.c.target_url)).all())
    assert [a.headers.get("location") for a in answers[: len(codes)]] == [
        location(targets[c]).decode() for c in codes
    ]
    assert answers[len(codes)].headers["location"] == answers[0].headers["location"]
    assert answers[-1].status_code == 404
    # Fewer queries than codes: the concurrent first hits were batched.
    assert sum(len(batch) for batch in queried) == len(codes) + 1
    assert len(queried) < len(codes)
